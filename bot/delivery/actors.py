"""The worker's actors: ``deliver(lid)`` drains a learner's outbox, ``handle_events(events)`` handles a big
batch's tail. They run in the Procfile's worker (``bot.worker``), which sets the broker, then imports
this module so the actors bind to it, then hands them their process's resources (``configure``).

Jobs carry JSON (a learner id; events as JSON), are idempotent, and keep their arguments out of
logs (``bot.delivery.broker.hide_job_arguments``). Retries: only infrastructure failures (Redis, the
network, a time limit), ``DELIVER_MAX_RETRIES`` times; Graph errors never escape ``outbox.drain``.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass

import dramatiq
import redis
from dramatiq.middleware import TimeLimitExceeded

from bot import channels
from bot.delivery import outbox
from bot.delivery.broker import (
    BULK_PRIORITY,
    BULK_QUEUE,
    DELIVER,
    DELIVER_BULK,
    DELIVER_MAX_RETRIES,
    DELIVER_MIN_BACKOFF_MS,
    ERASE_LEARNER,
    HANDLE_EVENTS,
    LOCKED_MARGIN_SECONDS,
    QUEUE,
    JobQueue,
)
from bot.delivery.graph import GraphClient
from bot.delivery.throughput import Throughput
from bot.dispatch import Dispatcher
from bot.model.events import EventKind, InboundEvent
from bot.model.privacy import learner_ref
from bot.storage.clock import Clock
from bot.storage.keys import LearnerPart, learner_key, split_address
from config import meters
from config.settings import Settings

logger = logging.getLogger(__name__)


Forward = Callable[[str, tuple[bytes, ...], tuple[outbox.Settled, ...]], int]  # bot.analytics.forwarding


@dataclass(frozen=True, kw_only=True)
class WorkerContext:
    """What a worker process's actors use: set once at boot by ``bot.worker``."""

    settings: Settings
    client: redis.Redis  # the outboxes (a thread-safe connection pool)
    queue: JobQueue  # to reschedule a drain
    dispatcher: Callable[[], Dispatcher]  # this process's dispatcher (built on first use)
    graph_client: Callable[[], GraphClient]  # one per thread
    clock: Clock  # now in ms: the real clock, or the shared test clock in dev and test (bot.storage.clock)
    erase: Callable[[str], None] | None = None  # erase a learner's data (bot.privacy, wired by bot.worker)
    throughput: Throughput | None = None  # the sending numbers' buckets, shared on Redis (None: no number limit)
    forward: Forward | None = None  # learning analytics: the drain's events and sends to their stream (None: off)


_context: WorkerContext | None = None
_local = threading.local()  # one GraphClient (its connection pool) per thread


def configure(context: WorkerContext) -> None:
    global _context
    _context = context


def context() -> WorkerContext:
    if _context is None:
        raise RuntimeError("the actors run without their context: start the worker with `dramatiq bot.worker`")
    return _context


def graph_client() -> GraphClient:
    client = getattr(_local, "graph", None)
    if client is None:
        client = _local.graph = context().graph_client()
    return client


def _retry_when(retries: int, exc: BaseException) -> bool:
    """Retry infrastructure failures (Redis, network, time limit) up to DELIVER_MAX_RETRIES times.

    Anything else is a bug: retrying would not help. The outbox keeps its items either way; the
    next inbound message or worker boot drains it.
    """
    infrastructure = isinstance(exc, redis.RedisError | redis.exceptions.RedisClusterException | OSError
                                | TimeLimitExceeded)
    return infrastructure and retries < DELIVER_MAX_RETRIES


@dramatiq.actor(actor_name=DELIVER, queue_name=QUEUE, max_retries=DELIVER_MAX_RETRIES, retry_when=_retry_when,
                min_backoff=DELIVER_MIN_BACKOFF_MS)
def deliver(lid: str) -> None:
    """Drain learner ``lid``'s outbox; idempotent, so duplicate and concurrent jobs are safe.

    Re-enqueues itself with a delay when the drain asks to be called again (backoff after a
    transient Graph error, another sender holding the lock, a paced learner, or a yield after a
    batch) — unless a job for this learner is already due by then (``outbox.schedule``). The time
    limit and the retry backoff come with the message (``JobQueue``), from the settings.
    """
    _deliver(lid, bulk=False)


@dramatiq.actor(actor_name=DELIVER_BULK, queue_name=BULK_QUEUE, priority=BULK_PRIORITY,
                max_retries=DELIVER_MAX_RETRIES, retry_when=_retry_when, min_backoff=DELIVER_MIN_BACKOFF_MS)
def deliver_bulk(lid: str) -> None:
    """``deliver`` for a broadcast's recipient: the same drain, from the bulk queue, at the lowest priority
    (a worker takes every conversation's job it holds first); a wait is rescheduled on the bulk queue."""
    _deliver(lid, bulk=True)


def _deliver(lid: str, *, bulk: bool) -> None:
    try:
        learner_key(lid, LearnerPart.OUTBOX)
    except (ValueError, TypeError):
        logger.error("deliver got a malformed learner id (%s); job dropped", type(lid).__name__)
        return
    ctx = context()
    result = outbox.drain(ctx.client, graph_client(), lid, ctx.settings, now_ms=ctx.clock, throughput=ctx.throughput)
    if ctx.forward is not None and (result.events or result.sends):
        ctx.forward(lid, result.events, result.sends)  # learning analytics: one pipeline, after the sends
    for item_id, code in result.refused:  # the learner's record learns why Meta refused what we wrote first
        ctx.dispatcher().handle(refusal_event(lid, item_id, code, ctx.clock()))
    again = result.again_in_seconds
    if again is not None:
        meters.DELIVER_AGAIN.labels("later" if result.locked_for_seconds is None else "locked").inc()
        if result.locked_for_seconds is not None:
            again += LOCKED_MARGIN_SECONDS
        delay_ms = int(again * 1000)
        now = ctx.clock()
        if outbox.schedule(ctx.client, lid, now + delay_ms, now):  # one scheduled job per learner, not a storm
            (ctx.queue.deliver_bulk if bulk else ctx.queue.deliver)(lid, delay_ms=delay_ms)
    logger.debug("deliver learner=%s sent=%d failed=%d again_in_s=%s", learner_ref(lid), result.sent,
                 result.failed, None if again is None else round(again, 3))


def refusal_event(lid: str, item_id: str, code: int, now_ms: int) -> InboundEvent:
    """Meta's refusal of a proactive outbox item, as the failed status a webhook would have brought.

    ``lid`` may be a linked conversation's address (``ms:1@whatsapp``): the status is the learner's."""
    lid = split_address(lid)[0]
    parts = channels.for_learner(lid)
    return InboundEvent(channel=parts.channel, kind=EventKind.STATUS, user_id=lid.partition(":")[2], reply_from="",
                        message_id=f"outbox.{item_id}", timestamp_ms=now_ms, status="failed", error_code=code)


@dramatiq.actor(actor_name=HANDLE_EVENTS, queue_name=QUEUE, max_retries=DELIVER_MAX_RETRIES,
                retry_when=_retry_when, min_backoff=DELIVER_MIN_BACKOFF_MS)
def handle_events(events: list[str]) -> None:
    """Handle inbound events a webhook request handed over (a batch bigger than it handles itself).

    Each learner's events come in one job, in order. Idempotent: a retry after a Redis failure finds
    the events already handled in the dedup sets. One failing event is logged and the rest go on.
    """
    dispatcher = context().dispatcher()
    for raw in events:
        try:
            event = InboundEvent.from_json(raw)
        except (ValueError, KeyError, TypeError):
            logger.error("handle_events got an event it cannot read; skipped")
            continue
        try:
            dispatcher.handle(event)
        except (redis.RedisError, redis.exceptions.RedisClusterException, OSError):
            raise  # infrastructure: the whole job is retried (duplicates are refused)
        except Exception:  # a bug in one event must not stop the others; no PII in the trace's text
            logger.error("deferred event skipped after an error (learner %s):\n%s", learner_ref(event.learner_id),
                         "".join(traceback.format_tb(sys.exc_info()[2])))


ERASE_GOODBYE_TRIES = 5  # drains of the goodbye before erasing anyway
ERASE_RETRY_MS = 2000


@dramatiq.actor(actor_name=ERASE_LEARNER, queue_name=QUEUE, max_retries=DELIVER_MAX_RETRIES, retry_when=_retry_when,
                min_backoff=DELIVER_MIN_BACKOFF_MS)
def erase_learner(lid: str, attempt: int = 0) -> None:
    """"Cancella i miei dati", confirmed: send what waits in each of the learner's outboxes (their goodbye),
    then erase everything stored about them. A goodbye that cannot go after a few tries does not hold it up."""
    ctx = context()
    store = ctx.dispatcher().store
    addresses = [lid, *(f"{lid}@{c.channel}" for c in store.linked_conversations(lid))]
    waiting = False
    for address in addresses:
        outbox.drain(ctx.client, graph_client(), address, ctx.settings, now_ms=ctx.clock)
        waiting = waiting or bool(ctx.client.llen(learner_key(address, LearnerPart.OUTBOX)))
    if waiting and attempt < ERASE_GOODBYE_TRIES:
        ctx.queue.erase_learner(lid, attempt + 1, delay_ms=ERASE_RETRY_MS)
        return
    if ctx.erase is not None:
        ctx.erase(lid)
    logger.info("learner %s erased at their request", learner_ref(lid))
