"""Linking a learner's channels, and unlinking them, across Redis Cluster hash slots - crash-safe.

Codes. ``issue`` stores a link code (``bot.tutor.linking``) for 10 minutes under its own key
(``bottega:linkcode:{CODE}`` -> the learner who asked); ``redeem`` reads it with GETDEL, so a code links at
most once however many messages race with it. Each id may try ``MAX_TRIES`` codes per 10 minutes
(``LearnerPart.LINK_TRIES``, counted before the code is looked at): with ~40 random bits per code, guessing
a live one is hopeless.

Merging (link). The two learners' keys live in two slots (``{a}``, ``{b}``), so no one script can cover
both. A *journal entry* (``LearnerPart.MERGE``: JSON with a random id, both ids, the channel, when) is
written on both, and every step is a script on one slot, guarded by that entry, so any number of runners
(the merger, a dispatcher that meets a frozen learner, the worker at boot) can run the steps again:

1. reserve ``b`` (SET NX): from now on no turn commits on ``b`` (``Store.commit`` answers FROZEN);
2. reserve ``a`` (SET NX); if ``a`` is reserved by another journal, release ``b``: nothing happened;
3. read ``b`` (one MULTI on its slot: record, dedup set, outbox, delivery, receipt, timers, journal);
   apply on ``a`` (one script): the merged record (``bot.tutor.merging``), ``b``'s conversation parts under
   ``a`` suffixed ``@<channel>``, ``b``'s timers - and the journal marked *applied*;
4. on ``b`` (one script): delete its parts, leave the alias ``b`` -> ``a``, drop the journal;
5. drop ``a``'s journal; move ``b``'s timer index entry and certificate pointer to ``a``.

A crash anywhere leaves journals behind; whoever meets them (``recover``) finishes: once step 3 applied,
forward (steps 4, 5: both merged); before it, a journal younger than ``GRACE_MS`` may be a merger still at
work (wait), an older one is rolled back (both apart: step 3 refuses to apply after ``GRACE_MS``, so a
slow merger can never apply what a runner already rolled back).

Unlinking (split) keeps ``a`` reserved throughout, so every step can be redone: write ``b``'s own record
and conversation parts (only if ``b`` has none yet), then remove the conversation from ``a`` and release it.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any

import redis

from bot.storage import certificate_store
from bot.storage.encoding import text
from bot.storage.keys import (
    LearnerPart,
    certificate_learner_key,
    learner_key,
    learner_timer_index_key,
    link_code_key,
)
from bot.storage.store import Store
from bot.tutor import conversations, merging
from bot.tutor.progress import Progress
from bot.tutor.progress_parts import ChannelConversation

CODE_TTL_SECONDS = 600
MAX_TRIES = 5  # codes one id may try per CODE_TTL_SECONDS
GRACE_MS = 10_000  # a journal younger than this may belong to a runner still at work
_COPIED = (LearnerPart.SEEN, LearnerPart.OUTBOX, LearnerPart.DELIVERY, LearnerPart.RECEIPT)
_DROPPED = (LearnerPart.PROGRESS, LearnerPart.SEEN, LearnerPart.OUTBOX, LearnerPart.DELIVERY, LearnerPart.RECEIPT,
            LearnerPart.TIMERS, LearnerPart.SEND_LOCK, LearnerPart.WAKE, LearnerPart.PACE)

# KEYS: journal, progress, seen, outbox, delivery, receipt, timers (the last five: the conversation's / record's).
# ARGV: 1 journal, 2 journal once applied, 3 now ms, 4 apply deadline ms, 5 replace progress 0|1 (a split's
# new record: only if none exists), then counts: 6 #fields, 7 #seen args, 8 #items, 9 #delivery args,
# 10 receipt or '', 11 receipt ttl ms, 12 #timer args, then the lists. -> 1 applied, 0 not ours, -1 too late.
_APPLY = """
if ARGV[1] ~= '' and redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if tonumber(ARGV[3]) > tonumber(ARGV[4]) then return -1 end
if ARGV[5] == '0' and redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local first = 13
local n = tonumber(ARGV[6])
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], unpack(ARGV, first, first + n - 1))
first = first + n
n = tonumber(ARGV[7])
for i = first, first + n - 1, 2 do redis.call('ZADD', KEYS[3], ARGV[i], ARGV[i + 1]) end
first = first + n
n = tonumber(ARGV[8])
for i = first, first + n - 1 do redis.call('RPUSH', KEYS[4], ARGV[i]) end
first = first + n
n = tonumber(ARGV[9])
if n > 0 then redis.call('HSET', KEYS[5], unpack(ARGV, first, first + n - 1)) end
first = first + n
if ARGV[10] ~= '' then redis.call('SET', KEYS[6], ARGV[10], 'PX', ARGV[11]) end
n = tonumber(ARGV[12])
for i = first, first + n - 1, 2 do redis.call('ZADD', KEYS[7], ARGV[i], ARGV[i + 1]) end
if ARGV[2] ~= '' then redis.call('SET', KEYS[1], ARGV[2]) end
return 1
"""
# KEYS: journal, alias, then the parts to delete. ARGV: 1 journal, 2 alias target ('' removes it). -> 1 | 0
_RELEASE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
for i = 3, #KEYS do redis.call('DEL', KEYS[i]) end
if ARGV[2] ~= '' then redis.call('SET', KEYS[2], ARGV[2]) else redis.call('DEL', KEYS[2]) end
redis.call('DEL', KEYS[1])
return 1
"""
_DEL_IF = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


class Linked(str, Enum):
    LINKED = "linked"
    UNLINKED = "unlinked"
    BUSY = "busy"  # one of the two is in another link or unlink: nothing happened
    APART = "apart"  # rolled back: nothing happened


@dataclass(frozen=True, kw_only=True, slots=True)
class Journal:
    """One link or unlink in progress, written on the learners it touches (``LearnerPart.MERGE``)."""

    id: str
    kind: str  # "link" | "unlink"
    into: str  # the record that survives (link) / keeps the progress (unlink)
    other: str  # the id that joins (link) / leaves with a record of its own (unlink)
    channel: str  # the joining / leaving channel's name
    at_ms: int
    conversation: dict[str, Any]  # the joining channel's facts (ChannelConversation JSON), for a new record

    def to_json(self, *, applied: bool = False) -> str:
        data = asdict(self)
        if applied:
            data["applied"] = True
        return json.dumps(data, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, raw: str) -> Journal | None:
        try:
            data = json.loads(raw)
            return cls(id=str(data["id"]), kind=str(data["kind"]), into=str(data["into"]), other=str(data["other"]),
                       channel=str(data["channel"]), at_ms=int(data["at_ms"]),
                       conversation=dict(data.get("conversation") or {}))
        except (ValueError, KeyError, TypeError):
            return None


class Links:
    def __init__(self, store: Store):
        self.store = store
        self.client: redis.Redis = store.client
        self._apply = self.client.register_script(_APPLY)
        self._release = self.client.register_script(_RELEASE)
        self._del_if = self.client.register_script(_DEL_IF)

    # -- codes ------------------------------------------------------------------------------------
    def issue(self, code: str, learner_id: str) -> bool:
        value = json.dumps({"learner": learner_id}, separators=(",", ":"))
        return bool(self.client.set(link_code_key(code), value, nx=True, ex=CODE_TTL_SECONDS))

    def redeem(self, code: str, *, by: str) -> tuple[str, bool]:
        """(the learner who asked for ``code``, or "", whether ``by`` is over its tries). Single use."""
        tries_key = learner_key(by, LearnerPart.LINK_TRIES)
        pipe = self.client.pipeline(transaction=False)
        pipe.set(tries_key, 0, nx=True, ex=CODE_TTL_SECONDS)  # the window starts at the first try
        pipe.incr(tries_key)
        tries = int(pipe.execute()[1])
        if tries > MAX_TRIES:
            return "", True
        raw = self.client.getdel(link_code_key(code))
        if raw is None:
            return "", False
        try:
            return str(json.loads(raw)["learner"]), False
        except (ValueError, KeyError, TypeError):
            return "", False

    def resolve(self, learner_id: str) -> str:
        """The learner ``learner_id`` leads to (through aliases), or "" when nobody has a record there."""
        for _ in range(4):
            if self.store.exists(learner_id):
                return learner_id
            learner_id = self.store.alias_of(learner_id)
            if not learner_id:
                return ""
        return ""

    # -- link -------------------------------------------------------------------------------------
    def link(self, into: str, other: str, conversation: ChannelConversation, now_ms: int) -> Linked:
        journal = Journal(id=secrets.token_hex(8), kind="link", into=into, other=other,
                          channel=conversation.channel, at_ms=now_ms, conversation=conversation.to_json())
        entry = journal.to_json()
        if not self.client.set(learner_key(other, LearnerPart.MERGE), entry, nx=True):
            return Linked.BUSY
        if not self.client.set(learner_key(into, LearnerPart.MERGE), entry, nx=True):
            self._del_if(keys=[learner_key(other, LearnerPart.MERGE)], args=[entry])
            return Linked.BUSY
        return self.finish(journal, now_ms)

    def unlink(self, into: str, channel: str, now_ms: int) -> Linked:
        progress = self.store.load_one(into, "").progress
        home = progress.learner_id.partition(":")[0] if progress else ""
        leaving = next((c for c in conversations.every(progress) if c.channel == channel), None) if progress else None
        if leaving is None or leaving.learner_id.partition(":")[0] == home:
            return Linked.APART
        journal = Journal(id=secrets.token_hex(8), kind="unlink", into=into, other=leaving.learner_id,
                          channel=channel, at_ms=now_ms, conversation=leaving.to_json())
        if not self.client.set(learner_key(into, LearnerPart.MERGE), journal.to_json(), nx=True):
            return Linked.BUSY
        return self.finish(journal, now_ms)

    def recover(self, learner_id: str, now_ms: int) -> Linked | None:
        """Finish (or roll back) the journal entry found on ``learner_id``; None: none, or one still young."""
        raw = self.client.get(learner_key(learner_id, LearnerPart.MERGE))
        journal = Journal.from_json(text(raw)) if raw is not None else None
        if journal is None:
            if raw is not None:  # unreadable: nobody can finish it
                self._del_if(keys=[learner_key(learner_id, LearnerPart.MERGE)], args=[raw])
            return None
        result = self.finish(journal, now_ms)
        return None if result is Linked.BUSY else result

    def pending(self) -> list[str]:
        """Learners with a journal entry (the worker finishes them at boot)."""
        pattern = learner_key("*", LearnerPart.MERGE)
        return sorted({text(key)[len("bottega:{"):-len("}:merge")] for key in self.client.scan_iter(match=pattern)})

    def finish(self, journal: Journal, now_ms: int) -> Linked:
        if journal.kind == "unlink":
            return self._finish_unlink(journal, now_ms)
        return self._finish_link(journal, now_ms)

    def _finish_link(self, journal: Journal, now_ms: int) -> Linked:
        a_key, b_key = learner_key(journal.into, LearnerPart.MERGE), learner_key(journal.other, LearnerPart.MERGE)
        entry, applied = journal.to_json(), journal.to_json(applied=True)
        pipe = self.client.pipeline(transaction=False)  # not MGET: two learners, two hash slots
        pipe.get(a_key)
        pipe.get(b_key)
        a_marker, b_marker = (text(v) if v is not None else "" for v in pipe.execute())
        young = now_ms - journal.at_ms < GRACE_MS
        if a_marker == entry and b_marker == entry:
            if self._apply_link(journal, now_ms) == -1:  # too late: roll back, both apart
                self._del_if(keys=[b_key], args=[entry])
                self._del_if(keys=[a_key], args=[entry])
                return Linked.APART
            a_marker = text(self.client.get(a_key) or b"")
        if a_marker == applied:
            self._release(keys=[b_key, learner_key(journal.other, LearnerPart.ALIAS),
                                *(learner_key(journal.other, part) for part in _DROPPED)],
                          args=[entry, journal.into])
            self._after_link(journal)
            self._del_if(keys=[a_key], args=[applied])
            return Linked.LINKED
        if young:
            return Linked.BUSY  # a merger may be between its steps: ask again soon
        self._del_if(keys=[b_key], args=[entry])
        self._del_if(keys=[a_key], args=[entry])
        return Linked.APART

    def _apply_link(self, journal: Journal, now_ms: int) -> int:
        b = journal.other
        pipe = self.client.pipeline(transaction=True)  # one slot: b's parts as of one moment
        pipe.get(learner_key(b, LearnerPart.MERGE))
        pipe.hgetall(learner_key(b, LearnerPart.PROGRESS))
        pipe.zrange(learner_key(b, LearnerPart.SEEN), 0, -1, withscores=True)
        pipe.lrange(learner_key(b, LearnerPart.OUTBOX), 0, -1)
        pipe.hgetall(learner_key(b, LearnerPart.DELIVERY))
        pipe.get(learner_key(b, LearnerPart.RECEIPT))
        pipe.pttl(learner_key(b, LearnerPart.RECEIPT))
        pipe.zrange(learner_key(b, LearnerPart.TIMERS), 0, -1, withscores=True)
        marker, raw, seen, items, delivery, receipt, receipt_ttl, timers = pipe.execute()
        if text(marker or b"") != journal.to_json():
            return 0
        into = self.store.load_one(journal.into, "").progress
        if into is None:
            return 0
        other = Progress.from_hash(raw)
        conversation = ChannelConversation.from_json(journal.conversation)
        if other is not None:
            here = other.with_changes(learner_id=b)
            conversation = ChannelConversation(
                channel=conversation.channel, learner_id=b, user_id=here.user_id or conversation.user_id,
                phone=here.phone or conversation.phone, bsuid=here.bsuid or conversation.bsuid,
                reply_from=here.reply_from or conversation.reply_from,
                last_inbound_at_ms=max(here.last_inbound_at_ms, conversation.last_inbound_at_ms),
                linked_at_ms=journal.at_ms)
        else:
            conversation = ChannelConversation(**{**conversation.to_json(), "linked_at_ms": journal.at_ms})
        merged = merging.merge(into, other, conversation).with_changes(rev=into.rev + 1)
        at = f"{journal.into}@{journal.channel}"
        return self._write(journal, merged, at, seen=seen, items=items, delivery=delivery, receipt=receipt,
                           receipt_ttl=receipt_ttl, timers=timers, now_ms=now_ms, deadline=journal.at_ms + GRACE_MS)

    def _write(self, journal: Journal | None, progress: Progress, at: str, *, seen: list, items: list,
               delivery: dict, receipt: Any, receipt_ttl: int, timers: list, now_ms: int, deadline: int,
               only_new: bool = False) -> int:
        fields = [part for pair in progress.to_hash().items() for part in pair]
        seen_args = [part for member, score in seen for part in (int(score), member)]
        delivery_args = [part for pair in delivery.items() for part in pair]
        timer_args = [part for member, score in timers for part in (int(score), member)]
        lid = progress.learner_id
        keys = [learner_key(journal.into if journal and not only_new else lid, LearnerPart.MERGE),
                learner_key(lid, LearnerPart.PROGRESS), learner_key(at, LearnerPart.SEEN),
                learner_key(at, LearnerPart.OUTBOX), learner_key(at, LearnerPart.DELIVERY),
                learner_key(at, LearnerPart.RECEIPT), learner_key(lid, LearnerPart.TIMERS)]
        args = [journal.to_json() if journal and not only_new else "",
                journal.to_json(applied=True) if journal and not only_new else "", now_ms, deadline,
                int(not only_new), len(fields), len(seen_args), len(items), len(delivery_args),
                receipt if receipt is not None else "", max(int(receipt_ttl), 1), len(timer_args),
                *fields, *seen_args, *items, *delivery_args, *timer_args]
        return int(self._apply(keys=keys, args=args))

    def _after_link(self, journal: Journal) -> None:
        """The global parts: the timer index and the certificate pointer follow the learner."""
        due = self.client.zrange(learner_key(journal.into, LearnerPart.TIMERS), 0, 0, withscores=True)
        pipe = self.client.pipeline(transaction=False)
        if due:
            pipe.zadd(learner_timer_index_key(journal.into), {journal.into: int(due[0][1])})
        pipe.zrem(learner_timer_index_key(journal.other), journal.other)
        pipe.execute()
        theirs = certificate_learner_key(journal.other)  # not RENAMENX: the two pointers are in two shards (slots)
        code = self.client.get(theirs)
        if code is not None and certificate_store.by_learner(self.client, journal.into) is None:
            self.client.set(certificate_learner_key(journal.into), code, nx=True)
        self.client.delete(theirs)

    # -- unlink -----------------------------------------------------------------------------------
    def _finish_unlink(self, journal: Journal, now_ms: int) -> Linked:
        a_key, entry = learner_key(journal.into, LearnerPart.MERGE), journal.to_json()
        marker = text(self.client.get(a_key) or b"")
        if marker not in (entry, journal.to_json(applied=True)):
            return Linked.APART
        at = f"{journal.into}@{journal.channel}"
        if marker != entry:
            return self._release_unlink(journal, at)
        pipe = self.client.pipeline(transaction=True)
        pipe.hgetall(learner_key(journal.into, LearnerPart.PROGRESS))
        pipe.zrange(learner_key(at, LearnerPart.SEEN), 0, -1, withscores=True)
        pipe.lrange(learner_key(at, LearnerPart.OUTBOX), 0, -1)
        pipe.hgetall(learner_key(at, LearnerPart.DELIVERY))
        pipe.get(learner_key(at, LearnerPart.RECEIPT))
        pipe.pttl(learner_key(at, LearnerPart.RECEIPT))
        raw, seen, items, delivery, receipt, receipt_ttl = pipe.execute()
        progress = Progress.from_hash(raw)
        parts = merging.split(progress, journal.channel) if progress else None
        if parts is not None:
            kept, own = parts
            own = own.with_changes(rev=1)
            # the leaving channel's own record first (only if it has none: a rerun writes nothing twice) ...
            self._write(journal, own, own.learner_id, seen=seen, items=items, delivery=delivery, receipt=receipt,
                        receipt_ttl=receipt_ttl, timers=[], now_ms=now_ms, deadline=now_ms + 1, only_new=True)
            self.client.delete(learner_key(own.learner_id, LearnerPart.ALIAS))
            # ... then the learner without it, released in the same script as its conversation parts go
            self._write(journal, kept.with_changes(rev=kept.rev + 1), journal.into, seen=[], items=[],
                        delivery={}, receipt=None, receipt_ttl=1, timers=[], now_ms=now_ms, deadline=now_ms + 1)
        self._del_if(keys=[a_key], args=[entry])  # nothing to split (the conversation was gone): just release
        return self._release_unlink(journal, at)

    def _release_unlink(self, journal: Journal, at: str) -> Linked:
        """The learner without the conversation's parts, released (its journal gone)."""
        self._release(keys=[learner_key(journal.into, LearnerPart.MERGE), learner_key(at, LearnerPart.MERGE),
                            *(learner_key(at, part) for part in (*_COPIED, LearnerPart.SEND_LOCK, LearnerPart.WAKE,
                                                                 LearnerPart.PACE))],
                      args=[journal.to_json(applied=True), ""])
        return Linked.UNLINKED
