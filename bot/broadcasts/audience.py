"""Who a broadcast is for: a query over the learners' records, and the learners it matches.

A ``Query`` is plain data (JSON on the broadcast's record, flags on ``bottega broadcast``). Empty fields
match everyone. ``matches`` reads one learner's ``Progress``; ``learners`` walks every learner's record
(SCAN over the progress hashes, HGETALL in pipelined batches: an admin's tool, never per message).

RSVP state: a Business Open Day's answer as the learner's record keeps it (``progress.open_days``: invited |
maybe | seated | waiting | declined; the event's seat ledger is the source of truth and this its
consequence, ``bot.tutor.open_days``). ``RsvpLookup`` is the hook: ``Broadcasts`` takes another lookup
(the ledger itself, say) where the record is not enough.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, fields
from typing import Any

import redis

from bot.model.sandbox import is_sandbox
from bot.storage.keys import LearnerPart, learner_id_of, learner_key_pattern
from bot.tutor.progress import Progress

DAY_MS = 24 * 3_600_000
NO_CHECKUP = "none"  # the check-up level of a learner who never finished one
LOAD_BATCH = 500
PROGRESS_EVERY_LEARNERS = 2_000  # learners read between two progress reports of a dry run (the console's counter)

RsvpLookup = Callable[[Progress, str], str]


def recorded_rsvp(progress: Progress, event_id: str) -> str:
    """The default RSVP lookup: the learner's answer to that Open Day as their record keeps it ("" if none)."""
    return progress.open_days.state(event_id)


@dataclass(frozen=True, kw_only=True)
class Query:
    channels: tuple[str, ...] = ()  # channel names: whatsapp, messenger, instagram
    languages: tuple[str, ...] = ()  # it, en
    business: tuple[str, ...] = ()  # business type ids (course.yaml)
    modules_done: tuple[str, ...] = ()  # every one of these finished
    modules_not_done: tuple[str, ...] = ()  # none of these finished
    checkup_levels: tuple[str, ...] = ()  # the last check-up's level id; "none": never finished one
    active_within_days: int | None = None  # wrote to Bottega in the last N days
    inactive_for_days: int | None = None  # has not written for at least N days
    rsvp_event: str = ""  # with rsvp_states: an Open Day's id
    rsvp_states: tuple[str, ...] = ()  # default: seated
    reminders: bool | None = None  # True: chose reminders (and they run); False: did not

    def matches(self, progress: Progress, now_ms: int, rsvp: RsvpLookup = recorded_rsvp) -> bool:
        if self.channels and progress.channel not in self.channels:
            return False
        if self.languages and progress.lang not in self.languages:
            return False
        if self.business and progress.business not in self.business:
            return False
        done = set(progress.modules_done)
        if not set(self.modules_done) <= done or done & set(self.modules_not_done):
            return False
        if self.checkup_levels:
            result = progress.checkup.result
            if (result.level if result and result.level else NO_CHECKUP) not in self.checkup_levels:
                return False
        last = progress.last_inbound_at_ms
        if self.active_within_days is not None and now_ms - last > self.active_within_days * DAY_MS:
            return False
        if self.inactive_for_days is not None and now_ms - last < self.inactive_for_days * DAY_MS:
            return False
        if self.rsvp_event and rsvp(progress, self.rsvp_event) not in (self.rsvp_states or ("seated",)):
            return False
        return self.reminders is None or progress.reminders.active == self.reminders

    def to_json(self) -> str:
        return json.dumps({key: value for key, value in asdict(self).items() if value not in ((), None, "")},
                          separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, raw: str) -> Query:
        data = json.loads(raw) if raw else {}
        if not isinstance(data, dict):
            raise ValueError("a query is a JSON object")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(f"unknown query fields {unknown}; known: {sorted(known)}")
        values: dict[str, Any] = {}
        for name, value in data.items():
            values[name] = tuple(value) if isinstance(value, list) else value
        return cls(**values)

    def describe(self) -> str:
        text = self.to_json()
        return "everyone" if text == "{}" else text


def learners(client: redis.Redis, batch: int = LOAD_BATCH) -> Iterator[Progress]:
    """Every learner's record, each once (SCAN may name a key twice; a key gone meanwhile is skipped). The
    production simulator's sandbox learners (``bot.model.sandbox``) are nobody's audience: left out."""
    seen: set[str] = set()
    keys: list[bytes] = []
    for key in client.scan_iter(match=learner_key_pattern(LearnerPart.PROGRESS), count=1000):
        lid = learner_id_of(key)
        if lid in seen or is_sandbox(lid):
            continue
        seen.add(lid)
        keys.append(key)
        if len(keys) >= batch:
            yield from _load(client, keys)
            keys = []
    if keys:
        yield from _load(client, keys)


def _load(client: redis.Redis, keys: list[bytes]) -> Iterator[Progress]:
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.hgetall(key)
    for raw in pipe.execute():
        progress = Progress.from_hash(raw) if raw else None
        if progress is not None:
            yield progress
