"""Server-side clocks: the sweeper that fires learners' due timers as TIMER events.

A timer is a member of the learner's own sorted set (``LearnerPart.TIMERS``, scored by due ms),
written in the same atomic commit as the state that needs it; an index sharded over many hash slots
(``bot.storage.keys.timer_index_keys``: learner -> earliest due, in the learner's shard) tells the sweeper
whom to look at; each sweep reads every shard. Nothing
lives in a process: timers survive restarts of every web and worker process.

Exactly once: a timer fires through the ordinary ``Dispatcher.handle`` with message id
``timer:<payload>``, so a second firing (two sweepers, or a crash before the timer was removed) is a
duplicate and changes nothing. The index is kept without cross-slot scripts: after firing, the
sweeper removes the learner from the index and then re-adds them if timers remain — a commit that
adds a timer meanwhile writes the learner's set first and the index second, so one of the two sees it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import dramatiq
import redis
from dramatiq.middleware import Middleware

from bot import channels
from bot.dispatch import Dispatcher
from bot.model.events import EventKind, InboundEvent
from bot.model.privacy import learner_ref
from bot.storage.encoding import text
from bot.storage.keys import LearnerPart, learner_key, timer_index_keys
from config import meters

log = logging.getLogger(__name__)

SWEEP_INTERVAL_SECONDS = 0.5  # how late a timer may fire, at most, while timers are due (plus the turn itself)
SWEEP_BATCH = 200  # learners looked at per sweep
# On the real clock, a sweeper that found nothing due waits twice as long each time, up to this, and never past
# the earliest due time in the index: an idle worker looks at Redis every few seconds, not twice a second. A timer
# written meanwhile for a moment before that (a check-up's 30-minute clock) fires up to this much late.
SWEEP_IDLE_MAX_SECONDS = 5.0


def timer_event(learner_id: str, payload: str, due_ms: int) -> InboundEvent:
    user_id = learner_id.partition(":")[2]
    channel = channels.for_learner(learner_id).channel
    return InboundEvent(channel=channel, kind=EventKind.TIMER, user_id=user_id, reply_from="",
                        message_id=f"timer:{payload}", payload=payload, timestamp_ms=due_ms)


def sweep(client: redis.Redis, dispatcher: Dispatcher, now_ms: int) -> int:
    """Fire every timer due at ``now_ms``; returns how many were handed to the dispatcher."""
    pipe = client.pipeline(transaction=False)  # one round trip per node for every shard
    for index in timer_index_keys():
        pipe.zrangebyscore(index, "-inf", now_ms, start=0, num=SWEEP_BATCH)
    fired = 0
    for index, due in zip(timer_index_keys(), pipe.execute(), strict=True):
        for raw in due:
            fired += _fire(client, dispatcher, index, text(raw), now_ms)
    return fired


def idle_wait(client: redis.Redis, now_ms: int, waited: float, idle_max: float) -> float:
    """Seconds until the next sweep after one that fired nothing: double the last wait, at most ``idle_max``,
    never past the earliest due time in the index, never under ``SWEEP_INTERVAL_SECONDS``."""
    wait = min(max(waited * 2, SWEEP_INTERVAL_SECONDS), idle_max)
    if wait <= SWEEP_INTERVAL_SECONDS:
        return SWEEP_INTERVAL_SECONDS
    pipe = client.pipeline(transaction=False)
    for index in timer_index_keys():  # the earliest due time over every shard of the index
        pipe.zrange(index, 0, 0, withscores=True)
    dues = [int(found[0][1]) for found in pipe.execute() if found]
    if dues:
        wait = min(wait, (min(dues) - now_ms) / 1000)
    return max(wait, SWEEP_INTERVAL_SECONDS)


def _fire(client: redis.Redis, dispatcher: Dispatcher, index: str, learner_id: str, now_ms: int) -> int:
    """Fire ``learner_id``'s due timers, then put them back in the index at their next one, if any."""
    fired = 0
    timers_key = learner_key(learner_id, LearnerPart.TIMERS)
    for entry in client.zrangebyscore(timers_key, "-inf", now_ms, withscores=True):
        member, score = entry[0], entry[1]
        payload = text(member)
        dispatcher.handle(timer_event(learner_id, payload, int(score)), now_ms=now_ms)
        client.zrem(timers_key, member)
        meters.TIMERS_FIRED.inc()
        meters.TIMER_LATENESS.observe(max(now_ms - int(score), 0) / 1000)
        fired += 1
    client.zrem(index, learner_id)
    following = client.zrange(timers_key, 0, 0, withscores=True)
    if following:
        dispatcher.store.wake_at(learner_id, int(following[0][1]))  # the learner's shard (not the legacy key)
    log.debug("timers swept for learner %s", learner_ref(learner_id))
    return fired


def timers_due(client: redis.Redis, now_ms: int) -> int:
    """Learners with a clock event due at ``now_ms`` and not fired yet, over every shard (metrics)."""
    pipe = client.pipeline(transaction=False)
    for index in timer_index_keys():
        pipe.zcount(index, "-inf", now_ms)
    return sum(int(count) for count in pipe.execute())


class Sweeper(threading.Thread):
    """Runs ``sweep`` in a worker process until stopped: every ``SWEEP_INTERVAL_SECONDS`` while timers fire,
    backing off up to ``idle_max_seconds`` while none is due (``idle_wait``). Keep the default (no back-off)
    on a clock that can jump (dev and test: ``bot.storage.clock``)."""

    def __init__(self, client: redis.Redis, dispatcher_factory: Callable[[], Dispatcher], *,
                 idle_max_seconds: float = SWEEP_INTERVAL_SECONDS):
        super().__init__(name="timer-sweeper", daemon=True)
        self.client = client
        self.dispatcher_factory = dispatcher_factory
        self.idle_max_seconds = idle_max_seconds
        self.stopped = threading.Event()

    def run(self) -> None:
        dispatcher = None
        wait = SWEEP_INTERVAL_SECONDS
        while not self.stopped.wait(wait):
            waited, wait = wait, SWEEP_INTERVAL_SECONDS
            try:
                dispatcher = dispatcher or self.dispatcher_factory()
                now_ms = dispatcher.clock()
                if sweep(self.client, dispatcher, now_ms) == 0:
                    wait = idle_wait(self.client, now_ms, waited, self.idle_max_seconds)
            except (redis.RedisError, OSError) as error:
                log.warning("timer sweep failed (%s); retrying", type(error).__name__)
            except Exception:  # a bug must not stop every clock; it is logged with its traceback
                log.exception("timer sweep crashed; retrying")

    def stop(self) -> None:
        self.stopped.set()


class TimerClock(Middleware):
    """Dramatiq middleware: each worker process runs one ``Sweeper`` (several are safe: exactly once)."""

    def __init__(self, client: redis.Redis, dispatcher: Callable[[], Dispatcher], *,
                 idle_max_seconds: float = SWEEP_INTERVAL_SECONDS):
        self.client, self.dispatcher = client, dispatcher
        self.idle_max_seconds = idle_max_seconds
        self.sweeper: Sweeper | None = None

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self.sweeper = Sweeper(self.client, self.dispatcher, idle_max_seconds=self.idle_max_seconds)
        self.sweeper.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        if self.sweeper:
            self.sweeper.stop()
