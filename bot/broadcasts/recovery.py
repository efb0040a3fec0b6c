"""``BroadcastRecovery``: when a worker boots, every running broadcast goes on from its cursor.

A broadcast whose step chain died with a killed worker would otherwise wait for Dramatiq to redeliver
that worker's job (``bot.delivery.broker``: ~10 s); a restart of the only worker needs this. The new
chain's token stops any older chain at its next step (``bot.broadcasts.service``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import dramatiq
import redis
from dramatiq.middleware import Middleware

from bot.broadcasts.service import Broadcasts

logger = logging.getLogger(__name__)


class BroadcastRecovery(Middleware):

    def __init__(self, service: Callable[[], Broadcasts]):
        self.service = service

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        threading.Thread(target=self._recover, name="broadcast-recovery", daemon=True).start()

    def _recover(self) -> None:
        try:
            running = self.service().recover()
        except (redis.RedisError, OSError):
            logger.exception("broadcast recovery failed; the next boot (or `bottega broadcast resume`) retries")
            return
        if running:
            logger.info("broadcast recovery: %d running broadcasts go on from their cursors", len(running))
