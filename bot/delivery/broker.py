"""The send queue: Dramatiq on Redis, or on RabbitMQ (``BROKER_URL=amqp://...``).
``build_broker(settings)`` makes the broker (nothing connects
until it is used); ``JobQueue`` puts jobs on it by actor name — ``deliver(lid)`` (drain a learner's
outbox) and ``handle_events(events)`` (a big batch's tail) — so the web process enqueues without
importing the actors, which ``bot.worker`` declares on the same broker.

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

RabbitMQ (``BROKER_URL``) when one Redis cannot carry the queue: Dramatiq's Redis broker keeps a queue in
a few keys that must live together, so it cannot spread over a Redis Cluster; RabbitMQ can, and it
requeues the messages of a worker whose connection drops at once (no heartbeat wait). The broker only has
to deliver "wake this learner" at least once: order is the per-learner outbox's job (``bot.delivery.outbox``).

Every job carries the request id of the webhook that caused it (``options["request_id"]``); the worker's
``RequestIdMiddleware`` sets it for the job's log lines and for the jobs it enqueues in turn.

Job arguments (learner ids contain phone numbers) never reach a log line: Dramatiq logs messages
with ``%s`` (``deliver('wa:39...')``) at debug level and on unhandled errors, and an actor logs
``Received args=%r`` at debug level; this module installs a log-record factory that replaces those
by ``deliver(<arguments hidden>)`` and ``<hidden>``. Our own lines use ``learner_ref``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

import dramatiq
import redis
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import MAINTENANCE_SCALE, RedisBroker
from dramatiq.common import dq_name
from dramatiq.middleware import Middleware

from bot.delivery import outbox
from bot.model.errors import ConfigError
from bot.model.events import InboundEvent
from config import logs
from config.settings import Settings, broker_url

CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")  # REDIS_URL naming a Redis Cluster
DELIVER = "deliver"  # actor names: the contract between JobQueue and bot.delivery.actors
HANDLE_EVENTS = "handle_events"
ERASE_LEARNER = "erase_learner"
DELIVER_BULK = "deliver_bulk"  # a broadcast's sends (bot.delivery.actors), below every conversation
BROADCAST_STEP = "broadcast_step"  # admit a broadcast's next recipients (bot.broadcasts.actors)
CONSOLE_JOB = "console_job"  # an admin's dry run, send or announce that reads every learner (bot.console.actors)
QUEUE = "default"
BULK_QUEUE = "bulk"  # broadcast traffic: its own queue, so a conversation's job never waits behind 100,000 of them
BULK_PRIORITY = 100  # a worker runs the jobs it holds lowest priority first: conversations (0) before bulk
HEARTBEAT_TIMEOUT_MS = 10_000  # silent this long -> a worker is dead; see the module docstring
MAINTENANCE_CHANCE = MAINTENANCE_SCALE  # per million broker commands: all of them
REDIS_CONNECT_TIMEOUT_SECONDS = 5.0
REDIS_SOCKET_TIMEOUT_SECONDS = 10.0  # no blocking commands are used, so any reply is quick
DELIVER_MAX_RETRIES = 8  # for unexpected errors (Redis down...); Graph errors never escape drain
DELIVER_MIN_BACKOFF_MS = 1_000
LOCKED_MARGIN_SECONDS = 0.05  # come back just after the holder's lock has expired
ACTOR_CALL_LOG_FORMAT = "Received args=%r kwargs=%r."  # dramatiq 2.x actor.py; tests/test_jobs.py checks


def hide_job_arguments() -> None:
    """Replace Dramatiq messages in log-record arguments by ``actor(<arguments hidden>)``."""
    previous = logging.getLogRecordFactory()
    if not isinstance(previous, _ArgumentHidingFactory):
        logging.setLogRecordFactory(_ArgumentHidingFactory(previous))


class _ArgumentHidingFactory:
    """A log-record factory wrapping the one before it: job messages in the arguments become their names."""

    def __init__(self, previous: Callable[..., logging.LogRecord]) -> None:
        self.previous = previous

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.previous(*args, **kwargs)
        if record.msg == ACTOR_CALL_LOG_FORMAT:  # dramatiq.Actor.__call__ at debug level
            record.args = ("<hidden>", "<hidden>")
        elif isinstance(record.args, tuple):
            record.args = tuple(_hidden(value) for value in record.args)
        elif isinstance(record.args, Mapping):
            record.args = {key: _hidden(value) for key, value in record.args.items()}
        return record


def _hidden(value: Any) -> Any:
    if isinstance(value, dramatiq.Message | MessageProxy):
        return f"{value.actor_name}(<arguments hidden>) [{value.message_id}]"
    return value


def build_broker(settings: Settings, redis_url: str) -> dramatiq.Broker:
    """The send queue's broker: RabbitMQ at ``BROKER_URL``, else Redis in its own database (``broker_url``)
    or at ``BROKER_REDIS_URL``. Nothing connects until it is used."""
    hide_job_arguments()
    if settings.broker_amqp_url:
        rabbit: dramatiq.Broker = _shared_connection_rabbitmq()(url=settings.broker_amqp_url, confirm_delivery=True)
        rabbit.declare_queue(QUEUE)
        rabbit.declare_queue(BULK_QUEUE)
        return rabbit
    if redis_url.startswith(CLUSTER_SCHEMES) and not settings.broker_redis_url:
        raise ConfigError("REDIS_URL names a Redis Cluster, where Dramatiq's Redis broker cannot run (its keys "
                          "must share one slot): set BROKER_URL=amqp://guest:guest@127.0.0.1:5672 (RabbitMQ) or "
                          "BROKER_REDIS_URL=redis://host:6379/1 (a plain Redis for the queue)")
    client = redis.Redis.from_url(settings.broker_redis_url or broker_url(redis_url),
                                  socket_connect_timeout=REDIS_CONNECT_TIMEOUT_SECONDS,
                                  socket_timeout=REDIS_SOCKET_TIMEOUT_SECONDS)
    broker = RedisBroker(client=client, heartbeat_timeout=HEARTBEAT_TIMEOUT_MS, maintenance_chance=MAINTENANCE_CHANCE)
    broker.declare_queue(QUEUE)
    broker.declare_queue(BULK_QUEUE)
    return broker


def _shared_connection_rabbitmq() -> Any:
    """Dramatiq's RabbitMQ broker publishing over one connection per process, not one per thread.

    Its connection for publishing is thread-local: in a gevent web process every request is a greenlet,
    so every webhook would open (and leak) an AMQP connection. Here publishing shares one, one call at a
    time (a pika connection is not thread-safe); consumers keep their own connections, as in Dramatiq.
    Confirmed delivery: ``enqueue`` returns once RabbitMQ has the message.
    """
    from dramatiq.brokers.rabbitmq import RabbitmqBroker  # pika only where RabbitMQ is chosen

    class SharedConnectionRabbitmqBroker(RabbitmqBroker):
        def __init__(self, **options: Any) -> None:
            super().__init__(**options)
            self.state = _Slots()  # type: ignore[assignment]
            self._publish_lock = threading.RLock()

        def enqueue(self, message: dramatiq.Message[Any], *, delay: int | None = None) -> dramatiq.Message[Any]:
            with self._publish_lock:
                return super().enqueue(message, delay=delay)

        def declare_queue(self, queue_name: str, *, ensure: bool = False) -> None:
            with self._publish_lock:
                super().declare_queue(queue_name, ensure=ensure)

        def get_queue_message_counts(self, queue_name: str) -> tuple[int, int, int]:
            with self._publish_lock:
                return super().get_queue_message_counts(queue_name)

    return SharedConnectionRabbitmqBroker


class _Slots:
    """Where the broker keeps its publishing connection and channel: one per process, not per thread."""

    connection: Any
    channel: Any


def drain_time_limit_ms(settings: Settings) -> int:
    """One drain may send ``MAX_SENDS_PER_DRAIN`` items of up to two timeouts (connect + read) each; the
    time limit must not cut it between a send and its pop (that would send the item again)."""
    return int((outbox.MAX_SENDS_PER_DRAIN * 2 * settings.send_timeout_seconds + settings.send_lock_seconds) * 1000)


class JobQueue:
    """Puts jobs on the broker by actor name (the worker's ``bot.delivery.actors`` runs them)."""

    def __init__(self, broker: dramatiq.Broker, settings: Settings):
        self.broker = broker
        self._deliver_options = {"time_limit": drain_time_limit_ms(settings),
                                 "max_backoff": int(settings.send_max_backoff_seconds * 1000)}

    def deliver(self, learner_id: str, *, delay_ms: int | None = None) -> None:
        """Drain ``learner_id``'s outbox (now, or after ``delay_ms``)."""
        self._enqueue(DELIVER, (learner_id,), self._deliver_options, delay_ms)

    def deliver_bulk(self, learner_id: str, *, delay_ms: int | None = None) -> None:
        """Drain ``learner_id``'s outbox for a broadcast: on the bulk queue, after every conversation's job."""
        self._enqueue(DELIVER_BULK, (learner_id,), self._deliver_options, delay_ms, queue=BULK_QUEUE)

    def broadcast_step(self, broadcast_id: str, token: str, *, delay_ms: int | None = None) -> None:
        """Admit broadcast ``broadcast_id``'s next recipients (the step chain holding ``token``)."""
        self._enqueue(BROADCAST_STEP, (broadcast_id, token), {}, delay_ms, queue=BULK_QUEUE)

    def console_job(self, job_id: str) -> None:
        """Run the console's job ``job_id`` (its record says what: ``bot.console.jobs``) on the bulk queue, after
        every conversation's job: the web request that asked for it only waits for this enqueue."""
        self._enqueue(CONSOLE_JOB, (job_id,), {}, None, queue=BULK_QUEUE)

    def handle_events(self, events: list[InboundEvent]) -> None:
        """Handle these events in the worker, in this order (one learner's events in one job)."""
        self._enqueue(HANDLE_EVENTS, ([event.to_json() for event in events],), {}, None)

    def erase_learner(self, learner_id: str, attempt: int = 0, *, delay_ms: int | None = None) -> None:
        """Erase ``learner_id`` once their goodbye has been sent (bot.privacy.chat)."""
        self._enqueue(ERASE_LEARNER, (learner_id, attempt), self._deliver_options, delay_ms)

    def _enqueue(self, actor: str, args: tuple[Any, ...], options: dict[str, Any], delay_ms: int | None,
                 queue: str = QUEUE) -> None:
        message: dramatiq.Message[Any] = dramatiq.Message(queue_name=queue, actor_name=actor, args=args, kwargs={},
                                                          options={**options, "request_id": logs.request_id.get()})
        self.broker.enqueue(message, delay=delay_ms or None)


class RequestIdMiddleware(Middleware):
    """Sets the job's request id (the webhook's) while the worker runs it; counts jobs by result."""

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        logs.request_id.set(str(message.options.get("request_id") or logs.NO_REQUEST))

    def after_process_message(self, broker: dramatiq.Broker, message: MessageProxy, *, result: Any = None,
                              exception: BaseException | None = None) -> None:
        from config import meters

        meters.JOBS.labels(message.actor_name, "ok" if exception is None else "failed").inc()
        logs.request_id.set(logs.NO_REQUEST)

    after_skip_message = after_process_message


class WakePrecision(Middleware):
    """How late a delayed job may run: the worker's consumers look at their queues (and move due delayed
    messages onto them) at least every ``worker_timeout_ms``. Dramatiq's default, 1 s, woke delayed sends in
    batches up to a second late: learners waiting for the sending number's bucket (``bot.delivery.throughput``)
    came back after the tokens they waited for had overflowed the bucket, and a number paced at 20/s sent at
    about 9/s. Set on the worker before its consumers start (``before_worker_boot``)."""

    def __init__(self, worker_timeout_ms: int) -> None:
        self.worker_timeout_ms = worker_timeout_ms

    def before_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        worker.worker_timeout = self.worker_timeout_ms


class MetricsExposition(Middleware):
    """The box's /metrics on ``METRICS_PORT`` from the first worker process that binds it."""

    def __init__(self, port: int) -> None:
        self.port = port

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        from config import metrics

        metrics.serve(self.port)


def queue_depth(broker: dramatiq.Broker) -> dict[tuple[str, str], int]:
    """Messages waiting in the send queues, by (queue, state): ``ready`` (to run now) and ``delayed`` (scheduled
    retries), for the conversations' queue and the broadcasts' (bulk).

    Redis: each queue's list and its delay list (a worker holds delayed messages it has fetched until they
    are due, so those are not counted). RabbitMQ: each queue and its delay queue as the server counts them.
    """
    depth: dict[tuple[str, str], int] = {}
    if hasattr(broker, "get_queue_message_counts"):  # RabbitMQ
        for queue in (QUEUE, BULK_QUEUE):
            ready, delayed, _dead = broker.get_queue_message_counts(queue)
            depth[(queue, "ready")], depth[(queue, "delayed")] = ready, delayed
    elif isinstance(broker, RedisBroker):
        pipe = broker.client.pipeline(transaction=False)
        for queue in (QUEUE, BULK_QUEUE):
            pipe.llen(f"{broker.namespace}:{queue}")
            pipe.llen(f"{broker.namespace}:{dq_name(queue)}")
        counts = [int(count) for count in pipe.execute()]
        for n, queue in enumerate((QUEUE, BULK_QUEUE)):
            depth[(queue, "ready")], depth[(queue, "delayed")] = counts[2 * n], counts[2 * n + 1]
    return depth
