"""Draining one learner's outbox to the Graph API: in order, one call at a time, each item once.

The webhook RPUSHes ``bot.storage.outbox_item.OutboxItem`` JSON onto the list ``learner_key(lid, OUTBOX)`` in
the order they must arrive (and drops superseded re-prompts: ``bot.storage.store``). ``drain`` sends them:

1. Take the learner's send lock (``SET NX PX`` with a random token; TTL ``send_lock_seconds``,
   which must outlast one call: ``2 * send_timeout_seconds``, connect + read). The same script
   returns the pace, the head of the outbox, and the waiting read receipt (``LearnerPart.RECEIPT``,
   taken with GETDEL) if the pace lets one go now.
2. Send that read receipt first, even while the outbox backs off from a rate limit; best effort —
   a failed receipt is not retried.
3. Loop: send the head, and only after the call returned remove exactly that item (Lua: pop only if
   the head still has that id); the same script then checks the lock is still ours, refreshes it and
   returns the next head. The next item is sent only after the previous call returned, so order
   holds however many workers run.
4. Outbox empty: that script (or, when there was nothing to send, one alone) releases the lock,
   deleting it only if it is ours AND the outbox is still empty; if items arrived meanwhile, keep
   draining. (The webhook enqueues a job after committing items, so an item is either seen by
   this loop or by that job.) A drain of N items costs N + 1 Redis round trips.

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
Sandbox learners (the production simulator's, ``bot.model.sandbox``): their items go through the same loop,
but to ``bot.delivery.sandbox``'s recorder instead of the Graph API.

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

from bot.delivery.graph import GraphError, Sender
from bot.delivery.pacing import Pace, PaceRules
from bot.delivery.sandbox import sender_for
from bot.delivery.throughput import Throughput
from bot.model.replies import broadcast_of
from bot.storage import broadcast_store, registered_scripts
from bot.storage.keys import LearnerPart, address_of, learner_key
from bot.storage.outbox_item import OutboxItem
from bot.tutor.preferences import REFUSAL_CODES
from config.settings import Settings

MALFORMED_ITEM_CODE = -10  # an outbox item that is not the JSON the contract describes
EXPIRED_UNSENT_CODE = -11  # given up before any attempt failed (e.g. workers were down that long)
MAX_SENDS_PER_DRAIN = 20  # then let other learners' jobs run (fairness across worker threads)
JITTER_RATIO = 0.2  # backoff * (1 + up to 20 %): learners throttled together retry apart

# KEYS: lock, pace, receipt, outbox, analytics events. ARGV: token, lock ms, now ms, receipt interval ms, events
# to take. -> {2}: nothing waits (no lock taken, no key written: a job for an erased learner leaves nothing
# behind), {0} (locked by another), or {1, pace JSON, receipt JSON to send now or '', ms until the waiting
# receipt may go (0: none waits or it is returned), the head of the outbox ('' if empty), events...}. The
# receipt's pause is ``Pace.receipt_wait``, read here from the stored pace so that the receipt is taken in this
# round trip.
_ACQUIRE = """
if redis.call('exists', KEYS[3]) == 0 and redis.call('llen', KEYS[5]) == 0 and redis.call('llen', KEYS[4]) == 0 then
  return {2}
end
if not redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {0} end
local pace = redis.call('get', KEYS[2]) or ''
local receipt, wait = '', 0
if redis.call('exists', KEYS[3]) == 1 then
  local at = 0
  local ok, state = pcall(cjson.decode, pace)
  if ok and type(state) == 'table' and tonumber(state['receipt_at_ms']) then at = tonumber(state['receipt_at_ms']) end
  wait = at + tonumber(ARGV[4]) - tonumber(ARGV[3])
  if wait > 0 then wait = math.floor(wait) else wait = 0; receipt = redis.call('getdel', KEYS[3]) end
end
local out = {1, pace, receipt, wait, redis.call('lindex', KEYS[4], 0) or ''}
local events = redis.call('lrange', KEYS[5], 0, tonumber(ARGV[5]) - 1)
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
# KEYS: lock, outbox, pace. ARGV: token, pace JSON, pace ttl ms, lock ms.
# -> {1} released, {-1} the lock is no longer ours, {0, head}: items arrived (the lock is refreshed).
_RELEASE_IF_EMPTY = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return {-1} end
local head = redis.call('lindex', KEYS[2], 0)
if head then
  redis.call('pexpire', KEYS[1], ARGV[4])
  return {0, head}
end
redis.call('set', KEYS[3], ARGV[2], 'PX', ARGV[3])
redis.call('del', KEYS[1])
return {1}
"""
PACE_TTL_MS = 3600 * 1000  # after an hour of silence a learner's bucket is full again anyway
# KEYS: outbox, delivery, lock, pace. ARGV: token, lock ms, pace JSON, pace ttl ms, the head to match (item id,
# or the raw item when mode is 'raw'), mode 'id'|'raw', action 'pop'|'set', the counter to increment (pop) or the
# new item (set), then field/value pairs for the delivery hash. Matched by id, not text: a transient error
# rewrites it. Then, after a pop: the lock still ours? refresh it and return the next head, or release it
# (saving the pace) if the outbox is empty.
# -> {settled 0|1, 1 (ours, refreshed) | 0 (released: empty) | -1 (not ours), the next head (absent if none)}
_SETTLE_HEAD = """
local function settle()
  local head = redis.call('lindex', KEYS[1], 0)
  if not head then return 0 end
  if ARGV[6] == 'raw' then
    if head ~= ARGV[5] then return 0 end
  else
    local ok, item = pcall(cjson.decode, head)
    if not (ok and type(item) == 'table' and item['id'] == ARGV[5]) then return 0 end
  end
  if ARGV[7] == 'pop' then
    redis.call('lpop', KEYS[1])
    redis.call('hincrby', KEYS[2], ARGV[8], 1)
  else
    redis.call('lset', KEYS[1], 0, ARGV[8])
  end
  for i = 9, #ARGV, 2 do redis.call('hset', KEYS[2], ARGV[i], ARGV[i + 1]) end
  return 1
end
local settled = settle()
if ARGV[7] ~= 'pop' then return {settled, 1} end
if redis.call('get', KEYS[3]) ~= ARGV[1] then return {settled, -1} end
local head = redis.call('lindex', KEYS[1], 0)
if not head then
  redis.call('set', KEYS[4], ARGV[3], 'PX', ARGV[4])
  redis.call('del', KEYS[3])
  return {settled, 0}
end
redis.call('pexpire', KEYS[3], ARGV[2])
return {settled, 1, head}
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
    script = registered_scripts.script(client, _SCHEDULE)
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


KEEP, DONE, POPPED_LOST, LOST = 1, 0, -2, -1  # what ``_Outbox.pop`` did (see there)


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
        self.receipt_json: bytes | None = None  # taken by acquire: send it now
        self.receipt_wait_ms = 0  # a receipt waits for this long
        self.head: bytes | None = None  # the head of the outbox, as the last script saw it
        self.token = secrets.token_hex(16)
        self._scripts = {name: registered_scripts.script(client, text) for name, text in (
            ("acquire", _ACQUIRE), ("release", _RELEASE), ("release_if_empty", _RELEASE_IF_EMPTY),
            ("settle", _SETTLE_HEAD))}

    def acquire(self, now_ms: int) -> bool | None:
        """Take the lock; with it come the pace, the head, the read receipt if one may go, and the analytics
        events waiting (one round trip). None: nothing waits (no receipt, no item, no analytics event): no lock
        taken."""
        answer = self._scripts["acquire"](
            keys=[self.lock, self.pace_key, self.receipt, self.outbox, self.events_key],
            args=[self.token, self.lock_ms, now_ms, self.rules.receipt_interval_ms, EVENTS_PER_DRAIN])
        if int(answer[0]) == 2:
            return None
        if int(answer[0]) != 1:
            return False
        self.pace = Pace.from_json(answer[1], self.rules)
        self.receipt_json = answer[2] or None
        self.receipt_wait_ms = int(answer[3])
        self.head = answer[4] or None
        self.events = tuple(answer[5:])
        return True

    def holder_seconds(self) -> float:
        """Seconds until the current holder's lock expires (0.0 if nobody holds it)."""
        pttl = int(self.client.pttl(self.lock))
        if pttl == -1:  # a lock without expiry was set by hand: wait one lock period and look again
            return self.lock_ms / 1000
        return max(pttl, 0) / 1000

    def release(self) -> None:
        self._scripts["release"](keys=[self.lock, self.pace_key], args=[self.token, self.pace.to_json(), PACE_TTL_MS])

    def release_if_empty(self) -> int:
        """1 released, 0 items arrived (keep draining: ``head`` is set, the lock refreshed), -1 the lock is
        no longer ours."""
        answer = self._scripts["release_if_empty"](keys=[self.lock, self.outbox, self.pace_key],
                                                   args=[self.token, self.pace.to_json(), PACE_TTL_MS, self.lock_ms])
        if int(answer[0]) == 0:
            self.head = answer[1]
        return int(answer[0])

    def pop(self, match: bytes | str, mode: str, counter: str, record: dict[str, Any]) -> int:
        """Remove the head if it is ``match``, counting and recording the outcome, then look at what follows:
        ``KEEP`` popped and the lock still ours (``head``: the next item; the lock refreshed), ``DONE`` popped
        and the outbox empty (the lock released), ``POPPED_LOST`` popped but the lock is someone else's now,
        ``LOST`` the head was not ``match`` (someone else drains)."""
        pairs = [value for field_value in record.items() for value in field_value]
        answer = self._scripts["settle"](keys=[self.outbox, self.delivery, self.lock, self.pace_key],
                                         args=[self.token, self.lock_ms, self.pace.to_json(), PACE_TTL_MS,
                                               match, mode, "pop", counter, *pairs])
        if int(answer[0]) != 1:
            return LOST
        if int(answer[1]) == -1:
            return POPPED_LOST
        self.head = answer[2] if len(answer) > 2 else None
        return KEEP if int(answer[1]) == 1 else DONE

    def update(self, new_item: OutboxItem, record: dict[str, Any]) -> bool:
        """Rewrite the head if it is still ``new_item.id`` (guarded LSET); False: not ours."""
        pairs = [value for field_value in record.items() for value in field_value]
        answer = self._scripts["settle"](keys=[self.outbox, self.delivery, self.lock, self.pace_key],
                                         args=[self.token, self.lock_ms, self.pace.to_json(), PACE_TTL_MS,
                                               new_item.id, "id", "set", new_item.to_json(), *pairs])
        return int(answer[0]) == 1


def _failure(code: int, kind: str, item_id: str, at_ms: int) -> dict[str, Any]:
    return {"last_error_code": code, "last_error_kind": kind, "last_error_at_ms": at_ms,
            "last_failed_item": item_id}


def _backoff_seconds(exc: GraphError, attempt: int, settings: Settings) -> float:
    base = exc.retry_after_seconds(attempt) * (1 + random.uniform(0, JITTER_RATIO))
    return min(base, settings.send_max_backoff_seconds)


def drain(client: redis.Redis, graph: Sender, lid: str, settings: Settings, *,
          now_ms: Callable[[], int] = wall_clock_ms, max_sends: int = MAX_SENDS_PER_DRAIN,
          throughput: Throughput | None = None) -> DrainResult:
    """Send ``lid``'s outbox in order until it is empty, a transient error, or ``max_sends`` items.

    Safe to call any number of times, concurrently, from any process: at most one caller holds the
    lock; the others get ``locked_for_seconds``. ``now_ms`` is the wall clock in ms (tests inject
    one). Raises only Redis errors; Graph errors are handled as the module docstring says.
    ``throughput``: the sending numbers' shared buckets (the worker passes its own; None: no number limit).
    A sandbox learner's outbox (``bot.model.sandbox``) goes to the simulator's recorder, never to ``graph``,
    and takes no token of the real number's budget (``bot.delivery.sandbox``).
    """
    check_timing(settings)
    sender = sender_for(client, lid, graph)
    if sender is not graph:
        graph, throughput = sender, None
    box = _Outbox(client, lid, int(settings.send_lock_seconds * 1000), pace_rules(settings))
    acquired = box.acquire(now_ms())
    if acquired is None:
        return DrainResult()
    if not acquired:
        return DrainResult(locked_for_seconds=box.holder_seconds())
    try:
        receipt_wait_ms = _send_receipt(box, graph, now_ms())
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


def _send_receipt(box: _Outbox, graph: Sender, now: int) -> int:
    """Send the read receipt ``acquire`` took, if any; the ms until a waiting one may go (0: none waits).

    Sent once, never retried: a lost blue tick is not worth a retry storm, and the next message
    brings another. A newer message replaces a receipt that waits, so only the latest is marked.
    """
    if box.receipt_wait_ms or box.receipt_json is None:
        return box.receipt_wait_ms
    box.pace.receipt_at_ms = now
    try:
        receipt = json.loads(box.receipt_json)
        graph.send(receipt["channel"], receipt["sender_id"], receipt["body"])
    except (ValueError, KeyError, TypeError, GraphError):
        pass
    return 0


def _send_in_order(box: _Outbox, graph: Sender, settings: Settings, now_ms: Callable[[], int],
                   max_sends: int, refused: list[tuple[str, int]], throughput: Throughput | None = None
                   ) -> DrainResult:
    """The loop of ``drain``, run while holding the lock."""
    give_up_ms = int(settings.send_give_up_seconds * 1000)
    sent = failed = 0

    def lost() -> DrainResult:  # someone else drains now (our lock expired): leave it to them
        return DrainResult(sent=sent, failed=failed, locked_for_seconds=box.holder_seconds())

    def done() -> DrainResult:  # the outbox is empty and the lock released
        return DrainResult(sent=sent, failed=failed)

    while True:
        raw = box.head
        if raw is None:
            released = box.release_if_empty()
            if released == 1:
                return DrainResult(sent=sent, failed=failed)
            if released == -1:
                return lost()
            continue  # items arrived since we last looked: keep draining (the lock is refreshed)
        if sent + failed >= max_sends:
            box.release()
            return DrainResult(sent=sent, failed=failed, retry_in_seconds=0.0)
        item = OutboxItem.from_json(raw)
        now = now_ms()
        if item is None:
            popped = box.pop(raw, "raw", "failed_sends", _failure(MALFORMED_ITEM_CODE, "malformed", "", now))
            failed += popped != LOST
            if popped != KEEP:
                return done() if popped == DONE else lost()
            continue
        if now - item.created_ms >= give_up_ms:
            code = EXPIRED_UNSENT_CODE if item.last_error_code is None else item.last_error_code
            popped = box.pop(item.id, "id", "failed_sends", _failure(code, "gave_up", item.id, now))
            if popped != LOST:
                box.settled.append(Settled(item, False, code, now))
                failed += 1
                if broadcast_of(item.proactive):
                    broadcast_store.settle(box.client, broadcast_of(item.proactive), box.lid, f"failed:{code}")
            if popped != KEEP:
                return done() if popped == DONE else lost()
            continue
        if item.not_before_ms > now:  # still backing off from an earlier transient error
            box.release()
            return DrainResult(sent=sent, failed=failed, retry_in_seconds=(item.not_before_ms - now) / 1000)
        wait_ms = box.pace.take(box.rules, now)
        if wait_ms:  # this learner had their burst: later turns may still supersede what waits
            box.release()
            return DrainResult(sent=sent, failed=failed, retry_in_seconds=wait_ms / 1000)
        broadcast = broadcast_of(item.proactive)
        number_wait_ms = throughput.take(item.channel, item.sender_id, bulk=bool(broadcast),
                                         waited=box.pace.number_waited) if throughput else 0
        box.pace.number_waited = bool(number_wait_ms)
        if number_wait_ms:  # the sending number's budget is spent: back when this learner's place in line comes
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
            popped = box.pop(item.id, "id", "failed_sends", _failure(exc.code, kind, item.id, now))
            if popped == LOST:
                return lost()
            box.settled.append(Settled(item, False, exc.code, now))
            failed += 1
            if broadcast:
                broadcast_store.settle(box.client, broadcast, box.lid, f"failed:{exc.code}")
            if item.proactive and exc.code in REFUSAL_CODES:
                refused.append((item.id, exc.code))
            if popped != KEEP:
                return done() if popped == DONE else lost()
            continue
        sent_at = now_ms()
        record = {"last_sent_at_ms": sent_at, "last_sent_id": message_id}
        if broadcast:  # a status webhook for this message id finds its broadcast here (bot.storage.store)
            record.update({broadcast_store.LAST_BROADCAST_FIELD: f"{broadcast} {message_id}"})
        popped = box.pop(item.id, "id", "sent_count", record)
        if popped != LOST:
            box.settled.append(Settled(item, True, 0, sent_at))
            sent += 1
            if broadcast:
                broadcast_store.settle(box.client, broadcast, box.lid, "sent")
        if popped != KEEP:
            return done() if popped == DONE else lost()


def pending_learners(client: redis.Redis, batch: int = 500) -> Iterator[str]:
    """Learner ids whose outbox is not empty (Redis deletes empty lists), for recovery at start.

    SCANs for the key pattern ``learner_key("*", OUTBOX)``; like SCAN, it may yield a learner
    twice and may miss outboxes created during the scan (their webhook enqueued a job anyway).
    """
    for key in client.scan_iter(match=learner_key("*", LearnerPart.OUTBOX) + "*", count=batch):
        yield address_of(key)  # a learner's own outbox, or one of their linked conversations' (``...@whatsapp``)
