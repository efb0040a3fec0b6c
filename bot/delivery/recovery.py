"""After a worker process boots, enqueue ``deliver`` for every learner with a pending outbox.

It covers jobs lost between a webhook's commit and its enqueue, and a restart of the only worker.
Runs in a background thread so the worker starts consuming at once. With ``--processes N`` each
process does it: duplicate jobs are harmless (the outbox lock).
"""

from __future__ import annotations

import logging
import threading

import dramatiq
import redis
from dramatiq.middleware import Middleware

from bot.delivery import outbox
from bot.delivery.broker import JobQueue

logger = logging.getLogger(__name__)


class OutboxRecovery(Middleware):
    def __init__(self, client: redis.Redis, queue: JobQueue):
        self.client, self.queue = client, queue

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        threading.Thread(target=self._enqueue_pending, name="outbox-recovery", daemon=True).start()

    def _enqueue_pending(self) -> None:
        count = 0
        try:
            for lid in outbox.pending_learners(self.client):
                self.queue.deliver(lid)
                count += 1
        except (redis.RedisError, OSError):
            logger.exception("outbox recovery stopped after %d learners; the next boot retries", count)
            return
        logger.info("outbox recovery: enqueued deliver for %d learners with pending outboxes", count)
