"""Progress on Redis: load a learner in one round trip, commit a turn atomically in another.

``commit`` is one Lua script over the learner's own keys (one hash slot): it checks the optimistic
``rev``, refuses an inbound message id already handled, writes the progress hash, remembers the id
(bounded: older than the dedup TTL or beyond the per-learner cap are dropped), and updates the
outbox — all or nothing. A crash before it changes nothing (Meta redelivers); a crash after it
leaves the replies safe in the outbox for the sender.

The outbox, kept short (the flood rules)
----------------------------------------
* A turn that adds replies first drops the *ephemeral* items older turns left unsent (re-prompts,
  the menu, "non ho capito": ``bot.model.replies.Reply.ephemeral``): the learner only needs the latest.
  A turn whose replies are all proactive (a reminder, a broadcast's message) drops none: the menu the
  learner just asked for still goes.
  The head is kept while a sender holds the lock (it may be on the wire).
* At most ``outbox_max_items`` items: beyond it the oldest ephemeral items go first. Lessons,
  feedback and results are never dropped — one valid tap adds one step's worth, so they are bounded
  by the course itself; a flood of invalid input adds nothing (``bot.tutor.engine``'s pause).
* The read receipt is not an outbox item: it waits in its own slot, one per learner, and a newer
  inbound message replaces it (marking the latest message read marks the earlier ones too). The
  sender sends it first, even while the outbox is backing off from a rate limit.

Identity: ``load`` resolves the event's id through aliases (``LearnerPart.ALIAS``): a learner first
known by their phone and now arriving with a BSUID is *moved* to the BSUID key (``move``: one
script renames every part and leaves an alias behind), so later messages load in one round trip;
the phone keeps pointing at them. ``move`` also follows ``user_changed_number``/``_user_id``.
On one Redis server ``move`` is one script over both learners' keys; on a Redis Cluster (where a script
touches one slot) it is three, each on one learner's slot: export (DUMP), import (RESTORE, only if the new
id has no record), retire (delete the old parts, leave the alias). A crash between import and retire
leaves the old copy; its outbox is not retired, so its pending replies may be sent again once — a
documented window of a rare operation (a number change, a BSUID arriving).

On a Redis Cluster every script touches keys of one slot: a commit's aliases (other learners' keys) are
written after the commit (a lost one is written again by the next load, which finds it missing), a
status is recorded with one script per candidate id, and the indexes shared by all learners (timers, the
live release, the open handovers) are sharded (``bot.storage.keys.SHARDS``) and written outside the scripts.

Durability: with ``wait_replicas`` the commit is followed by WAIT on its own connection
(``bot.storage.replication``).

One learner across channels (``bot.storage.links``): a linked channel's id is an alias of the learner too,
and its conversation's parts (dedup set, outbox, lock, receipt, delivery) live under the learner's hash tag
suffixed ``@<channel>`` (``bot.storage.keys.address``), so ``commit`` still touches one slot: ``seen_at`` is
the event's conversation, ``outbox_at`` the one the replies go to, ``elsewhere`` the others told something.
While a link or unlink journal entry (``LearnerPart.MERGE``) is on the learner, ``commit`` answers FROZEN.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

import redis
from redis.cluster import RedisCluster
from redis.typing import EncodableT

from bot.certificates.model import Certificate
from bot.model.events import InboundEvent
from bot.storage import broadcast_store, certificate_store, pipelined_script
from bot.storage.keys import (
    LEGACY_HANDOVER_INDEX_KEY,
    LEGACY_LIVE_RELEASE_KEY,
    LearnerPart,
    address,
    certificate_learner_key,
    handover_index_keys,
    learner_handover_index_key,
    learner_key,
    learner_live_release_key,
    learner_timer_index_key,
)
from bot.storage.outbox_item import OutboxItem
from bot.storage.replication import NotReplicated
from bot.tutor import conversations
from bot.tutor.progress import Progress
from bot.tutor.progress_parts import ChannelConversation

RECEIPT_TTL_MS = 24 * 3600 * 1000  # a read receipt older than WhatsApp's window is moot
ANALYTICS_EVENTS_CAP = 1000  # events kept on one learner's list when no sender forwards them (the commit's Lua)
MAX_ALIAS_HOPS = 3  # an id moved twice still finds its learner; a loop cannot spin

# KEYS: 1 progress, 2 seen, 3 outbox, 4 timers, 5 send lock, 6 receipt, 7 merge journal, 8 analytics events,
#       then the aliases to write, then other conversations' outboxes (a linked channel told something:
#       bot.tutor.linking). Seen, outbox, lock and receipt are the conversation's (bot.storage.keys.address),
#       all in the learner's slot.
# ARGV: 1 expected rev, 2 message id, 3 now ms, 4 dedup ttl ms, 5 dedup max ids, 6 #fields,
#       7 #timer args, 8 #items, 9 cancel timers 0|1, 10 receipt JSON or '', 11 outbox max items,
#       12 event time ms (0 = unknown), 13 receipt ttl ms, 14 drop proactive items 0|1, 15 #aliases,
#       16 the turn's analytics event JSON or '' (RPUSHed onto the learner's own events list),
#       then fields, timer args, items, alias values, then per other outbox: #items, items.
# Returns {status, outbox length, receipt slot was empty 0|1, ephemeral items dropped, analytics events
# waiting}; status -1
# conflict, -2 duplicate (or sent more than a second before the oldest arrival a full dedup set still
# remembers: it may be one of the ids the cap forgot), -3 frozen (a link or unlink of this learner is
# half done: bot.storage.links finishes it first), 1 committed.
_COMMIT = """
if redis.call('EXISTS', KEYS[7]) == 1 then return {-3, 0, 0, 0, 0} end
local rev = redis.call('HGET', KEYS[1], 'rev') or '0'
if rev ~= ARGV[1] then return {-1, 0, 0, 0, 0} end
local mid, now, ttl, max_ids = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
if mid ~= '' then
  if redis.call('ZSCORE', KEYS[2], mid) then return {-2, 0, 0, 0, 0} end
  local sent_ms = tonumber(ARGV[12])
  if sent_ms > 0 and redis.call('ZCARD', KEYS[2]) >= max_ids then
    local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    if oldest[2] and sent_ms + 1000 < tonumber(oldest[2]) then return {-2, 0, 0, 0, 0} end
  end
  redis.call('ZADD', KEYS[2], now, mid)
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - ttl)
  local extra = redis.call('ZCARD', KEYS[2]) - max_ids
  if extra > 0 then redis.call('ZREMRANGEBYRANK', KEYS[2], 0, extra - 1) end
  redis.call('PEXPIRE', KEYS[2], ttl)
end
local nfields, ntimers, nitems = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local first = 17
redis.call('HSET', KEYS[1], unpack(ARGV, first, first + nfields - 1))
if ARGV[9] == '1' then redis.call('DEL', KEYS[4]) end
first = first + nfields
for i = first, first + ntimers - 1, 2 do redis.call('ZADD', KEYS[4], ARGV[i], ARGV[i + 1]) end
first = first + ntimers
local dropped = 0
local function ephemeral(raw)
  local ok, item = pcall(cjson.decode, raw)
  return ok and type(item) == 'table' and item['ephemeral'] == true
end
local function proactive(raw)
  local ok, item = pcall(cjson.decode, raw)
  return ok and type(item) == 'table' and type(item['proactive']) == 'string' and item['proactive'] ~= ''
end
if ARGV[14] == '1' then
  local keep_head = redis.call('EXISTS', KEYS[5]) == 1
  local waiting = redis.call('LRANGE', KEYS[3], 0, -1)
  for i = 1, #waiting do
    if not (i == 1 and keep_head) and proactive(waiting[i]) then
      dropped = dropped + redis.call('LREM', KEYS[3], 1, waiting[i])
    end
  end
end
if nitems > 0 then
  local keep_head = redis.call('EXISTS', KEYS[5]) == 1
  local waiting = redis.call('LRANGE', KEYS[3], 0, -1)
  local supersedes = false  -- only the learner's own turn does: a reminder or a broadcast leaves their menu be
  for i = first, first + nitems - 1 do
    if not proactive(ARGV[i]) then supersedes = true end
  end
  for i = 1, #waiting do
    if supersedes and not (i == 1 and keep_head) and ephemeral(waiting[i]) then
      dropped = dropped + redis.call('LREM', KEYS[3], 1, waiting[i])
    end
  end
  for i = first, first + nitems - 1 do redis.call('RPUSH', KEYS[3], ARGV[i]) end
  local over = redis.call('LLEN', KEYS[3]) - tonumber(ARGV[11])
  if over > 0 then
    waiting = redis.call('LRANGE', KEYS[3], 0, -1)
    for i = 1, #waiting do
      if over <= 0 then break end
      if not (i == 1 and keep_head) and ephemeral(waiting[i]) then
        local removed = redis.call('LREM', KEYS[3], 1, waiting[i])
        dropped, over = dropped + removed, over - removed
      end
    end
  end
end
first = first + nitems
local receipt_new = 0
if ARGV[10] ~= '' then
  if redis.call('EXISTS', KEYS[6]) == 0 then receipt_new = 1 end
  redis.call('SET', KEYS[6], ARGV[10], 'PX', ARGV[13])
end
local events = 0
if ARGV[16] ~= '' then
  events = redis.call('RPUSH', KEYS[8], ARGV[16])
  if events > 1000 then  -- nobody forwards them (a worker without analytics): keep the newest only
    redis.call('LTRIM', KEYS[8], -1000, -1)
    events = 1000
  end
end
local naliases = tonumber(ARGV[15])
for i = 9, 8 + naliases do redis.call('SET', KEYS[i], ARGV[first + i - 9]) end
first = first + naliases
for k = 9 + naliases, #KEYS do
  local n = tonumber(ARGV[first])
  for i = first + 1, first + n do redis.call('RPUSH', KEYS[k], ARGV[i]) end
  first = first + n + 1
end
return {1, redis.call('LLEN', KEYS[3]), receipt_new, dropped, events}
"""

# Moving a learner to a new id. KEYS: the MOVED parts of the old id then of the new id (same order),
# then: old send lock, old alias, old certificate pointer, new certificate pointer.
# ARGV: 1 old id, 2 new id, 3 user id, 4 phone, 5 bsuid ('' keeps the stored one), 6 keep alias old -> new 0|1,
#       7 drop the outbox and receipt (they were addressed to a number that is no longer theirs) 0|1,
#       8 the number of moved parts.
# Returns 1 moved, 0 nothing to move (no old record, or the new id has one already).
_MOVED_PARTS = (LearnerPart.PROGRESS, LearnerPart.SEEN, LearnerPart.OUTBOX, LearnerPart.DELIVERY,
                LearnerPart.TIMERS, LearnerPart.RECEIPT, LearnerPart.EVENTS)
_CONVERSATION_MOVED = (LearnerPart.SEEN, LearnerPart.OUTBOX, LearnerPart.DELIVERY, LearnerPart.RECEIPT)
_MOVE = """
local n = tonumber(ARGV[8])
if redis.call('EXISTS', KEYS[n + 1]) == 1 or redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for i = 1, n do
  if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('RENAME', KEYS[i], KEYS[n + i]) end
end
redis.call('DEL', KEYS[2 * n + 1])
if ARGV[7] == '1' then redis.call('DEL', KEYS[n + 3], KEYS[n + 6]) end
redis.call('HSET', KEYS[n + 1], 'learner_id', ARGV[2], 'user_id', ARGV[3])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[n + 1], 'phone', ARGV[4]) end
if ARGV[5] ~= '' then redis.call('HSET', KEYS[n + 1], 'bsuid', ARGV[5]) end
if ARGV[6] == '1' then redis.call('SET', KEYS[2 * n + 2], ARGV[2]) else redis.call('DEL', KEYS[2 * n + 2]) end
if redis.call('EXISTS', KEYS[2 * n + 3]) == 1 then redis.call('RENAME', KEYS[2 * n + 3], KEYS[2 * n + 4]) end
return 1
"""

# The same move on a Redis Cluster, one slot per script. Export (old slot): KEYS the moved parts; returns
# {} when there is no record, else {dump or false, pttl} per part.
_EXPORT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
local out = {}
for i = 1, #KEYS do
  out[2 * i - 1] = redis.call('DUMP', KEYS[i]) or false
  out[2 * i] = redis.call('PTTL', KEYS[i])
end
return out
"""
# Import (new slot): KEYS the moved parts, then the send lock. ARGV: 1 new id, 2 user id, 3 phone, 4 bsuid,
# 5 drop outbox and receipt 0|1, then (dump, pttl) per part ('' = none). 1 imported, 0 the new id has a record.
_IMPORT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local n = #KEYS - 1
for i = 1, n do
  local dump, ttl = ARGV[4 + 2 * i], tonumber(ARGV[5 + 2 * i])
  if dump ~= '' then redis.call('RESTORE', KEYS[i], ttl > 0 and ttl or 0, dump, 'REPLACE') end
end
redis.call('DEL', KEYS[n + 1])
if ARGV[5] == '1' then redis.call('DEL', KEYS[3], KEYS[6]) end
redis.call('HSET', KEYS[1], 'learner_id', ARGV[1], 'user_id', ARGV[2])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'phone', ARGV[3]) end
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'bsuid', ARGV[4]) end
return 1
"""
# Retire (old slot): KEYS the moved parts, the send lock, the alias. ARGV: 1 new id, 2 keep alias 0|1.
_RETIRE = """
local n = #KEYS - 1
for i = 1, n do redis.call('DEL', KEYS[i]) end
if ARGV[2] == '1' then redis.call('SET', KEYS[n + 1], ARGV[1]) else redis.call('DEL', KEYS[n + 1]) end
return 1
"""

# A delivery status is kept only for a learner we know (KEYS: progress then delivery, per candidate id).
_RECORD_STATUS = """
for i = 1, #KEYS, 2 do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('HSET', KEYS[i + 1], unpack(ARGV, 2))
    return {1, (i + 1) / 2, redis.call('HGET', KEYS[i + 1], ARGV[1]) or ''}
  end
end
return {0}
"""

LIVE_RELEASE_KEY = LEGACY_LIVE_RELEASE_KEY  # written by bot.storage.releases.publish (with its shards)


class CommitResult(str, Enum):
    COMMITTED = "committed"
    FROZEN = "frozen"  # a link or unlink of this learner is half done: finish it (bot.storage.links), then redo
    CONFLICT = "conflict"  # someone else committed for this learner first: reload and redo the turn
    DUPLICATE = "duplicate"  # this inbound message was handled already


@dataclass(frozen=True, kw_only=True, slots=True)
class Committed:
    """What a commit did: its result, and whether the sender must be woken."""

    result: CommitResult
    outbox_length: int = 0
    receipt_waiting_anew: bool = False  # the receipt slot was empty: nobody is on their way to send it
    dropped: int = 0  # ephemeral items superseded or over the bound
    events_waiting: int = 0  # analytics events on the learner's list after this commit (1: the first, wake the sender)


@dataclass(frozen=True, kw_only=True, slots=True)
class Snapshot:
    """One learner as loaded for one event. ``learner_id`` is whose record this is (after aliases)."""

    learner_id: str
    progress: Progress | None
    seen: bool  # the inbound message id was handled already
    outbox_length: int
    release: str = ""  # the live course release (bot.storage.releases), read in the same round trip
    next_timer_ms: int = 0  # the learner's earliest pending clock event, 0 = none
    move_from: str = ""  # this person's record is under another id: move it to ``learner_id`` first
    aliases: tuple[str, ...] = field(default=())  # other ids of the event that should point at the learner
    address: str = ""  # the event's conversation: where its dedup set is (bot.storage.keys.address)
    merging: str = ""  # a link/unlink journal entry on the learner: finish it first (bot.storage.links)


class Store:
    def __init__(self, client: redis.Redis, *, dedup_ttl_seconds: int, dedup_max_ids: int,
                 outbox_max_items: int = 50, wait_replicas: int = 0, wait_timeout_ms: int = 200):
        self.client = client
        self.cluster = isinstance(client, RedisCluster)  # every script on one slot (the module docstring)
        self.dedup_ttl_ms = dedup_ttl_seconds * 1000
        self.dedup_max_ids = dedup_max_ids
        self.outbox_max_items = outbox_max_items
        self.wait_replicas = wait_replicas
        self.wait_timeout_ms = wait_timeout_ms
        self._commit = client.register_script(_COMMIT)
        self._move = client.register_script(_MOVE)
        self._record_status = client.register_script(_RECORD_STATUS)
        self._export = client.register_script(_EXPORT)
        self._import = client.register_script(_IMPORT)
        self._retire = client.register_script(_RETIRE)

    def load(self, learner_id: str, message_id: str, *, other_ids: tuple[str, ...] = (),
             hops: int = MAX_ALIAS_HOPS, channel: tuple[str, str] = ("", "")) -> Snapshot:
        """The learner an event with id ``learner_id`` (and ``other_ids``, e.g. its phone) belongs to.

        One round trip when ``learner_id`` has the record (every message of a known learner); one
        more per alias followed (an id that was moved, or a channel linked to another learner, at most
        ``MAX_ALIAS_HOPS``). ``channel`` (name, prefix) is the event's: its conversation's dedup set is
        checked (a linked channel keeps its own, under the learner's slot).
        """
        conversation = address(learner_id, *channel) if channel[0] else learner_id
        pipe = self.client.pipeline(transaction=False)
        self._queue_learner(pipe, learner_id, message_id, conversation)
        pipe.get(learner_key(learner_id, LearnerPart.ALIAS))
        for other in other_ids:
            pipe.exists(learner_key(other, LearnerPart.PROGRESS))
            pipe.get(learner_key(other, LearnerPart.ALIAS))
        answers = pipe.execute()
        snapshot = replace(self._snapshot(learner_id, message_id, answers[:6]), address=conversation)
        alias = _text(answers[6])
        others = [(other, bool(answers[7 + 2 * i]), _text(answers[8 + 2 * i])) for i, other in enumerate(other_ids)]
        if snapshot.progress is not None:
            missing = tuple(o for o, has_record, points_to in others if not has_record and points_to != learner_id)
            return replace(snapshot, aliases=missing)
        if alias and alias != learner_id and hops > 0:
            return self.load(alias, message_id, hops=hops - 1, channel=channel)
        for other, has_record, points_to in others:
            if not has_record and points_to and points_to.partition(":")[0] != learner_id.partition(":")[0]:
                # the other id is a channel linked to a learner kept under another channel's id: this id joins it
                linked = self.load(points_to, message_id, hops=hops - 1, channel=channel)
                return replace(linked, aliases=(*linked.aliases, learner_id)) if linked.progress else linked
            if has_record or points_to:
                return replace(snapshot, move_from=other if has_record else points_to)
        return replace(snapshot, aliases=tuple(o for o, _, points_to in others if points_to != learner_id))

    def load_one(self, learner_id: str, message_id: str) -> Snapshot:
        """The record under ``learner_id`` exactly (no alias resolution)."""
        pipe = self.client.pipeline(transaction=False)
        self._queue_learner(pipe, learner_id, message_id, learner_id)
        return replace(self._snapshot(learner_id, message_id, pipe.execute()), address=learner_id)

    def alias_of(self, learner_id: str) -> str:
        """The learner ``learner_id`` points at, or "" (no alias)."""
        return _text(self.client.get(learner_key(learner_id, LearnerPart.ALIAS)))

    def exists(self, learner_id: str) -> bool:
        return bool(self.client.exists(learner_key(learner_id, LearnerPart.PROGRESS)))

    @staticmethod
    def _queue_learner(pipe: redis.client.Pipeline, learner_id: str, message_id: str, conversation: str) -> None:
        pipe.hgetall(learner_key(learner_id, LearnerPart.PROGRESS))
        pipe.zscore(learner_key(conversation, LearnerPart.SEEN), message_id or "-")
        pipe.llen(learner_key(conversation, LearnerPart.OUTBOX))
        pipe.get(learner_live_release_key(learner_id))
        pipe.zrange(learner_key(learner_id, LearnerPart.TIMERS), 0, 0, withscores=True)
        pipe.get(learner_key(learner_id, LearnerPart.MERGE))

    @staticmethod
    def _snapshot(learner_id: str, message_id: str, answers: list) -> Snapshot:
        raw, seen, outbox_length, release, timers, merging = answers
        return Snapshot(learner_id=learner_id, progress=Progress.from_hash(raw),
                        seen=bool(message_id) and seen is not None, outbox_length=int(outbox_length),
                        release=_text(release), next_timer_ms=int(timers[0][1]) if timers else 0,
                        merging=_text(merging))

    def commit(self, progress: Progress, *, expected_rev: int, message_id: str, now_ms: int,
               outbox_items: list[OutboxItem], timers: tuple[tuple[int, str], ...] = (),
               cancel_timers: bool = False, receipt: dict | None = None, event_ms: int = 0,
               aliases: tuple[str, ...] = (), drop_proactive: bool = False, seen_at: str = "",
               outbox_at: str = "", elsewhere: tuple[tuple[str, list[OutboxItem]], ...] = (),
               analytics: str = "") -> Committed:
        """Write ``progress`` (with rev + 1), mark ``message_id`` seen, drop pending clock events
        (``cancel_timers``) and add new ones (``(due_ms, payload)``), drop proactive items still waiting
        (``drop_proactive``: the learner opted out; the head stays while a sender holds it), update the
        outbox and the read receipt slot, and point ``aliases`` (other learner ids of this person) at the
        learner — all or nothing. ``event_ms`` is when the platform says the message was sent (0: unknown).

        ``seen_at``: the conversation whose dedup set remembers the message (default: the learner's own);
        ``outbox_at``: the conversation the replies and the receipt go to; ``elsewhere``: items for the
        learner's other conversations (bot.storage.keys.address). Refused (FROZEN) while a link or unlink
        of this learner is half done. ``analytics``: the turn's learning-analytics event
        (``bot.analytics.recording``), kept on the learner's own events list (their slot) until the sender
        forwards it."""
        lid = progress.learner_id
        seen_at, outbox_at = seen_at or lid, outbox_at or lid
        fields = progress.with_changes(rev=expected_rev + 1).to_hash()
        flat = [part for pair in fields.items() for part in pair]
        items = [item.to_json() for item in outbox_items]
        keys = [learner_key(lid, LearnerPart.PROGRESS), learner_key(seen_at, LearnerPart.SEEN),
                learner_key(outbox_at, LearnerPart.OUTBOX), learner_key(lid, LearnerPart.TIMERS),
                learner_key(outbox_at, LearnerPart.SEND_LOCK), learner_key(outbox_at, LearnerPart.RECEIPT),
                learner_key(lid, LearnerPart.MERGE), learner_key(lid, LearnerPart.EVENTS)]
        in_script = () if self.cluster else aliases  # on a cluster other learners' keys are written after
        keys += [learner_key(alias, LearnerPart.ALIAS) for alias in in_script]
        keys += [learner_key(other, LearnerPart.OUTBOX) for other, _ in elsewhere]
        timer_args = [part for due_ms, payload in timers for part in (due_ms, payload)]
        receipt_json = json.dumps(receipt, separators=(",", ":")) if receipt else ""
        extra: list[EncodableT] = []
        for _, other_items in elsewhere:
            extra += [len(other_items), *(item.to_json() for item in other_items)]
        args = [expected_rev, message_id, now_ms, self.dedup_ttl_ms, self.dedup_max_ids, len(flat),
                len(timer_args), len(items), int(cancel_timers), receipt_json, self.outbox_max_items,
                max(event_ms, 0), RECEIPT_TTL_MS, int(drop_proactive), len(in_script), analytics, *flat,
                *timer_args, *items, *([lid] * len(in_script)), *extra]
        status, length, receipt_new, dropped, events = (int(x) for x in self._run_commit(keys, args))
        if status == -1:
            return Committed(result=CommitResult.CONFLICT)
        if status == -2:
            return Committed(result=CommitResult.DUPLICATE)
        if status == -3:
            return Committed(result=CommitResult.FROZEN)
        if aliases and self.cluster:
            self.point(aliases, lid)
        return Committed(result=CommitResult.COMMITTED, outbox_length=length,
                         receipt_waiting_anew=bool(receipt_new), dropped=dropped, events_waiting=events)

    def _run_commit(self, keys: list[str], args: Sequence[EncodableT]) -> list[int]:
        """The commit script; with ``wait_replicas``, then WAIT on the same connection (it counts the
        writes of its own connection), raising ``NotReplicated`` when too few replicas have it in time."""
        if not self.wait_replicas:
            return self._commit(keys=keys, args=args)  # type: ignore[no-any-return]
        node_client = self.client
        if self.cluster:  # the node that owns the learner's slot, on one connection of its own pool
            node_client = self.client.get_redis_connection(self.client.get_node_from_key(keys[0]))  # type: ignore[attr-defined]
        for _ in range(2):  # the second time after loading the script into a node that lacked it
            pipe = node_client.pipeline(transaction=False)
            index = pipelined_script.queue(pipe, self._commit, keys, args)
            pipe.execute_command("WAIT", self.wait_replicas, self.wait_timeout_ms)
            results = pipe.execute(raise_on_error=False)
            if not pipelined_script.missing(results, index):
                break
            node_client.script_load(self._commit.script)  # the WAIT that ran counted no commit: run both again
        pipelined_script.raise_errors(results)
        answer, acked = results
        if int(acked) < self.wait_replicas:
            raise NotReplicated(f"a commit reached {acked} of {self.wait_replicas} replicas within "
                                f"{self.wait_timeout_ms} ms (REDIS_WAIT_REPLICAS, REDIS_WAIT_TIMEOUT_MS)")
        return answer  # type: ignore[no-any-return]

    def move(self, old_id: str, new_id: str, *, user_id: str, phone: str, bsuid: str, keep_alias: bool,
             number_changed: bool) -> bool:
        """Move every part of ``old_id``'s record to ``new_id`` (which must have none), atomically.

        ``keep_alias``: ``old_id`` goes on pointing at the learner (same person, another id); False
        when the old id may be given to someone else (a phone number the learner gave up).
        ``number_changed``: pending replies and the receipt were addressed to the old number: dropped.
        """
        linked = self.linked_conversations(old_id)
        moved = [learner_key(old_id, part) for part in _MOVED_PARTS]
        moved += [learner_key(f"{old_id}@{c.channel}", part) for c in linked for part in _CONVERSATION_MOVED]
        into = [learner_key(new_id, part) for part in _MOVED_PARTS]
        into += [learner_key(f"{new_id}@{c.channel}", part) for c in linked for part in _CONVERSATION_MOVED]
        if self.cluster:
            done = self._move_slot_by_slot(old_id, new_id, moved, into, user_id=user_id, phone=phone, bsuid=bsuid,
                                           keep_alias=keep_alias, number_changed=number_changed)
        else:
            keys = moved + into + [learner_key(old_id, LearnerPart.SEND_LOCK), learner_key(old_id, LearnerPart.ALIAS),
                                   certificate_learner_key(old_id), certificate_learner_key(new_id)]
            args: list[EncodableT] = [old_id, new_id, user_id, phone, bsuid, int(keep_alias), int(number_changed),
                                      len(moved)]
            done = int(self._move(keys=keys, args=args)) == 1
        if done:  # the timer index follows (a hint for the sweeper: the learner's own set is the truth)
            self.client.zrem(learner_timer_index_key(old_id), old_id)
            following = self.client.zrange(learner_key(new_id, LearnerPart.TIMERS), 0, 0, withscores=True)
            if following:
                self.wake_at(new_id, int(following[0][1]))
        if done and linked:  # the linked channels' ids follow (an old id that keeps no alias would lose them)
            self.point(tuple(c.learner_id for c in linked), new_id)
        return done

    def _move_slot_by_slot(self, old_id: str, new_id: str, moved: list[str], into: list[str], *, user_id: str,
                           phone: str, bsuid: str, keep_alias: bool, number_changed: bool) -> bool:
        """``move`` on a Redis Cluster: export, import, retire (each one script on one slot), then the
        certificate pointer (its own slot). ``moved`` and ``into``: the parts, old and new, in the same order
        (the learner's own first, as ``_MOVED_PARTS``)."""
        exported = self._export(keys=moved, args=[])
        if not exported:
            return False
        dumps: list[EncodableT] = []
        for i in range(len(moved)):
            dump, ttl = exported[2 * i], int(exported[2 * i + 1])
            dumps += [dump or b"", ttl]
        args: list[EncodableT] = [new_id, user_id, phone, bsuid, int(number_changed), *dumps]
        if int(self._import(keys=[*into, learner_key(new_id, LearnerPart.SEND_LOCK)], args=args)) != 1:
            return False
        retired = [*moved, learner_key(old_id, LearnerPart.SEND_LOCK), learner_key(old_id, LearnerPart.ALIAS)]
        self._retire(keys=retired, args=[new_id, int(keep_alias)])
        code = self.client.get(certificate_learner_key(old_id))
        if code is not None:
            self.client.set(certificate_learner_key(new_id), code)
            self.client.delete(certificate_learner_key(old_id))
        return True

    def linked_conversations(self, learner_id: str) -> tuple[ChannelConversation, ...]:
        """Every conversation of the record under ``learner_id`` on a channel other than the one its id names
        (the linked channels: their parts are suffixed ``@<channel>``), the current one included."""
        names = ("learner_id", "channel", "via", "user_id", "phone", "bsuid", "reply_from", "last_inbound_at_ms",
                 "conversations")
        values = self.client.hmget(learner_key(learner_id, LearnerPart.PROGRESS), list(names))
        progress = Progress.from_hash({name: _text(value) for name, value in zip(names, values, strict=True)
                                       if value is not None})
        if progress is None:
            return ()
        home = learner_id.partition(":")[0]
        return tuple(c for c in conversations.every(progress) if c.channel and c.learner_id.partition(":")[0] != home)

    def point(self, learner_ids: tuple[str, ...], at: str) -> None:
        """Make each of ``learner_ids`` an alias of learner ``at`` ("" removes the alias)."""
        pipe = self.client.pipeline(transaction=False)
        for learner_id in learner_ids:
            key = learner_key(learner_id, LearnerPart.ALIAS)
            if at:
                pipe.set(key, at)
            else:
                pipe.delete(key)
        pipe.execute()

    def schedule(self, learner_id: str, payload: str, due_ms: int) -> None:
        """A clock event for ``learner_id`` outside a turn (an announcement, a seat freed by someone else).

        Its payload is its identity: scheduling it again changes nothing (``NX``), and once fired, its
        message id ``timer:<payload>`` makes a second firing a duplicate. The learner's set is written
        first and the index second, as a commit does (``bot.delivery.timers``).
        """
        self.client.zadd(learner_key(learner_id, LearnerPart.TIMERS), {payload: due_ms}, nx=True)
        self.client.zadd(learner_timer_index_key(learner_id), {learner_id: due_ms}, lt=True)  # added, or moved earlier

    def wake_at(self, learner_id: str, due_ms: int) -> None:
        """Tell the timer sweeper (``bot.delivery.timers``) to look at this learner at ``due_ms``."""
        self.client.zadd(learner_timer_index_key(learner_id), {learner_id: due_ms})

    def index_handover(self, learner_id: str, since_ms: int) -> None:
        """List the learner among the open handovers since ``since_ms``; 0: take them off the list.

        The index (``bot.storage.keys.handover_index_key``) is written after the turn's commit, so the inbox
        (``bot.handover``) checks each entry against the learner's progress and can rebuild it by a scan; the
        learner's entry is in their shard (a legacy entry is removed with it)."""
        if since_ms:
            self.client.zadd(learner_handover_index_key(learner_id), {learner_id: since_ms})
        else:  # one round trip (two slots on a cluster: not one transaction, and none is needed)
            pipe = self.client.pipeline(transaction=False)
            pipe.zrem(learner_handover_index_key(learner_id), learner_id)
            pipe.zrem(LEGACY_HANDOVER_INDEX_KEY, learner_id)
            pipe.execute()

    def indexed_handovers(self) -> list[tuple[str, int]]:
        """(learner id, since ms) of every listed open handover, oldest first (every shard, then the legacy key:
        a learner listed in both counts once, as their shard has them)."""
        pipe = self.client.pipeline(transaction=False)
        for key in handover_index_keys():
            pipe.zrange(key, 0, -1, withscores=True)
        since: dict[str, int] = {}
        for entries in pipe.execute():
            for member, score in entries:
                since.setdefault(_text(member), int(score))
        return sorted(since.items(), key=lambda entry: (entry[1], entry[0]))

    def save_certificate(self, certificate: Certificate) -> None:
        certificate_store.save(self.client, certificate)

    def record_status(self, event: InboundEvent, *, analytics: tuple[str, str, int] | None = None) -> bool:
        """A delivery status of one of our messages, kept on a known learner's delivery hash (one round
        trip); a status for anyone else writes nothing. ``analytics``: (stream key, event JSON, max length) of
        a learning-analytics event, XADDed in the same pipeline (the same round trip; not atomic with it)."""
        fields = {"last_status": event.status, "last_status_at_ms": str(event.timestamp_ms)}
        if event.error_code:
            fields["last_status_error_code"] = str(event.error_code)
        candidates = [[learner_key(lid, LearnerPart.PROGRESS), learner_key(lid, LearnerPart.DELIVERY)]
                      for lid in (event.learner_id, *event.other_learner_ids)]
        args = [broadcast_store.LAST_BROADCAST_FIELD, *(part for pair in fields.items() for part in pair)]
        ids = (event.learner_id, *event.other_learner_ids)
        if self.cluster:  # one learner's slot per script; the analytics event after it
            answer: Any = [0, 0, None]
            found = ""
            for lid, pair in zip(ids, candidates, strict=True):
                answer = self._record_status(keys=pair, args=args)
                if int(answer[0]) == 1:
                    found = lid
                    break
            if analytics is not None:
                stream, entry, max_length = analytics
                self.client.xadd(stream, {"e": entry}, maxlen=max_length, approximate=True)
            if not found:
                return False
            answer = [answer[0], ids.index(found) + 1, answer[2]]
        else:
            keys = [key for pair in candidates for key in pair]
            if analytics is None:
                answer = self._record_status(keys=keys, args=args)
            else:
                stream, entry, max_length = analytics
                pipe = self.client.pipeline(transaction=False)
                index = pipelined_script.queue(pipe, self._record_status, keys, args)
                pipe.xadd(stream, {"e": entry}, maxlen=max_length, approximate=True)
                results = pipe.execute(raise_on_error=False)
                pipelined_script.raise_errors(results, but=[index])
                answer = pipelined_script.settle(results, index, self._record_status, keys, args)
        if int(answer[0]) != 1:
            return False
        if answer[2]:  # the learner's last broadcast message: is this status about it? (bot.storage.broadcast_store)
            lid = ids[int(answer[1]) - 1]
            broadcast_store.on_status(self.client, lid, _text(answer[2]), event.message_id, event.status,
                                      event.error_code)
        return True


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value

