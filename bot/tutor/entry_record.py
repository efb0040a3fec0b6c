"""What a learner's record keeps about how they came in: the source (campaign) and a Click-to-WhatsApp ad. No I/O.

Stored as JSON in the ``entry`` field of the progress hash (``bot.tutor.progress``), read tolerantly like
the other typed parts. The first touch is kept for good; later ones go to a short history, newest last.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Self

from bot.model.stored_json import integer, text

HISTORY_MAX = 10  # later touches remembered per learner
FREE_ENTRY_MS = 72 * 3_600_000  # a Click-to-WhatsApp ad's free entry point (docs/platform.md §9)


@dataclass(frozen=True, kw_only=True, slots=True)
class Touch:
    """One arrival through an entry link, a QR code or an ad."""

    at_ms: int
    channel: str
    campaign: str = ""  # the start code's campaign tag ("" = none given)
    target: str = ""  # what the code asked to start: "m:m1_contatto", "checkup", "event:ID", "menu"
    via: str = ""  # how: "wa_text", "SHORTLINK" (m.me), "IGME" (ig.me), "ADS", "ad" (Click-to-WhatsApp)...
    ref: str = ""  # a ref that is not a start code (an older link, an ad's ref), as given

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"at_ms": self.at_ms, "channel": self.channel}
        data.update({name: getattr(self, name) for name in ("campaign", "target", "via", "ref") if getattr(self, name)})
        return data

    @classmethod
    def from_json(cls, data: Any) -> Self:
        data = data if isinstance(data, dict) else {}
        return cls(at_ms=integer(data, "at_ms"), channel=text(data, "channel"), campaign=text(data, "campaign"),
                   target=text(data, "target"), via=text(data, "via"), ref=text(data, "ref"))


@dataclass(frozen=True, kw_only=True, slots=True)
class AdClick:
    """A Click-to-WhatsApp ad's ``referral``: which ad, which click, and when (its free window starts then)."""

    at_ms: int
    source_type: str = ""  # "ad" | "post"
    source_id: str = ""
    source_url: str = ""
    headline: str = ""
    ctwa_clid: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"at_ms": self.at_ms, "source_type": self.source_type, "source_id": self.source_id,
                "source_url": self.source_url, "headline": self.headline, "ctwa_clid": self.ctwa_clid}

    @classmethod
    def from_json(cls, data: Any) -> Self:
        data = data if isinstance(data, dict) else {}
        return cls(at_ms=integer(data, "at_ms"), source_type=text(data, "source_type"),
                   source_id=text(data, "source_id"), source_url=text(data, "source_url"),
                   headline=text(data, "headline"), ctwa_clid=text(data, "ctwa_clid"))


@dataclass(frozen=True, kw_only=True, slots=True)
class EntryRecord:
    first: Touch | None = None  # the first touch: never replaced
    later: tuple[Touch, ...] = ()  # every later one, newest last (at most HISTORY_MAX)
    ad: AdClick | None = None  # the latest Click-to-WhatsApp ad click
    free_until_ms: int = 0  # the ad's free entry point ends: free-form and free until then
    waiting: str = ""  # a start code's payload held until the learner has chosen a language (and business)

    @property
    def campaign(self) -> str:
        """The learner's source: the first touch's campaign tag ("" = came in without one)."""
        return self.first.campaign if self.first else ""

    def with_changes(self, **changes: Any) -> EntryRecord:
        return replace(self, **changes)

    def with_touch(self, touch: Touch) -> EntryRecord:
        if self.first is None:
            return replace(self, first=touch)
        return replace(self, later=(*self.later, touch)[-HISTORY_MAX:])

    def to_json(self) -> dict[str, Any]:
        if self == _NO_ENTRY:
            return {}
        data: dict[str, Any] = {"later": [touch.to_json() for touch in self.later],
                                "free_until_ms": self.free_until_ms, "waiting": self.waiting}
        data["first"] = self.first.to_json() if self.first else None
        data["ad"] = self.ad.to_json() if self.ad else None
        return data

    @classmethod
    def from_json(cls, data: Any) -> Self:
        if not isinstance(data, dict):
            return cls()
        later = data.get("later")
        return cls(first=Touch.from_json(data["first"]) if isinstance(data.get("first"), dict) else None,
                   later=tuple(Touch.from_json(item) for item in (later if isinstance(later, list) else [])),
                   ad=AdClick.from_json(data["ad"]) if isinstance(data.get("ad"), dict) else None,
                   free_until_ms=integer(data, "free_until_ms"), waiting=text(data, "waiting"))


_NO_ENTRY = EntryRecord()
