"""Announcing a Business Open Day to its audience: one proactive message per learner, through their clock.

``announce(client, store, course, policy, event, now_ms=..., dry_run=...)`` reads every learner's record,
keeps those in the event's audience (``events.yaml``: channels, languages, business types, modules done)
who have not heard of it yet, and asks ``bot.proactive.placement`` what an invitation to each would be
now: free-form in the window, the ``open_day_invite`` template, a Messenger marketing-messages token, or
nothing (opted out, no way outside the window). A dry run only counts, by channel and by that answer, with
the cost from the price table. A real run schedules the clock event ``od:ann:<event>`` for each learner
who can be reached (``Store.schedule``): the worker's sweeper fires it as the learner's own turn
(``bot.tutor.open_days``), which asks the placement again at that moment, so the invitation is
window-aware, honours ``stop`` up to the last moment and goes exactly once — announcing twice schedules
nothing new. Learners met in quiet hours or past the daily cap are scheduled too: their turn moves the
invitation to the next morning.

This is the one entry point; paced bulk sending (``bot/broadcasts``) can take its list of learners over.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import redis

from bot.flows.spec import Course, OpenDay
from bot.proactive import placement
from bot.proactive.placement import Reach
from bot.proactive.policy import Policy
from bot.storage.keys import LearnerPart, learner_key_pattern
from bot.storage.store import Store
from bot.tutor import consent
from bot.tutor.open_days import TIMER_PREFIX
from bot.tutor.progress import Progress

SCAN_BATCH = 500  # learner records read per round trip
PROGRESS_EVERY_LEARNERS = 2_000  # learners read between two progress reports (the console's counter)
LATER = frozenset({"quiet hours", "daily cap"})  # not now, but the learner's turn moves it to the morning


@dataclass(kw_only=True)
class Announcement:
    """What ``announce`` found (and, unless a dry run, scheduled)."""

    event_id: str
    dry_run: bool
    scheduled: int = 0  # learners whose invitation is on their clock (a dry run: would be)
    by_channel: Counter[str] = field(default_factory=Counter)  # of those scheduled
    by_how: Counter[str] = field(default_factory=Counter)  # free_form | template | opt_in_token | later | none: why
    cost: float = 0.0  # estimated, for those that would go now (placement's price table)
    currency: str = ""
    outside_audience: int = 0
    already: int = 0  # invited or answered before

    def to_json(self) -> str:
        """The counts as JSON (a console job's result; no learner is named)."""
        return json.dumps({"event_id": self.event_id, "dry_run": self.dry_run, "scheduled": self.scheduled,
                           "by_channel": dict(self.by_channel), "by_how": dict(self.by_how), "cost": self.cost,
                           "currency": self.currency, "outside_audience": self.outside_audience,
                           "already": self.already}, sort_keys=True)

    @classmethod
    def from_json(cls, raw: str) -> Announcement:
        data = json.loads(raw)
        return cls(event_id=str(data["event_id"]), dry_run=bool(data["dry_run"]), scheduled=int(data["scheduled"]),
                   by_channel=Counter(data["by_channel"]), by_how=Counter(data["by_how"]), cost=float(data["cost"]),
                   currency=str(data["currency"]), outside_audience=int(data["outside_audience"]),
                   already=int(data["already"]))

    def lines(self) -> list[str]:
        verb = "would be invited" if self.dry_run else "invited (scheduled on their clocks)"
        shown = [f"{self.event_id}: {self.scheduled} learner(s) {verb}"]
        shown += [f"  {channel}: {count}" for channel, count in sorted(self.by_channel.items())]
        shown += [f"  as {how}: {count}" for how, count in sorted(self.by_how.items())]
        shown.append(f"  estimated cost now: {self.cost:.4f} {self.currency}".rstrip())
        shown.append(f"  not in the audience: {self.outside_audience}; already invited or answered: {self.already}")
        return shown


def learners(client: redis.Redis, *, batch: int = SCAN_BATCH) -> Iterator[Progress]:
    """Every learner's record (a SCAN over their progress hashes, read ``batch`` at a time)."""
    keys: list[bytes] = []
    for key in client.scan_iter(match=learner_key_pattern(LearnerPart.PROGRESS), count=batch):
        keys.append(key)
        if len(keys) >= batch:
            yield from _read(client, keys)
            keys = []
    yield from _read(client, keys)


def _read(client: redis.Redis, keys: list[bytes]) -> Iterator[Progress]:
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.hgetall(key)
    for raw in pipe.execute():
        progress = Progress.from_hash(raw)
        if progress is not None:
            yield progress


def announce(client: redis.Redis, store: Store, course: Course, policy: Policy, event: OpenDay, *, now_ms: int,
             dry_run: bool = False, on_progress: Callable[[int], None] | None = None,
             progress_every: int = PROGRESS_EVERY_LEARNERS) -> Announcement:
    """Invite the event's audience (see the module docstring); returns the counts.

    It reads every learner's record: the console runs it in the worker (``bot.console.jobs``), which passes
    ``on_progress``, called with the learners read so far every ``progress_every`` of them and once at the end."""
    template = course.template_for("open_day_invite")
    found = Announcement(event_id=event.id, dry_run=dry_run, currency=policy.prices.currency)
    read = 0
    for progress in learners(client):
        read += 1
        if on_progress is not None and read % progress_every == 0:
            on_progress(read)
        if not event.audience.admits(channel=progress.channel, lang=progress.lang, business=progress.business,
                                     modules_done=tuple(progress.modules_done)):
            found.outside_audience += 1
            continue
        if progress.open_days.state(event.id):
            found.already += 1
            continue
        reach = Reach(channel=progress.channel, opted_out=not consent.may_message_first(progress),
                      last_inbound_ms=progress.last_inbound_at_ms, record=progress.proactive)
        decided = placement.place(reach, moment_ms=now_ms, now_ms=now_ms, policy=policy, template=template)
        if decided.sends:
            found.by_how[decided.how.value] += 1
            found.cost += decided.cost
        elif decided.reason in LATER:
            found.by_how[f"later ({decided.reason})"] += 1
        else:
            found.by_how[f"none ({decided.reason})"] += 1
            continue
        found.scheduled += 1
        found.by_channel[progress.channel] += 1
        if not dry_run:
            store.schedule(progress.learner_id, f"{TIMER_PREFIX}ann:{event.id}", now_ms)
    if on_progress is not None:
        on_progress(read)
    return found
