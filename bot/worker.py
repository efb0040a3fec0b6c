"""The Procfile's worker process: ``dramatiq bot.worker --processes 2 --threads 8``.

Dramatiq's command line imports this module in every worker process. It reads the settings, prepares the
box's metrics folder (``config.metrics``), builds
the broker on ``REDIS_URL`` (the send queue in the next database, or ``BROKER_REDIS_URL``) and makes it
Dramatiq's, adds the boot-time middleware (outbox recovery, the timer sweeper), then imports the
actors — they bind to the broker set here — and hands them this process's resources. Nothing
connects until the worker starts consuming.
"""

from __future__ import annotations

from config import metrics
from config.settings import Settings

settings = Settings.from_env()
metrics.prepare(settings.metrics_path)  # before prometheus_client is imported (config.metrics)

import os  # noqa: E402 - everything below may import prometheus_client
import threading  # noqa: E402

import dramatiq  # noqa: E402

from bot import composition  # noqa: E402
from bot.analytics.consumer import AnalyticsFolding  # noqa: E402
from bot.analytics.forwarding import Forwarder  # noqa: E402
from bot.broadcasts.recovery import BroadcastRecovery  # noqa: E402
from bot.broadcasts.service import Broadcasts  # noqa: E402
from bot.delivery import outbox  # noqa: E402
from bot.delivery.broker import (  # noqa: E402
    JobQueue,
    MetricsExposition,
    RequestIdMiddleware,
    WakePrecision,
    build_broker,
)
from bot.delivery.recovery import OutboxRecovery  # noqa: E402
from bot.delivery.throughput import Throughput  # noqa: E402
from bot.delivery.timers import SWEEP_IDLE_MAX_SECONDS, SWEEP_INTERVAL_SECONDS, TimerClock  # noqa: E402
from bot.dispatch import Dispatcher  # noqa: E402
from bot.privacy import analytics_holder, erase_learner, register  # noqa: E402
from bot.privacy.chat import store_export  # noqa: E402
from bot.privacy.retention import RetentionSweep  # noqa: E402
from config.logs import configure_logging  # noqa: E402

# LOG_LEVEL and LOG_FORMAT for the worker too (Dramatiq's CLI set up its handlers first)
configure_logging(settings.log_level, settings.log_format)
outbox.check_timing(settings)
if settings.worker_nice:  # the webhook's acks before the worker's sends when both want the box's cores
    os.nice(settings.worker_nice)
client = composition.redis_client(settings)
broker = build_broker(settings, composition.redis_url(settings))
queue = JobQueue(broker, settings)
_built: list[Dispatcher] = []
_broadcasts: list[Broadcasts] = []
_lock = threading.Lock()


def dispatcher() -> Dispatcher:
    """This process's dispatcher, built once on first use (the course is loaded then, not at import)."""
    with _lock:
        if not _built:
            _built.append(composition.dispatcher(settings, client, composition.registry(settings, client),
                                                 notify=queue.deliver, erase=queue.erase_learner,
                                                 exports=lambda lid, token: store_export(client, lid, token)))
        return _built[0]


def _erase(learner_id: str) -> None:
    """Erase a learner who asked for it (or was idle past retention): every holder, the analytics store's too
    (registered below, as the web app and the CLI do)."""
    erase_learner(client, learner_id, now_ms=composition.clock(settings, client)())


def broadcasts() -> Broadcasts:
    """This process's broadcasts service (bot.broadcasts), built once on first use."""
    built = dispatcher()
    with _lock:
        if not _broadcasts:
            _broadcasts.append(Broadcasts.build(settings, client, built.engines, queue=queue, dispatcher=built))
        return _broadcasts[0]


broker.add_middleware(RequestIdMiddleware())
broker.add_middleware(WakePrecision(settings.worker_wake_ms))
broker.add_middleware(OutboxRecovery(client, queue))
broker.add_middleware(BroadcastRecovery(broadcasts))
if settings.metrics_port:  # a worker-only box: its /metrics (the first worker process to bind the port serves it)
    broker.add_middleware(MetricsExposition(settings.metrics_port))
# idle back-off on the real clock only: the dev and test clock can jump ahead at any moment
broker.add_middleware(TimerClock(client, dispatcher, idle_max_seconds=SWEEP_INTERVAL_SECONDS if settings.movable_clock
                                 else SWEEP_IDLE_MAX_SECONDS))
broker.add_middleware(RetentionSweep(client, settings, dispatcher, erase=_erase))
recorder = composition.recorder(settings)
if recorder is not None:  # learning analytics: fold the event streams into the store (bot.analytics)
    register(analytics_holder(settings))  # an erase by the worker (asked in the chat, retention) reaches it too
    broker.add_middleware(AnalyticsFolding(client, composition.analytics_store(settings), settings.analytics_shards))
dramatiq.set_broker(broker)

from bot.broadcasts import actors as broadcast_actors  # noqa: E402 - binds to the broker set above
from bot.console import actors as console_actors  # noqa: E402 - binds to the broker set above
from bot.console.job_runner import WorkerSide  # noqa: E402
from bot.delivery import actors  # noqa: E402 - the actors bind to the broker set just above

actors.configure(actors.WorkerContext(settings=settings, client=client, queue=queue, dispatcher=dispatcher,
                                      graph_client=lambda: composition.graph_client(settings),
                                      clock=composition.clock(settings, client),
                                      erase=_erase,
                                      throughput=Throughput.from_settings(client, settings),
                                      forward=Forwarder(client, recorder).forward if recorder else None))
broadcast_actors.configure(broadcasts)
console_actors.configure(WorkerSide(client=client, broadcasts=broadcasts, dispatcher=dispatcher))
