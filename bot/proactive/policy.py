"""The rules of writing first, as one value: quiet hours, the daily cap, the window, prices. No I/O.

Built once per process from the settings (``bot.composition.proactive_policy``) and handed to the engine;
the core reads no settings itself. Times are judged in the learner's time zone (``zone``).
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
WINDOW_MS = DAY_MS  # WhatsApp's customer-service window and Messenger's standard window (docs/platform.md §9)


@dataclass(frozen=True, slots=True)
class Prices:
    """Meta's price per delivered message by category (docs/platform.md §9), in ``currency``.

    Categories: ``marketing``, ``utility``, ``authentication`` (templates outside the window), ``service``
    (a free-form message inside it) and ``utility_in_window`` (a utility template inside it). A category
    missing from the table costs 0.
    """

    currency: str = "USD"
    table: Mapping[str, float] = field(default_factory=dict)

    def cost(self, category: str) -> float:
        return float(self.table.get(category, 0.0))

    @classmethod
    def parse(cls, text: str, currency: str) -> Prices:
        """``"marketing=0.0691,utility=0.03"`` (the settings' format; they checked it)."""
        table: dict[str, float] = {}
        for pair in filter(None, (part.strip() for part in text.split(","))):
            name, _, price = pair.partition("=")
            table[name.strip()] = float(price)
        return cls(currency=currency, table=table)


@dataclass(frozen=True, slots=True)
class Policy:
    """When and how often Bottega may write first. Defaults are the settings' defaults."""

    quiet_start_minute: int | None = 21 * 60  # local; None: no quiet hours
    quiet_end_minute: int | None = 8 * 60
    max_per_day: int = 1  # proactive messages per learner per local day
    stop_after_ignored: int = 3  # unanswered reminders, then they pause
    shift_max_ms: int = 3 * HOUR_MS  # how far a reminder may move to stay inside the window
    margin_ms: int = 10 * 60_000  # never send closer than this to the window's end
    late_ms: int = HOUR_MS  # a moment missed by more than this (workers were down) is skipped, not sent late
    default_time_zone: str = "Europe/Rome"
    window_ms: int = WINDOW_MS
    prices: Prices = Prices()
    # two service facts the tutor tells learners, from the settings as well: when a person will answer after
    # a handover (bot.tutor.handover), and the contact address the welcome names ("" = course.yaml's)
    handover_answer_hours: int = 24
    support_contact: str = ""

    @classmethod
    def parse_quiet(cls, text: str) -> tuple[int | None, int | None]:
        """``"21:00-08:00"`` -> (1260, 480); ``""`` -> (None, None)."""
        if not text.strip():
            return None, None
        start, _, end = text.strip().partition("-")
        return _minute(start), _minute(end)

    def zone(self, time_zone: str = "") -> zoneinfo.ZoneInfo:
        """The learner's time zone (``time_zone`` if a platform told us a valid one), else the default."""
        for name in (time_zone, self.default_time_zone):
            if name:
                try:
                    return zoneinfo.ZoneInfo(name)
                except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                    continue
        return zoneinfo.ZoneInfo("UTC")

    def local(self, at_ms: int, time_zone: str = "") -> datetime:
        return datetime.fromtimestamp(at_ms / 1000, tz=self.zone(time_zone))

    def local_day(self, at_ms: int, time_zone: str = "") -> str:
        """The learner's calendar day at ``at_ms``: what the daily cap counts by."""
        return self.local(at_ms, time_zone).date().isoformat()

    def quiet(self, at_ms: int, time_zone: str = "") -> bool:
        """Whether ``at_ms`` falls inside the quiet hours, in the learner's local time."""
        start, end = self.quiet_start_minute, self.quiet_end_minute
        if start is None or end is None or start == end:
            return False
        moment = self.local(at_ms, time_zone)
        minute = moment.hour * 60 + moment.minute
        return start <= minute or minute < end if start > end else start <= minute < end

    def at_local(self, day: datetime, minute: int, time_zone: str = "") -> int:
        """Unix ms of ``minute`` after local midnight on ``day``'s date (the zone's offset that day)."""
        zone = self.zone(time_zone)
        moment = datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=zone)
        return int(moment.timestamp() * 1000)

    def next_days(self, after_ms: int, time_zone: str = "", count: int = 14) -> list[datetime]:
        """The learner's next ``count`` local dates from the one of ``after_ms`` on (midnights)."""
        first = self.local(after_ms, time_zone).replace(hour=0, minute=0, second=0, microsecond=0)
        return [first + timedelta(days=n) for n in range(count)]


def _minute(text: str) -> int | None:
    hours, _, minutes = text.strip().partition(":")
    return int(hours) * 60 + int(minutes) if hours.isdigit() and minutes.isdigit() else None
