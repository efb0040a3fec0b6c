"""Draining one learner's outbox to the Graph API: in order, one call at a time, each item once.

The webhook RPUSHes ``bot.storage.outbox_item.OutboxItem`` JSON onto the list ``learner_key(lid, OUTBOX)`` in
the order they must arrive (and drops superseded re-prompts: ``bot.storage.store``). ``drain`` sends them:

1. Take the learner's send lock (``SET NX PX`` with a random token; TTL ``send_lock_seconds``,
   which must outlast one call: ``2 * send_timeout_seconds``, connect + read).
2. Send the waiting read receipt, if any (``LearnerPart.RECEIPT``, taken with GETDEL): first, and
   even while the outbox backs off from a rate limit; best effort — a failed receipt is not retried.
3. Loop: refresh the lock (only if still ours), peek the head, send it, and only after the call
   returned remove exactly that item (Lua: pop only if the head still has that id). The next item
   is sent only after the previous call returned, so order holds however many workers run.
4. Outbox empty: release the lock with a Lua script that deletes it only if it is ours AND the
   outbox is still empty; if items arrived meanwhile, keep draining. (The webhook enqueues a job
   after committing items, so an item is either seen by this loop or by that job.)

Errors (``bot.delivery.graph.GraphError``):

* transient: the item stays at the head with ``attempts`` + 1, ``not_before_ms`` and
  ``last_error_code`` written into it (guarded LSET); the lock is released and the result says
  ``retry_in_seconds`` (2^attempt s from 1 s, 4^attempt s for 131056, capped at
  ``send_max_backoff_seconds``, plus up to 20 % jitter). Any drain before ``not_before_ms`` stops
  there, so extra jobs cannot defeat the backoff.
* permanent: the item is dropped and recorded, and the next one is sent. A proactive item refused for a
  reason the learner's record must learn (131047, 131049, 131050) is also listed in ``DrainResult.refused``;
  the actor hands it to the dispatcher as a failed status (``bot.tutor.preferences``).
* ``send_give_up_seconds`` after ``created_ms`` an item is dropped and recorded as given up, before
  sending it or after a transient error.

Failures are recorded on ``learner_key(lid, DELIVERY)`` (never on PROGRESS), atomically with the
pop: ``failed_sends`` (counter), ``last_error_code`` (Meta's code, or a negative local code: see
``bot.delivery.graph.LocalCode``, ``MALFORMED_ITEM_CODE``, ``EXPIRED_UNSENT_CODE``), ``last_error_kind``
(``permanent`` | ``gave_up`` | ``malformed`` | ``transient``), ``last_error_at_ms``,
``last_failed_item``. Successes: ``sent_count``, ``last_sent_at_ms``, ``last_sent_id`` (wamid/mid).

Throughput: with a ``Throughput`` (the worker's), each message also takes a token from its sending number's
bucket shared on Redis (``bot.delivery.throughput``); a broadcast's item (``proactive`` ``broadcast:<id>``)
leaves the reserve to conversations. No token: the lock is released and the result says when to come back.
A broadcast's item, once sent or refused, is recorded on its broadcast (``bot.storage.broadcast_store``),
and the learner's delivery hash keeps ``last_broadcast`` (``<id> <message id>``) for its status webhooks.

Delivery is at-least-once: if the process dies during a call, the item stays at the head and is
sent again by the next drain once the lock expires. Nothing else is ever sent twice.
No Dramatiq here: ``bot.delivery.actors`` turns a ``DrainResult`` into a delayed job.
"""

from __future__ import annotations

import contextlib
import json
import random
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import redis

from bot.delivery.graph import GraphClient, GraphError
from bot.delivery.pacing import Pace, PaceRules
from bot.delivery.throughput import Throughput
from bot.model.replies import broadcast_of
from bot.storage import broadcast_store
from bot.storage.keys import LearnerPart, address_of, learner_key
from bot.storage.outbox_item import OutboxItem
from bot.tutor.preferences import REFUSAL_CODES
from config.settings import Settings

MALFORMED_ITEM_CODE = -10  # an outbox item that is not the JSON the contract describes
EXPIRED_UNSENT_CODE = -11  # given up before any attempt failed (e.g. workers were down that long)
MAX_SENDS_PER_DRAIN = 20  # then let other learners' jobs run (fairness across worker threads)
JITTER_RATIO = 0.2  # backoff * (1 + up to 20 %): learners throttled together retry apart

_REFRESH = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end"
# KEYS: lock, pace, receipt, analytics events, outbox. ARGV: token, lock ms, events to take.
# -> {1, pace JSON, receipt waiting 0|1, events...}, {0} held, or {2}: nothing waits (no lock taken, no key
# written: a job for an erased learner leaves nothing behind)
_ACQUIRE = """
if redis.call('exists', KEYS[3]) == 0 and redis.call('llen', KEYS[5]) == 0 and redis.call('llen', KEYS[4]) == 0 then
  return {2}
end
if not redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {0} end
local out = {1, redis.call('get', KEYS[2]) or '', redis.call('exists', KEYS[3])}
local events = redis.call('lrange', KEYS[4], 0, tonumber(ARGV[3]) - 1)
for i = 1, #events do out[#out + 1] = events[i] end
return out
"""
EVENTS_PER_DRAIN = 200  # analytics events taken from the learner's list per drain (bot.analytics)
# KEYS: lock, pace. ARGV: token, pace JSON, pace ttl ms.
_RELEASE = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('set', KEYS[2], ARGV[2], 'PX', ARGV[3])
return redis.call('del', KEYS[1])
"""
# KEYS: lock, outbox, pace. ARGV: token, pace JSON, pace ttl ms.
_RELEASE_IF_EMPTY = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return -1 end
if redis.call('llen', KEYS[2]) > 0 then return 0 end
redis.call('set', KEYS[3], ARGV[2], 'PX', ARGV[3])
return redis.call('del', KEYS[1])
"""
PACE_TTL_MS = 3600 * 1000  # after an hour of silence a learner's bucket is full again anyway
# KEYS: outbox, delivery. ARGV: the head to match (item id, or the raw item when mode is 'raw'),
# mode 'id'|'raw', action 'pop'|'set', the counter to increment (pop) or the new item (set), then
# field/value pairs for the delivery hash. Matched by id, not text: a transient error rewrites it.
_SETTLE_HEAD = """
local head = redis.call('lindex', KEYS[1], 0)
if not head then return 0 end
if ARGV[2] == 'raw' then
  if head ~= ARGV[1] then return 0 end
else
  local ok, item = pcall(cjson.decode, head)
  if not (ok and type(item) == 'table' and item['id'] == ARGV[1]) then return 0 end
end
if ARGV[3] == 'pop' then
  redis.call('lpop', KEYS[1])
  redis.call('hincrby', KEYS[2], ARGV[4], 1)
else
  redis.call('lset', KEYS[1], 0, ARGV[4])
end
for i = 5, #ARGV, 2 do redis.call('hset', KEYS[2], ARGV[i], ARGV[i + 1]) end
return 1
"""


# KEYS: the learner's wake marker. ARGV: due ms, now ms, marker ttl ms. 1: schedule a job, 0: one is due already.
_SCHEDULE = """
local due, now = tonumber(ARGV[1]), tonumber(ARGV[2])
local current = tonumber(redis.call('get', KEYS[1]) or '0')
if current > now and current <= due then return 0 end
redis.call('set', KEYS[1], ARGV[1], 'px', ARGV[3])
return 1
"""
SCHEDULE_MARKER_GRACE_MS = 60_000  # the marker outlives its due time by this much, then a new job may be set


def schedule(client: redis.Redis, lid: str, due_ms: int, now_ms: int) -> bool:
    """Whether the caller should enqueue a delayed drain for ``lid`` at ``due_ms``.

    One scheduled job per learner: a rate-limited outbox is retried by the job that is already due at
    or before ``due_ms``, not by one more job per inbound message (the storm of a reply flood). True
    (and the marker set) when no such job is due yet.
    """
    ttl = max(due_ms - now_ms, 0) + SCHEDULE_MARKER_GRACE_MS
    script = client.register_script(_SCHEDULE)
    return int(script(keys=[learner_key(lid, LearnerPart.WAKE)], args=[due_ms, now_ms, ttl])) == 1


def wall_clock_ms() -> int:
    """Unix time in ms: the clock of ``created_ms`` (written by the web process)."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class Settled:
    """One outbox item this drain is done with: sent (``ok``), or dropped for good with Meta's (or a local) code."""

    item: OutboxItem
    ok: bool
    code: int
    at_ms: int


@dataclass(frozen=True, kw_only=True, slots=True)
class DrainResult:
    """What one ``drain`` call did, and when to call it again for this learner.

    ``retry_in_seconds``: our own backoff (transient error, or yielded after MAX_SENDS_PER_DRAIN
    with 0.0). ``locked_for_seconds``: another sender holds the lock for this long (it may be a
    killed worker whose lock must expire). Both None: the outbox was empty when we let go.
    """

    sent: int = 0
    failed: int = 0
    retry_in_seconds: float | None = None
    locked_for_seconds: float | None = None
    refused: tuple[tuple[str, int], ...] = ()  # proactive items Meta refused for a reason the learner's record
    #                                            must learn (bot.tutor.preferences.REFUSAL_CODES): (item id, code)
    events: tuple[bytes, ...] = ()  # analytics events waiting on the learner's list when the lock was taken
    #                                 (the caller forwards them and trims that many: bot.analytics.forwarding)
    sends: tuple[Settled, ...] = ()  # items sent or dropped for good by this drain, for the analytics

    @property
    def again_in_seconds(self) -> float | None:
        """Seconds after which the caller should drain this learner again; None: nothing to do."""
        if self.retry_in_seconds is not None:
            return self.retry_in_seconds
        return self.locked_for_seconds


def check_timing(settings: Settings) -> None:
    """The lock must outlive one call (connect + read timeouts), or two senders could overlap."""
    if settings.send_lock_seconds <= 2 * settings.send_timeout_seconds:
        raise ValueError(
            f"send_lock_seconds={settings.send_lock_seconds} must exceed 2 * send_timeout_seconds="
            f"{2 * settings.send_timeout_seconds} (connect + read); raise the lock or lower the timeout")


class _Outbox:
    """One learner's keys and scripts, for the length of one ``drain`` call."""

    def __init__(self, client: redis.Redis, lid: str, lock_ms: int, rules: PaceRules) -> None:
        self.client = client
        self.lid = lid
        self.outbox = learner_key(lid, LearnerPart.OUTBOX)
        self.lock = learner_key(lid, LearnerPart.SEND_LOCK)
        self.delivery = learner_key(lid, LearnerPart.DELIVERY)
        self.receipt = learner_key(lid, LearnerPart.RECEIPT)
        self.events_key = learner_key(lid, LearnerPart.EVENTS)
        self.events: tuple[bytes, ...] = ()
        self.settled: list[Settled] = []
        self.pace_key = learner_key(lid, LearnerPart.PACE)
        self.lock_ms = lock_ms
        self.rules = rules
        self.pace = Pace(tokens=float(rules.burst), at_ms=0)
        self.receipt_waiting = False
        self.token = secrets.token_hex(16)
        self._scripts = {name: client.register_script(text) for name, text in (
            ("refresh", _REFRESH), ("acquire", _ACQUIRE), ("release", _RELEASE),
            ("release_if_empty", _RELEASE_IF_EMPTY), ("settle", _SETTLE_HEAD))}

    def run(self, name: str, keys: list[str], args: list[Any]) -> int:
        return int(self._scripts[name](keys=keys, args=args) or 0)

    def acquire(self) -> bool | None:
        """Take the lock; with it come the learner's pace and whether a read receipt waits (one round trip).
        None: nothing waits (no receipt, no item, no analytics event): no lock taken."""
        answer = self._scripts["acquire"](keys=[self.lock, self.pace_key, self.receipt, self.events_key, self.outbox],
                                          args=[self.token, self.lock_ms, EVENTS_PER_DRAIN])
        if int(answer[0]) == 2:
            return None
        if int(answer[0]) != 1:
            return False
        self.pace = Pace.from_json(answer[1], self.rules)
        self.receipt_waiting = int(answer[2]) == 1
        self.events = tuple(answer[3:])
        return True

    def holder_seconds(self) -> float:
        """Seconds until the current holder's lock expires (0.0 if nobody holds it)."""
        pttl = int(self.client.pttl(self.lock))
        if pttl == -1:  # a lock without expiry was set by hand: wait one lock period and look again
            return self.lock_ms / 1000
        return max(pttl, 0) / 1000

    def refresh(self) -> bool:
        return self.run("refresh", [self.lock], [self.token, self.lock_ms]) == 1

    def release(self) -> None:
        self.run("release", [self.lock, self.pace_key], [self.token, self.pace.to_json(), PACE_TTL_MS])

    def release_if_empty(self) -> int:
        """1 released, 0 items arrived (keep draining), -1 the lock is no longer ours."""
        return self.run("release_if_empty", [self.lock, self.outbox, self.pace_key],
                        [self.token, self.pace.to_json(), PACE_TTL_MS])

    def pop(self, match: bytes | str, mode: str, counter: str, record: dict[str, Any]) -> bool:
        """Remove the head if it is ``match``, counting and recording the outcome; False: not ours."""
        pairs = [value for field_value in record.items() for value in field_value]
        return self.run("settle", [self.outbox, self.delivery], [match, mode, "pop", counter, *pairs]) == 1

    def update(self, new_item: OutboxItem, record: dict[str, Any]) -> bool:
        """Rewrite the head if it is still ``new_item.id`` (guarded LSET); False: not ours."""
        pairs = [value for field_value in record.items() for value in field_value]
        args = [new_item.id, "id", "set", new_item.to_json(), *pairs]
        return self.run("settle", [self.outbox, self.delivery], args) == 1


def _failure(code: int, kind: str, item_id: str, at_ms: int) -> dict[str, Any]:
    return {"last_error_code": code, "last_error_kind": kind, "last_error_at_ms": at_ms,
            "last_failed_item": item_id}


def _backoff_seconds(exc: GraphError, attempt: int, settings: Settings) -> float:
    base = exc.retry_after_seconds(attempt) * (1 + random.uniform(0, JITTER_RATIO))
    return min(base, settings.send_max_backoff_seconds)


def drain(client: redis.Redis, graph: GraphClient, lid: str, settings: Settings, *,
          now_ms: Callable[[], int] = wall_clock_ms, max_sends: int = MAX_SENDS_PER_DRAIN,
          throughput: Throughput | None = None) -> DrainResult:
    """Send ``lid``'s outbox in order until it is empty, a transient error, or ``max_sends`` items.

    Safe to call any number of times, concurrently, from any process: at most one caller holds the
    lock; the others get ``locked_for_seconds``. ``now_ms`` is the wall clock in ms (tests inject
    one). Raises only Redis errors; Graph errors are handled as the module docstring says.
    ``throughput``: the sending numbers' shared buckets (the worker passes its own; None: no number limit).
    """
    check_timing(settings)
    box = _Outbox(client, lid, int(settings.send_lock_seconds * 1000), pace_rules(settings))
    acquired = box.acquire()
    if acquired is None:
        return DrainResult()
    if not acquired:
        return DrainResult(locked_for_seconds=box.holder_seconds())
    try:
        receipt_wait_ms = _send_receipt(box, graph, now_ms()) if box.receipt_waiting else 0
        refused: list[tuple[str, int]] = []
        result = replace(_send_in_order(box, graph, settings, now_ms, max_sends, refused, throughput),
                         refused=tuple(refused), events=box.events, sends=tuple(box.settled))
    except BaseException:  # Redis gone, a bug, a time limit: let the retry in without waiting 30 s
        with contextlib.suppress(redis.RedisError):
            box.release()
        raise
    if receipt_wait_ms and (result.again_in_seconds is None or receipt_wait_ms / 1000 < result.again_in_seconds):
        return replace(result, retry_in_seconds=receipt_wait_ms / 1000, locked_for_seconds=None)
    return result


def pace_rules(settings: Settings) -> PaceRules:
    return PaceRules(burst=settings.learner_burst_messages,
                     interval_ms=int(settings.learner_message_interval_seconds * 1000),
                     receipt_interval_ms=int(settings.receipt_interval_seconds * 1000))


def _send_receipt(box: _Outbox, graph: GraphClient, now: int) -> int:
    """Send the waiting read receipt unless one went out moments ago; the ms to wait for it (0: done).

    Sent once, never retried: a lost blue tick is not worth a retry storm, and the next message
    brings another. A newer message replaces a receipt that waits, so only the latest is marked.
    """
    wait_ms = box.pace.receipt_wait(box.rules, now)
    if wait_ms:
        return wait_ms
    raw = box.client.getdel(box.receipt)
    if raw is None:
        return 0
    box.pace.receipt_at_ms = now
    try:
        receipt = json.loads(raw)
        graph.send(receipt["channel"], receipt["sender_id"], receipt["body"])
    except (ValueError, KeyError, TypeError, GraphError):
        pass
    return 0


def _send_in_order(box: _Outbox, graph: GraphClient, settings: Settings, now_ms: Callable[[], int],
                   max_sends: int, refused: list[tuple[str, int]], throughput: Throughput | None = None
                   ) -> DrainResult:
    """The loop of ``drain``, run while holding the lock."""
    give_up_ms = int(settings.send_give_up_seconds * 1000)
    sent = failed = 0

    def lost() -> DrainResult:  # someone else drains now (our lock expired): leave it to them
        return DrainResult(sent=sent, failed=failed, locked_for_seconds=box.holder_seconds())

    while True:
        if not box.refresh():
            return lost()
        raw = box.client.lindex(box.outbox, 0)
        if raw is None:
            released = box.release_if_empty()
            if released == 1:
                return DrainResult(sent=sent, failed=failed)
            if released == -1:
                return lost()
            continue  # items arrived between LINDEX and the release: keep draining
        if sent + failed >= max_sends:
            box.release()
            return DrainResult(sent=sent, failed=failed, retry_in_seconds=0.0)
        item = OutboxItem.from_json(raw)
        now = now_ms()
        if item is None:
            if not box.pop(raw, "raw", "failed_sends", _failure(MALFORMED_ITEM_CODE, "malformed", "", now)):
                return lost()
            failed += 1
            continue
        if now - item.created_ms >= give_up_ms:
            code = EXPIRED_UNSENT_CODE if item.last_error_code is None else item.last_error_code
            if not box.pop(item.id, "id", "failed_sends", _failure(code, "gave_up", item.id, now)):
                return lost()
            box.settled.append(Settled(item, False, code, now))
            failed += 1
            if broadcast_of(item.proactive):
                broadcast_store.settle(box.client, broadcast_of(item.proactive), box.lid, f"failed:{code}")
            continue
        if item.not_before_ms > now:  # still backing off from an earlier transient error
            box.release()
            return DrainResult(sent=sent, failed=failed, retry_in_seconds=(item.not_before_ms - now) / 1000)
        wait_ms = box.pace.take(box.rules, now)
        if wait_ms:  # this learner had their burst: later turns may still supersede what waits
            box.release()
            return DrainResult(sent=sent, failed=failed, retry_in_seconds=wait_ms / 1000)
        broadcast = broadcast_of(item.proactive)
        number_wait_ms = throughput.take(item.channel, item.sender_id, bulk=bool(broadcast)) if throughput else 0
        if number_wait_ms:  # the sending number's budget is spent (a broadcast leaves the reserve to conversations)
            box.pace.tokens += 1.0  # this learner's token was not used after all
            box.release()
            return DrainResult(sent=sent, failed=failed, retry_in_seconds=number_wait_ms / 1000)
        try:
            message_id = graph.send(item.channel, item.sender_id, item.body)
        except GraphError as exc:
            now = now_ms()
            if exc.transient and now - item.created_ms < give_up_ms:
                delay = _backoff_seconds(exc, item.attempts, settings)
                rewritten = item.failed(code=exc.code, not_before_ms=now + int(delay * 1000))
                record = {"last_error_code": exc.code, "last_error_kind": "transient",
                          "last_error_at_ms": now}
                if not box.update(rewritten, record):
                    return lost()
                box.release()
                return DrainResult(sent=sent, failed=failed, retry_in_seconds=delay)
            kind = "gave_up" if exc.transient else "permanent"
            if not box.pop(item.id, "id", "failed_sends", _failure(exc.code, kind, item.id, now)):
                return lost()
            box.settled.append(Settled(item, False, exc.code, now))
            failed += 1
            if broadcast:
                broadcast_store.settle(box.client, broadcast, box.lid, f"failed:{exc.code}")
            if item.proactive and exc.code in REFUSAL_CODES:
                refused.append((item.id, exc.code))
            continue
        sent_at = now_ms()
        record = {"last_sent_at_ms": sent_at, "last_sent_id": message_id}
        if broadcast:  # a status webhook for this message id finds its broadcast here (bot.storage.store)
            record.update({broadcast_store.LAST_BROADCAST_FIELD: f"{broadcast} {message_id}"})
        if not box.pop(item.id, "id", "sent_count", record):
            return lost()
        box.settled.append(Settled(item, True, 0, sent_at))
        sent += 1
        if broadcast:
            broadcast_store.settle(box.client, broadcast, box.lid, "sent")


def pending_learners(client: redis.Redis, batch: int = 500) -> Iterator[str]:
    """Learner ids whose outbox is not empty (Redis deletes empty lists), for recovery at start.

    SCANs for the key pattern ``learner_key("*", OUTBOX)``; like SCAN, it may yield a learner
    twice and may miss outboxes created during the scan (their webhook enqueued a job anyway).
    """
    for key in client.scan_iter(match=learner_key("*", LearnerPart.OUTBOX) + "*", count=batch):
        yield address_of(key)  # a learner's own outbox, or one of their linked conversations' (``...@whatsapp``)
