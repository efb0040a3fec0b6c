"""Retention: the worker erases learners inactive for ``RETENTION_MONTHS`` (default 24), warning them first.

``sweep`` looks at every learner record (a SCAN over progress hashes, at most once per
``RETENTION_SWEEP_SECONDS`` across all worker processes: a ``SET NX EX`` claim). A learner's activity is
their last own message on any linked channel (or when the record was created): past the retention period
less ``RETENTION_WARNING_DAYS`` they get one ``ret:warn:<days>`` clock event through the dispatcher, which
says the warning where a window allows it (``bot.tutor.retention``; exactly once: the event is deduplicated
like any clock event); past the retention period they are erased (``rights.erase_learner``: every holder,
the certificate revoked). A month is 30.44 days.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

import dramatiq
import redis
from dramatiq.middleware import Middleware

from bot.delivery.timers import timer_event
from bot.dispatch import Dispatcher
from bot.model.privacy import learner_ref
from bot.privacy.rights import erase_learner
from bot.storage.encoding import text
from bot.storage.keys import LearnerPart, global_key, learner_id_of, learner_key_pattern
from bot.tutor import retention
from bot.tutor.progress import Progress
from config.settings import Settings

log = logging.getLogger(__name__)

DAY_MS = 24 * 3600 * 1000
MONTH_MS = int(30.44 * DAY_MS)
SWEEP_CLAIM_KEY = global_key("retention:sweep")  # one sweep per interval across every worker process
_FIELDS = ("learner_id", "channel", "user_id", "created_at_ms", "last_inbound_at_ms", "conversations",
           "retention_warned_at_ms")


@dataclass(frozen=True, kw_only=True, slots=True)
class Swept:
    warned: int = 0
    erased: int = 0


def rules(settings: Settings) -> tuple[int, int]:
    """(retention ms, warning ms) from the settings."""
    return settings.retention_months * MONTH_MS, settings.retention_warning_days * DAY_MS


def last_active_ms(progress: Progress) -> int:
    seen = [progress.last_inbound_at_ms, *(c.last_inbound_at_ms for c in progress.conversations)]
    return max([*seen, progress.created_at_ms])


def sweep(client: redis.Redis, dispatcher: Dispatcher, now_ms: int, *, retention_ms: int, warning_ms: int,
          erase: Callable[[str], object] | None = None) -> Swept:
    """Warn or erase every learner idle long enough; ``erase`` (the worker's: Redis and analytics) or
    ``erase_learner``."""
    warned = erased = 0
    days = max(warning_ms // DAY_MS, 1)
    for key in client.scan_iter(match=learner_key_pattern(LearnerPart.PROGRESS), count=500):
        learner_id = learner_id_of(key)
        values = client.hmget(key, list(_FIELDS))
        progress = Progress.from_hash({name: text(value) for name, value in zip(_FIELDS, values, strict=True)
                                       if value is not None})
        if progress is None:
            continue
        idle = now_ms - last_active_ms(progress)
        if idle >= retention_ms:
            if erase is not None:
                erase(learner_id)
            else:
                erase_learner(client, learner_id, now_ms=now_ms)
            erased += 1
            log.info("learner %s erased after %d days without a message", learner_ref(learner_id), idle // DAY_MS)
        elif idle >= retention_ms - warning_ms and not progress.retention_warned_at_ms:
            dispatcher.handle(timer_event(learner_id, f"{retention.TIMER_PREFIX}:{days}", now_ms), now_ms=now_ms)
            warned += 1
    return Swept(warned=warned, erased=erased)


class RetentionSweep(Middleware):
    """Dramatiq middleware: each worker process runs a thread that sweeps, claiming each interval once."""

    def __init__(self, client: redis.Redis, settings: Settings, dispatcher: Callable[[], Dispatcher], *,
                 erase: Callable[[str], object] | None = None):
        self.client, self.settings, self.dispatcher, self.erase = client, settings, dispatcher, erase
        self.stopped = threading.Event()

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        threading.Thread(target=self._run, name="retention-sweep", daemon=True).start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self.stopped.set()

    def _run(self) -> None:
        interval = max(self.settings.retention_sweep_seconds, 1.0)
        retention_ms, warning_ms = rules(self.settings)
        while not self.stopped.wait(interval):
            try:
                if not self.client.set(SWEEP_CLAIM_KEY, "1", nx=True, px=int(interval * 1000)):
                    continue
                dispatcher = self.dispatcher()
                swept = sweep(self.client, dispatcher, dispatcher.clock(), retention_ms=retention_ms,
                              warning_ms=warning_ms, erase=self.erase)
                if swept.warned or swept.erased:
                    log.info("retention: %d warned, %d erased", swept.warned, swept.erased)
            except (redis.RedisError, OSError) as error:
                log.warning("retention sweep failed (%s); retrying", type(error).__name__)
            except Exception:  # a bug must not stop the sweep for good; logged with its traceback
                log.exception("retention sweep crashed; retrying")
