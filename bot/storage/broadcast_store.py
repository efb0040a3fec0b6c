"""A broadcast's record in Redis: its definition, its frozen audience, each recipient's state, the counts.

Keys (``bot.storage.keys.broadcast_key``, all with the hash tag ``{bc:<id>}``: one slot per broadcast):

* ``meta`` (hash): ``message``, ``query`` (JSON), ``status`` (running | paused | cancelled | done),
  ``total``, ``cursor`` (recipients admitted so far, in audience order), ``step`` (the token of the one
  step chain allowed to admit: ``take_step``), ``created_ms``, ``plan`` (the dry run's JSON).
* ``audience`` (list): the recipients' learner ids, frozen when the broadcast starts.
* ``state`` (hash): learner id -> ``queued`` (in their outbox), ``sent``, ``delivered``, ``read``,
  ``failed:<code>``, ``skipped:<why>``. A state only moves forward (``settle``), so a late ``sent``
  never overwrites ``read`` and a redelivered status counts once.
* ``counts`` (hash): state -> recipients in it, kept by the same script.

``state`` and ``counts`` grow with the recipients and are written by every send and status webhook, so they are
sharded by learner (``bot.storage.keys.broadcast_shard_key``, ``SHARDS`` pairs, each pair in one slot: the script
stays in one slot); ``counts`` adds the shards up. A broadcast started before the shards (no ``state_shards`` in
its ``meta``) keeps its one unsharded pair to the end.

Exactly once per learner is not this record's job: the learner's own commit is (the broadcast's turn
carries the message id ``timer:bc:<id>:<message>``, refused a second time by the learner's dedup set,
atomically with the outbox write: ``bot.storage.store``). This record is written after that commit and
is idempotent, so a crash between the two only delays it: the redone step finds the commit a duplicate
and records the state then.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import redis
from redis.typing import EncodableT

from bot.storage import registered_scripts
from bot.storage.keys import BROADCAST_INDEX_KEY, SHARDS, BroadcastPart, broadcast_key, broadcast_shard_key, shard_of

LAST_BROADCAST_FIELD = "last_broadcast"  # on the learner's delivery hash: "<broadcast id> <message id>"
STATE_SHARDS_FIELD = "state_shards"  # on ``meta``: how many shards its recipients' states are in (none: unsharded)
STATUSES = ("running", "paused", "cancelled", "done")

# KEYS: state, counts. ARGV: learner id, new state. A state only moves up its rank; 1 when it moved.
_SETTLE = """
local function rank(s)
  if not s then return -1 end
  if s == 'queued' then return 0 end
  if s == 'sent' then return 1 end
  if s == 'delivered' or string.sub(s, 1, 7) == 'failed:' then return 2 end
  if s == 'read' then return 3 end
  if string.sub(s, 1, 8) == 'skipped:' then return 9 end
  return 0
end
local old = redis.call('hget', KEYS[1], ARGV[1])
if old == false then old = nil end
if rank(ARGV[2]) <= rank(old) then return 0 end
redis.call('hset', KEYS[1], ARGV[1], ARGV[2])
if old then redis.call('hincrby', KEYS[2], old, -1) end
redis.call('hincrby', KEYS[2], ARGV[2], 1)
return 1
"""
# KEYS: meta. ARGV: expected token, new token. 1: this step chain may go on (and its successor has the new token).
_TAKE_STEP = """
if redis.call('hget', KEYS[1], 'status') ~= 'running' then return -1 end
if redis.call('hget', KEYS[1], 'step') ~= ARGV[1] then return 0 end
redis.call('hset', KEYS[1], 'step', ARGV[2])
return 1
"""
# KEYS: meta. ARGV: cursor. The cursor only moves forward (two chains overlapping after a recovery).
_ADVANCE = """
local now = tonumber(redis.call('hget', KEYS[1], 'cursor') or '0')
if tonumber(ARGV[1]) > now then redis.call('hset', KEYS[1], 'cursor', ARGV[1]) return tonumber(ARGV[1]) end
return now
"""
# KEYS: meta. ARGV: new status, then the statuses it may move from (none: any). 1 moved, 0 not there. One script on
# the broadcast's slot (not WATCH/MULTI: a Redis Cluster client's pipeline cannot WATCH outside a transaction).
_SET_STATUS = """
local current = redis.call('hget', KEYS[1], 'status')
if not current then return 0 end
if #ARGV > 1 then
  local allowed = false
  for i = 2, #ARGV do if ARGV[i] == current then allowed = true end end
  if not allowed then return 0 end
end
redis.call('hset', KEYS[1], 'status', ARGV[1])
return 1
"""
# KEYS: state, counts (one pair). ARGV: learner id. Their state goes, and its count with it; 1 when there was one.
_FORGET = """
local old = redis.call('hget', KEYS[1], ARGV[1])
if not old then return 0 end
redis.call('hdel', KEYS[1], ARGV[1])
redis.call('hincrby', KEYS[2], old, -1)
return 1
"""
ERASED_RECIPIENT = ""  # what an erased learner's place in a frozen audience holds (the cursor's positions stay)
AUDIENCE_WRITE_BATCH = 5_000


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def create(client: redis.Redis, broadcast_id: str, meta: Mapping[str, EncodableT], audience: list[str],
           created_ms: int) -> None:
    """Write a new broadcast (status ``running`` unless ``meta`` says otherwise) and index it."""
    key_meta = broadcast_key(broadcast_id, BroadcastPart.META)
    if client.exists(key_meta):
        raise ValueError(f"broadcast {broadcast_id} exists already")
    pipe = client.pipeline(transaction=True)
    mapping: dict[EncodableT, EncodableT] = {"status": "running", "cursor": "0", "step": "",
                                             STATE_SHARDS_FIELD: str(SHARDS)}
    mapping.update(meta.items())
    mapping.update({"total": str(len(audience)), "created_ms": str(created_ms)})
    pipe.hset(key_meta, mapping=mapping)
    for start in range(0, len(audience), AUDIENCE_WRITE_BATCH):
        pipe.rpush(broadcast_key(broadcast_id, BroadcastPart.AUDIENCE), *audience[start:start + AUDIENCE_WRITE_BATCH])
    pipe.execute()
    client.zadd(BROADCAST_INDEX_KEY, {broadcast_id: created_ms})


def meta(client: redis.Redis, broadcast_id: str) -> dict[str, str]:
    raw = client.hgetall(broadcast_key(broadcast_id, BroadcastPart.META))
    return {_text(k): _text(v) for k, v in raw.items()}


_STATE_SHARDS: dict[str, int] = {}  # broadcast id -> its ``state_shards`` (set at its start, never changed)


def _shards(client: redis.Redis, broadcast_id: str) -> int:
    """How many shards the broadcast's recipients' states are in; 0: the one unsharded pair (an older broadcast,
    or none by that id)."""
    known = _STATE_SHARDS.get(broadcast_id)
    if known is None:
        raw = client.hget(broadcast_key(broadcast_id, BroadcastPart.META), STATE_SHARDS_FIELD)
        known = int(raw or 0)
        if raw is not None:  # a broadcast not (yet) there is asked again next time
            _STATE_SHARDS[broadcast_id] = known
    return known


def _pairs(client: redis.Redis, broadcast_id: str) -> list[tuple[str, str]]:
    """Every (state, counts) key pair of the broadcast: one per shard, or the unsharded one."""
    shards = _shards(client, broadcast_id)
    if not shards:
        return [(broadcast_key(broadcast_id, BroadcastPart.STATE), broadcast_key(broadcast_id, BroadcastPart.COUNTS))]
    return [(broadcast_shard_key(broadcast_id, n, BroadcastPart.STATE),
             broadcast_shard_key(broadcast_id, n, BroadcastPart.COUNTS)) for n in range(shards)]


def _pair_of(client: redis.Redis, broadcast_id: str, learner_id: str) -> tuple[str, str]:
    """The (state, counts) keys that hold ``learner_id``'s state in the broadcast."""
    pairs = _pairs(client, broadcast_id)
    return pairs[shard_of(learner_id) % len(pairs)]


def counts(client: redis.Redis, broadcast_id: str) -> dict[str, int]:
    """State -> recipients in it, added up over the shards."""
    pipe = client.pipeline(transaction=False)
    for _, counts_key in _pairs(client, broadcast_id):
        pipe.hgetall(counts_key)
    total: dict[str, int] = {}
    for raw in pipe.execute():
        for state, count in raw.items():
            total[_text(state)] = total.get(_text(state), 0) + int(count)
    return {state: count for state, count in total.items() if count}


def state_of(client: redis.Redis, broadcast_id: str, learner_id: str) -> str:
    value = client.hget(_pair_of(client, broadcast_id, learner_id)[0], learner_id)
    return _text(value) if value is not None else ""


def recipients_in(client: redis.Redis, broadcast_id: str, state: str) -> Iterator[str]:
    """The recipients whose state is ``state`` (HSCAN: an end-of-broadcast check, not a per-message one)."""
    wanted = state.encode()
    for state_key, _ in _pairs(client, broadcast_id):
        for lid, value in client.hscan_iter(state_key, count=1000):
            if value == wanted:
                yield _text(lid)


def every_id(client: redis.Redis) -> list[str]:
    """Every broadcast, oldest first."""
    return [_text(member) for member in client.zrange(BROADCAST_INDEX_KEY, 0, -1)]


def with_status(client: redis.Redis, status: str) -> Iterator[str]:
    for broadcast_id in every_id(client):
        if client.hget(broadcast_key(broadcast_id, BroadcastPart.META), "status") in (status, status.encode()):
            yield broadcast_id


def set_fields(client: redis.Redis, broadcast_id: str, **fields: EncodableT) -> None:
    mapping: dict[EncodableT, EncodableT] = {}
    mapping.update(fields.items())
    client.hset(broadcast_key(broadcast_id, BroadcastPart.META), mapping=mapping)


def set_status(client: redis.Redis, broadcast_id: str, status: str, *, only_from: tuple[str, ...] = ()) -> bool:
    """Move to ``status`` (from one of ``only_from``, when given); False when it was not there."""
    if status not in STATUSES:
        raise ValueError(f"status {status!r} is not one of {STATUSES}")
    script = registered_scripts.script(client, _SET_STATUS)
    return int(script(keys=[broadcast_key(broadcast_id, BroadcastPart.META)], args=[status, *only_from])) == 1


def new_step(client: redis.Redis, broadcast_id: str, token: str) -> None:
    """Hand the admitting to a new step chain (a start, a resume, a worker's boot): older chains stop."""
    client.hset(broadcast_key(broadcast_id, BroadcastPart.META), "step", token)


def take_step(client: redis.Redis, broadcast_id: str, token: str, next_token: str) -> int:
    """1: the chain holding ``token`` goes on, its successor holds ``next_token``; 0: another chain took
    over; -1: the broadcast is not running."""
    script = registered_scripts.script(client, _TAKE_STEP)
    return int(script(keys=[broadcast_key(broadcast_id, BroadcastPart.META)], args=[token, next_token]))


def audience_slice(client: redis.Redis, broadcast_id: str, start: int, count: int) -> list[str]:
    raw = client.lrange(broadcast_key(broadcast_id, BroadcastPart.AUDIENCE), start, start + count - 1)
    return [_text(item) for item in raw]


def advance(client: redis.Redis, broadcast_id: str, cursor: int) -> int:
    script = registered_scripts.script(client, _ADVANCE)
    return int(script(keys=[broadcast_key(broadcast_id, BroadcastPart.META)], args=[cursor]))


def settle(client: redis.Redis, broadcast_id: str, learner_id: str, state: str) -> bool:
    """Record ``learner_id``'s new state in the broadcast (only forward); True when it moved."""
    script = registered_scripts.script(client, _SETTLE)
    return int(script(keys=list(_pair_of(client, broadcast_id, learner_id)), args=[learner_id, state])) == 1


def on_status(client: redis.Redis, learner_id: str, last_broadcast: str, message_id: str, status: str,
              error_code: int | None) -> bool:
    """A status webhook about ``learner_id``'s last broadcast message (``"<id> <message id>"``) moves its
    state there: delivered, read, failed:<code>. A status about another message changes nothing."""
    broadcast_id, _, sent_id = last_broadcast.partition(" ")
    if not broadcast_id or not sent_id or sent_id != message_id:
        return False
    if status == "failed":
        state = f"failed:{error_code or 0}"
    elif status in ("delivered", "read"):
        state = status
    else:
        return False
    try:
        return settle(client, broadcast_id, learner_id, state)
    except ValueError:
        return False


def recipient_states(client: redis.Redis, learner_ids: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """Every broadcast ``learner_ids`` are recipients of: broadcast id -> {learner id: state, or "audience" for
    one not admitted yet} (a learner's export: ``bot.privacy``)."""
    found: dict[str, dict[str, str]] = {}
    for broadcast_id in every_id(client):
        audience = broadcast_key(broadcast_id, BroadcastPart.AUDIENCE)
        for learner_id in learner_ids:
            state = state_of(client, broadcast_id, learner_id)
            if state or client.lpos(audience, learner_id) is not None:
                found.setdefault(broadcast_id, {})[learner_id] = state or "audience"
    return found


def forget(client: redis.Redis, learner_ids: tuple[str, ...]) -> int:
    """Take ``learner_ids`` out of every broadcast (a learner's erase): their state and its count go, and their
    places in each frozen audience hold ``ERASED_RECIPIENT`` (so the cursor still counts positions; an admitting
    step skips it). Returns the entries removed."""
    script = registered_scripts.script(client, _FORGET)
    removed = 0
    for broadcast_id in every_id(client):
        audience = broadcast_key(broadcast_id, BroadcastPart.AUDIENCE)
        for learner_id in learner_ids:
            removed += int(script(keys=list(_pair_of(client, broadcast_id, learner_id)), args=[learner_id]))
            for position in client.lpos(audience, learner_id, count=0) or []:  # type: ignore[union-attr]
                client.lset(audience, int(position), ERASED_RECIPIENT)
                removed += 1
    return removed


def memory_keys(client: redis.Redis, broadcast_id: str) -> list[str]:
    """The broadcast's own keys, every shard's too (what ``MEMORY USAGE`` is asked about in the benchmark)."""
    own = [broadcast_key(broadcast_id, part) for part in (BroadcastPart.META, BroadcastPart.AUDIENCE,
                                                            BroadcastPart.STEP_LOCK)]
    return own + [key for pair in _pairs(client, broadcast_id) for key in pair]


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
