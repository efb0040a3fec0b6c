"""The places that keep data about a learner, each able to export and erase its part.

A holder is small: a ``name`` (its section of the export), ``export(client, person)`` -> JSON-able data or
None (holds nothing), and ``erase(client, person, now_ms)`` -> how many entries it removed. Erase runs
the holders in order, ``LearnerKeys`` last, so that an erase cut short (a crash, Redis gone) leaves the
progress hash behind and can simply be run again.

Adding a place that stores learner data (an analytics store, a linking code, a handover inbox) means
adding a holder here, or ``register(holder)`` at start-up from a module above this one.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

import redis

from bot import channels
from bot.analytics.recording import Recorder
from bot.analytics.store import AnalyticsStore
from bot.channels.parts import ChannelParts
from bot.model.privacy import learner_ref
from bot.model.sandbox import SESSION_DIGITS, session_of
from bot.privacy.identity_holders import DataExports, LinkCodes, LinkedConversations
from bot.privacy.person import Person
from bot.storage import broadcast_store, certificate_store
from bot.storage.encoding import text
from bot.storage.key_values import read_value
from bot.storage.keys import (
    LEGACY_HANDOVER_INDEX_KEY,
    LEGACY_TIMER_INDEX_KEY,
    LearnerPart,
    learner_handover_index_key,
    learner_key,
    learner_timer_index_key,
    simulator_log_key,
)
from bot.storage.open_day_ledger import OpenDayLedger
from config.settings import Settings


class LearnerDataHolder(Protocol):
    name: str

    def export(self, client: redis.Redis, person: Person) -> Any:
        """What this place keeps about ``person``, as JSON-able data; None when nothing."""

    def erase(self, client: redis.Redis, person: Person, now_ms: int) -> int:
        """Remove it; the number of keys or entries removed."""


class TimerIndex:
    """The timer sweeper's global due-index (``bot.delivery.timers``): one member per learner with a clock event."""

    name = "timer_index"

    def export(self, client: redis.Redis, person: Person) -> Any:
        pipe = client.pipeline(transaction=False)
        for learner_id in person.ids:
            pipe.zscore(learner_timer_index_key(learner_id), learner_id)
        due = {lid: int(score) for lid, score in zip(person.ids, pipe.execute(), strict=True) if score is not None}
        return {"earliest_due_ms": due} if due else None

    def erase(self, client: redis.Redis, person: Person, now_ms: int) -> int:
        removed = sum(int(client.zrem(learner_timer_index_key(lid), lid)) for lid in person.ids)
        return removed + int(client.zrem(LEGACY_TIMER_INDEX_KEY, *person.ids))


class HandoverIndex:
    """The inbox's list of open handovers (``bot.handover``): one member per learner waiting for a person.
    The conversation itself is in the progress hash (``handover``), exported and erased with it."""

    name = "handover_index"

    def export(self, client: redis.Redis, person: Person) -> Any:
        pipe = client.pipeline(transaction=False)
        for learner_id in person.ids:  # the learner's shard, then the legacy key
            pipe.zscore(learner_handover_index_key(learner_id), learner_id)
            pipe.zscore(LEGACY_HANDOVER_INDEX_KEY, learner_id)
        answers = pipe.execute()
        pairs = zip(person.ids, answers[::2], answers[1::2], strict=True)
        since = {lid: int(shard if shard is not None else legacy) for lid, shard, legacy in pairs
                 if shard is not None or legacy is not None}
        return {"open_since_ms": since} if since else None

    def erase(self, client: redis.Redis, person: Person, now_ms: int) -> int:
        removed = sum(int(client.zrem(learner_handover_index_key(lid), lid)) for lid in person.ids)
        return removed + int(client.zrem(LEGACY_HANDOVER_INDEX_KEY, *person.ids))


class BroadcastRecipients:
    """Broadcasts (``bot.storage.broadcast_store``): a recipient's place in each frozen audience and their state
    (queued, sent, delivered, read...), kept by learner id. Erased: the state goes, the place is blanked."""

    name = "broadcasts"

    def export(self, client: redis.Redis, person: Person) -> Any:
        return broadcast_store.recipient_states(client, person.ids) or None

    def erase(self, client: redis.Redis, person: Person, now_ms: int) -> int:
        return broadcast_store.forget(client, person.ids)


class Certificates:
    """Issued certificates (``bot.storage.certificate_store``): exported whole, revoked on erase."""

    name = "certificates"

    def export(self, client: redis.Redis, person: Person) -> Any:
        found = []
        for code in _codes(client, person):
            cert = certificate_store.by_code(client, code)
            if cert is not None:
                found.append(certificate_store.to_hash(cert))
        return found or None

    def erase(self, client: redis.Redis, person: Person, now_ms: int) -> int:
        codes = _codes(client, person)
        return sum(certificate_store.revoke(client, code, now_ms=now_ms) for code in codes)


class SimulatorLog:
    """What a sandbox learner of the browser simulator did, in its session's log (bot.simulator.session)."""

    name = "simulator_log"

    def export(self, client: redis.Redis, person: Person) -> Any:
        found = _simulator_entries(client, person)
        return [json.loads(raw) for _, raw in found[1]] if found else None

    def erase(self, client: redis.Redis, person: Person, now_ms: int) -> int:
        found = _simulator_entries(client, person)
        if not found:
            return 0
        key, entries = found
        pipe = client.pipeline(transaction=True)
        for _, raw in entries:
            pipe.lrem(key, 1, raw)
        return sum(int(removed) for removed in pipe.execute())


class OpenDaySeats:
    """Business Open Days' ledgers (``bot.storage.open_day_ledger``): a seat, a place on the waiting list, a
    "no", a calendar ticket, a promotion not yet told — in each event's own keys."""

    name = "open_days"

    def export(self, client: redis.Redis, person: Person) -> Any:
        return OpenDayLedger(client).rsvps_of(person.ids, event_ids=person.open_days) or None

    def erase(self, client: redis.Redis, person: Person, now_ms: int) -> int:
        return OpenDayLedger(client).forget(person.ids, event_ids=person.open_days)


class AnalyticsRows:
    """The learning-analytics store (``bot.analytics.store``: every row under the learner's ``learner_ref``) and
    the events still waiting in their analytics stream (not folded yet). Registered at start-up by the processes
    that export and erase (the web app for the console, the CLI), which know where the store is."""

    name = "analytics"

    def __init__(self, store: AnalyticsStore, recorder: Recorder) -> None:
        self.store = store
        self.recorder = recorder

    def export(self, client: redis.Redis, person: Person) -> Any:
        found = {learner_id: rows for learner_id in person.ids if (rows := self.store.export(learner_id))}
        return found or None

    def erase(self, client: redis.Redis, person: Person, now_ms: int) -> int:
        removed = 0
        for learner_id in person.ids:
            ref = learner_ref(learner_id)
            stream = self.recorder.stream_for(learner_id)
            waiting = [entry_id for entry_id, fields in client.xrange(stream) or []
                       if entry_id is not None and ref.encode() in ((fields or {}).get(b"e") or b"")]
            if waiting:
                removed += int(client.xdel(stream, *waiting))
            removed += self.store.erase(learner_id)
        return removed


class LearnerKeys:
    """The learner's own keys (every ``LearnerPart``: progress, dedup set, outbox, timers, delivery facts,
    locks, pacing, receipt) and the alias keys of the other ids that point at them."""

    name = "keys"

    def export(self, client: redis.Redis, person: Person) -> Any:
        out: dict[str, Any] = {}
        for learner_id, part in _keys_of(person):
            value = read_value(client, learner_key(learner_id, part))
            if value is not None:
                out.setdefault(learner_id, {})[part.value] = value
        return out or None

    def erase(self, client: redis.Redis, person: Person, now_ms: int) -> int:
        keys = [learner_key(learner_id, part) for learner_id, part in _keys_of(person)
                if part is not LearnerPart.PROGRESS]
        removed = int(client.delete(*keys))
        return removed + int(client.delete(learner_key(person.learner_id, LearnerPart.PROGRESS)))  # last: see above


DEFAULT_HOLDERS: list[LearnerDataHolder] = [TimerIndex(), HandoverIndex(), Certificates(), SimulatorLog(),
                                             OpenDaySeats(), BroadcastRecipients(), LinkedConversations(), LinkCodes(),
                                             DataExports(), LearnerKeys()]


def register(holder: LearnerDataHolder) -> None:
    """Add a holder (before ``LearnerKeys``, which must run last); one of the same name is replaced (the
    analytics holder of a process that was set up again, e.g. on another store)."""
    for index, existing in enumerate(DEFAULT_HOLDERS):
        if existing.name == holder.name:
            DEFAULT_HOLDERS[index] = holder
            return
    DEFAULT_HOLDERS.insert(len(DEFAULT_HOLDERS) - 1, holder)


def _codes(client: redis.Redis, person: Person) -> list[str]:
    records = list(person.certificate_records) if person.certificate_records is not None else None
    return certificate_store.codes_of(client, person.learner_id, scan=person.thorough, record_keys=records)


def analytics_holder(settings: Settings) -> AnalyticsRows:
    """The analytics store this process's settings name (``ANALYTICS_URL``, or SQLite under the var folder)."""
    return AnalyticsRows(AnalyticsStore.for_settings(settings.analytics_url, settings.var_dir),
                         Recorder(shards=settings.analytics_shards))


def _keys_of(person: Person) -> list[tuple[str, LearnerPart]]:
    own = [(person.learner_id, part) for part in LearnerPart]
    return own + [(alias, LearnerPart.ALIAS) for alias in person.aliases]


def _simulator_entries(client: redis.Redis, person: Person) -> tuple[str, list[tuple[int, str]]] | None:
    """The simulator session log of this learner, and its entries about them (their channel's), if a sandbox one."""
    prefix, _, user = person.learner_id.partition(":")
    parts = _parts_for_prefix(prefix)
    if parts is None:
        return None
    session = session_of(person.learner_id) or user.removeprefix(parts.dev.transcript_user)  # production, dev
    if session == user or len(session) != SESSION_DIGITS or not session.isdigit():
        return None
    key = simulator_log_key(session)
    entries = [(i, text(raw)) for i, raw in enumerate(client.lrange(key, 0, -1))]
    mine = [(i, raw) for i, raw in entries if _entry_channel(raw) == parts.channel.name]
    return (key, mine) if mine else None


def _entry_channel(raw: str) -> str:
    try:
        entry = json.loads(raw)
    except ValueError:
        return ""
    return str(entry.get("channel", "")) if isinstance(entry, dict) else ""


def _parts_for_prefix(prefix: str) -> ChannelParts | None:
    try:
        return channels.for_prefix(prefix)
    except channels.UnknownChannel:
        return None
