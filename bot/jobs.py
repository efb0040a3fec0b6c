"""The send queue: Dramatiq on Redis, one actor ``deliver(lid)`` that drains a learner's outbox.

Importing this module configures the broker from ``Settings.from_env()`` (``REDIS_URL``; empty in
dev mode: the embedded server under ``var_dir/redis``), so ``dramatiq bot.jobs`` works and the
webhook's ``bot.jobs.deliver.send(lid)`` goes to the same Redis.

Crash recovery, and the broker settings that bound it
-----------------------------------------------------
Dramatiq's RedisBroker keeps each fetched message id in a per-worker "acks" set until the message
is acked. Every broker command (fetch, ack, enqueue) refreshes the worker's heartbeat
(``ZADD __heartbeats__``), and with probability ``maintenance_chance`` / 1,000,000 a command also
runs maintenance: workers silent for ``heartbeat_timeout`` ms are dead, and their unacked messages
go back on the queue (``dispatch.lua``). Library defaults (60 s, 0.1 %) mean a message held by a
SIGKILLed worker waits minutes. We choose:

* ``HEARTBEAT_TIMEOUT_MS = 10_000``: a live worker polls each of its queues at least once a second
  when idle (``worker_timeout`` 1 s) and acks/enqueues when busy, so 10 s is a wide margin; a
  false "dead" verdict only runs a ``deliver`` twice, which is harmless (the outbox lock).
* ``MAINTENANCE_CHANCE = MAINTENANCE_SCALE``: every command checks for dead workers (two ZRANGEBYSCOREs
  on small sorted sets), so the first poll after the 10 s finds them: redelivery ~10-11 s after
  the kill. Caveat: for each dead worker id, maintenance also runs ``KEYS <acks prefix>*`` a few
  times until its acks sets are gone (O(keys in the database), once per dead worker).

Redelivery is not the whole story: the killed sender's outbox lock must expire too
(``send_lock_seconds``), so a learner whose call was in flight is served again ~``send_lock_seconds``
after the kill; its in-flight item may be sent twice (at-least-once), nothing else is. On boot,
``OutboxRecovery`` also enqueues ``deliver`` for every learner with a pending outbox (covering
jobs lost between the webhook's commit and enqueue, and a restart of the only worker).
Measured by tests/test_jobs.py (SIGKILL with 4 calls in flight, immediate restart, 2 cores): the
dead worker's jobs were requeued 10.1 s after the kill, every item was delivered 30.8 s after it,
and exactly the 4 in-flight items were sent twice.

Job arguments (learner ids contain phone numbers) never reach a log line: Dramatiq logs messages
with ``%s`` (``deliver('wa:39...')``) at debug level and on unhandled errors, and an actor logs
``Received args=%r`` at debug level; this module installs a log-record factory that replaces those
by ``deliver(<arguments hidden>)`` and ``<hidden>``. Our own lines use ``learner_ref``.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from collections.abc import Mapping
from typing import Any

import dramatiq
import redis
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import MAINTENANCE_SCALE, RedisBroker
from dramatiq.middleware import Middleware, TimeLimitExceeded

from bot import embedded_redis, outbox
from bot.events import InboundEvent
from bot.keys import LearnerPart, learner_key
from bot.privacy import learner_ref
from bot.sender import GraphClient
from bot.timers import TimerClock
from config.logs import configure_logging
from config.settings import ConfigError, Settings, broker_url

HEARTBEAT_TIMEOUT_MS = 10_000  # silent this long -> a worker is dead; see the module docstring
MAINTENANCE_CHANCE = MAINTENANCE_SCALE  # per million broker commands: all of them
REDIS_CONNECT_TIMEOUT_SECONDS = 5.0
REDIS_SOCKET_TIMEOUT_SECONDS = 10.0  # no blocking commands are used, so any reply is quick
DELIVER_MAX_RETRIES = 8  # for unexpected errors (Redis down...); Graph errors never escape drain
DELIVER_MIN_BACKOFF_MS = 1_000
LOCKED_MARGIN_SECONDS = 0.05  # come back just after the holder's lock has expired
ACTOR_CALL_LOG_FORMAT = "Received args=%r kwargs=%r."  # dramatiq 2.x actor.py; tests/test_jobs.py checks

logger = logging.getLogger(__name__)


def _hide_job_arguments() -> None:
    """Replace Dramatiq messages in log-record arguments by ``actor(<arguments hidden>)``."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "hides_job_arguments", False):
        return

    def hidden(value: Any) -> Any:
        if isinstance(value, dramatiq.Message | MessageProxy):
            return f"{value.actor_name}(<arguments hidden>) [{value.message_id}]"
        return value

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if record.msg == ACTOR_CALL_LOG_FORMAT:  # dramatiq.Actor.__call__ at debug level
            record.args = ("<hidden>", "<hidden>")
        elif isinstance(record.args, tuple):
            record.args = tuple(hidden(value) for value in record.args)
        elif isinstance(record.args, Mapping):
            record.args = {key: hidden(value) for key, value in record.args.items()}
        return record

    factory.hides_job_arguments = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


def redis_url(settings: Settings) -> str:
    """``REDIS_URL``, or in dev mode the embedded server's (started if not running)."""
    if settings.redis_url:
        return settings.redis_url
    if settings.dev:
        return embedded_redis.start(settings.var_dir / "redis").url
    raise ConfigError("REDIS_URL is empty: set REDIS_URL=redis://host:6379/0 (the send queue and the "
                      "outboxes live there), or BOTTEGA_ENV=dev for an embedded server under var/")


def _redis_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=REDIS_CONNECT_TIMEOUT_SECONDS,
                                socket_timeout=REDIS_SOCKET_TIMEOUT_SECONDS)


class OutboxRecovery(Middleware):
    """After a worker process boots, enqueue ``deliver`` for every learner with a pending outbox.

    Runs in a background thread so the worker starts consuming at once. With ``--processes N``
    each process does it: duplicate jobs are harmless.
    """

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        threading.Thread(target=self._enqueue_pending, name="outbox-recovery", daemon=True).start()

    def _enqueue_pending(self) -> None:
        count = 0
        try:
            for lid in outbox.pending_learners(store):
                deliver.send(lid)
                count += 1
        except (redis.RedisError, OSError):
            logger.exception("outbox recovery stopped after %d learners; the next boot retries", count)
            return
        logger.info("outbox recovery: enqueued deliver for %d learners with pending outboxes", count)


settings = Settings.from_env()
configure_logging()  # LOG_LEVEL for the worker too (Dramatiq's CLI set up its handlers first)
outbox.check_timing(settings)
_hide_job_arguments()
_url = redis_url(settings)
store = _redis_client(_url)  # the outboxes; thread-safe (a connection pool)
broker = RedisBroker(client=_redis_client(settings.broker_redis_url or broker_url(_url)),
                     heartbeat_timeout=HEARTBEAT_TIMEOUT_MS,
                     maintenance_chance=MAINTENANCE_CHANCE)
broker.add_middleware(OutboxRecovery())
timer_clock = TimerClock(settings, store)  # check-up clocks: bot/timers.py
broker.add_middleware(timer_clock)
dramatiq.set_broker(broker)

_local = threading.local()  # requests.Session is not thread-safe: one GraphClient per thread


def graph_client() -> GraphClient:
    client = getattr(_local, "graph", None)
    if client is None:
        client = _local.graph = GraphClient(settings)
    return client


def _retry_when(retries: int, exc: BaseException) -> bool:
    """Retry infrastructure failures (Redis, network, time limit) up to DELIVER_MAX_RETRIES times.

    Anything else is a bug: retrying would not help. The outbox keeps its items either way; the
    next inbound message or worker boot drains it.
    """
    infrastructure = isinstance(exc, redis.RedisError | OSError | TimeLimitExceeded)
    return infrastructure and retries < DELIVER_MAX_RETRIES


# One drain may send MAX_SENDS_PER_DRAIN items of up to 2 timeouts (connect + read) each; the time
# limit must not cut it between a send and its pop (that would send the item again).
_DRAIN_LIMIT_MS = int((outbox.MAX_SENDS_PER_DRAIN * 2 * settings.send_timeout_seconds
                       + settings.send_lock_seconds) * 1000)


@dramatiq.actor(max_retries=DELIVER_MAX_RETRIES, retry_when=_retry_when, min_backoff=DELIVER_MIN_BACKOFF_MS,
                max_backoff=int(settings.send_max_backoff_seconds * 1000), time_limit=_DRAIN_LIMIT_MS)
def deliver(lid: str) -> None:
    """Drain learner ``lid``'s outbox; idempotent, so duplicate and concurrent jobs are safe.

    Re-enqueues itself with a delay when the drain asks to be called again (backoff after a
    transient Graph error, another sender holding the lock, or a yield after a batch) — unless a job
    for this learner is already due by then (``outbox.schedule``).
    """
    try:
        learner_key(lid, LearnerPart.OUTBOX)
    except (ValueError, TypeError):
        logger.error("deliver got a malformed learner id (%s); job dropped", type(lid).__name__)
        return
    result = outbox.drain(store, graph_client(), lid, settings)
    again = result.again_in_seconds
    if again is not None:
        if result.locked_for_seconds is not None:
            again += LOCKED_MARGIN_SECONDS
        delay_ms = int(again * 1000)
        now = outbox.wall_clock_ms()
        if outbox.schedule(store, lid, now + delay_ms, now):  # one scheduled job per learner, not a storm
            deliver.send_with_options(args=(lid,), delay=delay_ms or None)
    logger.debug("deliver learner=%s sent=%d failed=%d again_in_s=%s", learner_ref(lid), result.sent,
                result.failed, None if again is None else round(again, 3))


@dramatiq.actor(max_retries=DELIVER_MAX_RETRIES, retry_when=_retry_when, min_backoff=DELIVER_MIN_BACKOFF_MS)
def handle_events(events: list[str]) -> None:
    """Handle inbound events a webhook request handed over (a batch bigger than it handles itself).

    Each learner's events come in one job, in order. Idempotent: a retry after a Redis failure finds
    the events already handled in the dedup sets. One failing event is logged and the rest go on.
    """
    dispatcher = timer_clock.dispatcher(broker)
    for raw in events:
        try:
            event = InboundEvent.from_json(raw)
        except (ValueError, KeyError, TypeError):
            logger.error("handle_events got an event it cannot read; skipped")
            continue
        try:
            dispatcher.handle(event)
        except (redis.RedisError, OSError):
            raise  # infrastructure: the whole job is retried (duplicates are refused)
        except Exception:  # a bug in one event must not stop the others; no PII in the trace's text
            logger.error("deferred event skipped after an error (learner %s):\n%s", learner_ref(event.learner_id),
                         "".join(traceback.format_tb(sys.exc_info()[2])))
