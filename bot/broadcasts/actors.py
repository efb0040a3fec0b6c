"""The worker's part of broadcasts: the ``broadcast_step`` actor.

``bot.worker`` imports this module after setting the broker (the actor binds to it), then calls
``configure`` with this process's ``Broadcasts``. ``bot.broadcasts.recovery`` restarts running broadcasts
when a worker boots.
"""

from __future__ import annotations

from collections.abc import Callable

import dramatiq
import redis
from dramatiq.middleware import TimeLimitExceeded

from bot.broadcasts.service import Broadcasts
from bot.delivery.broker import BROADCAST_STEP, BULK_PRIORITY, BULK_QUEUE, DELIVER_MAX_RETRIES, DELIVER_MIN_BACKOFF_MS

STEP_TIME_LIMIT_MS = 120_000  # one step admits at most BROADCAST_CHUNK learners, a turn each

_service: list[Callable[[], Broadcasts]] = []


def configure(service: Callable[[], Broadcasts]) -> None:
    _service[:] = [service]


def service() -> Broadcasts:
    if not _service:
        raise RuntimeError("the broadcast actor runs without its service: start the worker with `dramatiq bot.worker`")
    return _service[0]()


def _retry_when(retries: int, exc: BaseException) -> bool:
    return isinstance(exc, redis.RedisError | OSError | TimeLimitExceeded) and retries < DELIVER_MAX_RETRIES


@dramatiq.actor(actor_name=BROADCAST_STEP, queue_name=BULK_QUEUE, priority=BULK_PRIORITY, time_limit=STEP_TIME_LIMIT_MS,
                max_retries=DELIVER_MAX_RETRIES, retry_when=_retry_when, min_backoff=DELIVER_MIN_BACKOFF_MS)
def broadcast_step(broadcast_id: str, token: str) -> None:
    """Admit the next recipients of a broadcast (``Broadcasts.step``) and schedule the chain's next step.

    A retry (Redis gone mid-step) runs with the same token: the chain is passed on only at the end."""
    broadcasts = service()
    result = broadcasts.step(broadcast_id, token)
    if result.again_in_seconds is not None and broadcasts.queue is not None:
        broadcasts.queue.broadcast_step(broadcast_id, result.token, delay_ms=int(result.again_in_seconds * 1000))
