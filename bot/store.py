"""Progress on Redis: load a learner in one round trip, commit a turn atomically in another.

``commit`` is one Lua script over the learner's own keys (one hash slot): it checks the optimistic
``rev``, refuses an inbound message id already handled, writes the progress hash, remembers the id
(bounded: older than the dedup TTL or beyond the per-learner cap are dropped) and appends the
rendered replies to the outbox — all or nothing. A crash before it changes nothing (Meta redelivers);
a crash after it leaves the replies safe in the outbox for the sender.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum

import redis

from bot import certificate_store
from bot.certificates import Certificate
from bot.events import InboundEvent
from bot.keys import LearnerPart, global_key, learner_key
from bot.progress import Progress

_COMMIT = """
local rev = redis.call('HGET', KEYS[1], 'rev') or '0'
if rev ~= ARGV[1] then return -1 end
local mid = ARGV[2]
if mid ~= '' then
  if redis.call('ZSCORE', KEYS[2], mid) then return -2 end
  local now = tonumber(ARGV[3])
  redis.call('ZADD', KEYS[2], now, mid)
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[4]))
  local extra = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[5])
  if extra > 0 then redis.call('ZREMRANGEBYRANK', KEYS[2], 0, extra - 1) end
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
local nfields, ntimers = tonumber(ARGV[6]), tonumber(ARGV[7])
redis.call('HSET', KEYS[1], unpack(ARGV, 8, 7 + nfields))
local first = 8 + nfields
for i = first, first + ntimers - 1, 2 do redis.call('ZADD', KEYS[4], ARGV[i], ARGV[i + 1]) end
for i = first + ntimers, #ARGV do redis.call('RPUSH', KEYS[3], ARGV[i]) end
return redis.call('LLEN', KEYS[3])
"""


LIVE_RELEASE_KEY = global_key("course:live")  # written by bot.releases.publish
TIMER_INDEX_KEY = global_key("timers:due")  # sorted set: learner id -> their earliest due clock event (ms)


class CommitResult(str, Enum):
    COMMITTED = "committed"
    CONFLICT = "conflict"  # someone else committed for this learner first: reload and redo the turn
    DUPLICATE = "duplicate"  # this inbound message was handled already


@dataclass(frozen=True, kw_only=True, slots=True)
class Snapshot:
    progress: Progress | None
    seen: bool  # the inbound message id was handled already
    outbox_length: int
    release: str = ""  # the live course release (bot.releases), read in the same round trip
    next_timer_ms: int = 0  # the learner's earliest pending clock event, 0 = none


class Store:
    def __init__(self, client: redis.Redis, *, dedup_ttl_seconds: int, dedup_max_ids: int):
        self.client = client
        self.dedup_ttl_ms = dedup_ttl_seconds * 1000
        self.dedup_max_ids = dedup_max_ids
        self._commit = client.register_script(_COMMIT)

    def load(self, learner_id: str, message_id: str) -> Snapshot:
        """One round trip: the progress hash, whether ``message_id`` was seen, the outbox length, and
        the live course release."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(learner_key(learner_id, LearnerPart.PROGRESS))
        pipe.zscore(learner_key(learner_id, LearnerPart.SEEN), message_id or "-")
        pipe.llen(learner_key(learner_id, LearnerPart.OUTBOX))
        pipe.get(LIVE_RELEASE_KEY)
        pipe.zrange(learner_key(learner_id, LearnerPart.TIMERS), 0, 0, withscores=True)
        raw, seen, outbox_length, release, timers = pipe.execute()
        return Snapshot(progress=Progress.from_hash(raw), seen=bool(message_id) and seen is not None,
                        outbox_length=int(outbox_length), release=release.decode() if release else "",
                        next_timer_ms=int(timers[0][1]) if timers else 0)

    def commit(self, progress: Progress, *, expected_rev: int, message_id: str, now_ms: int,
               outbox_items: list[dict], timers: tuple[tuple[int, str], ...] = ()) -> CommitResult:
        """Write ``progress`` (with rev + 1), mark ``message_id`` seen, add the learner's clock events
        (``(due_ms, payload)``) and append the outbox items — all or nothing."""
        lid = progress.learner_id
        fields = progress.with_changes(rev=expected_rev + 1).to_hash()
        flat = [part for pair in fields.items() for part in pair]
        items = [json.dumps(item, separators=(",", ":"), ensure_ascii=False) for item in outbox_items]
        keys = [learner_key(lid, LearnerPart.PROGRESS), learner_key(lid, LearnerPart.SEEN),
                learner_key(lid, LearnerPart.OUTBOX), learner_key(lid, LearnerPart.TIMERS)]
        timer_args = [part for due_ms, payload in timers for part in (due_ms, payload)]
        args = [expected_rev, message_id, now_ms, self.dedup_ttl_ms, self.dedup_max_ids, len(flat),
                len(timer_args), *flat, *timer_args, *items]
        result = int(self._commit(keys=keys, args=args))
        if result == -1:
            return CommitResult.CONFLICT
        if result == -2:
            return CommitResult.DUPLICATE
        return CommitResult.COMMITTED

    def wake_at(self, learner_id: str, due_ms: int) -> None:
        """Tell the timer sweeper (``bot.timers``) to look at this learner at ``due_ms``."""
        self.client.zadd(TIMER_INDEX_KEY, {learner_id: due_ms})

    def save_certificate(self, certificate: Certificate) -> None:
        certificate_store.save(self.client, certificate)

    def record_status(self, event: InboundEvent) -> None:
        """A delivery status of one of our messages: kept on the learner's delivery hash, one round trip."""
        fields = {"last_status": event.status, "last_status_at_ms": str(event.timestamp_ms)}
        if event.error_code:
            fields["last_status_error_code"] = str(event.error_code)
        self.client.hset(learner_key(event.learner_id, LearnerPart.DELIVERY), mapping=fields)
