"""The one place the parts are wired together: Redis, the store, the course registry, the send queue,
the dispatcher and the Graph client — for the web app, the worker and the terminal chat alike.

Nothing here runs at import time: each function builds what it names from a ``Settings``. Production
processes need ``REDIS_URL`` (``make run`` starts an embedded Redis and sets it for them); the dev tools
that may start one themselves do so in ``bot.dev``, never here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import redis
from redis.cluster import RedisCluster

from bot.analytics.recording import Recorder
from bot.analytics.store import AnalyticsStore
from bot.delivery.broker import CLUSTER_SCHEMES, JobQueue, build_broker
from bot.delivery.graph import GraphClient
from bot.delivery.metered import MeteredGraphClient
from bot.dispatch import Dispatcher, EngineSource, Notify
from bot.flows.loader import course_files
from bot.model.errors import ConfigError
from bot.proactive.policy import Policy, Prices
from bot.storage.clock import Clock, SharedTestClock, SystemClock
from bot.storage.releases import Registry
from bot.storage.store import Store
from config.settings import Settings

REDIS_SOCKET_TIMEOUT_SECONDS = 5.0  # every command we send is quick; a slower answer means Redis is in trouble
REDIS_CONNECT_TIMEOUT_SECONDS = 2.0
REDIS_HEALTH_CHECK_SECONDS = 30  # ping an idle pooled connection before reusing it after this long


def redis_url(settings: Settings) -> str:
    """``REDIS_URL``; a production process refuses to start without one, saying how to set it."""
    if not settings.redis_url:
        raise ConfigError("REDIS_URL is not set: set REDIS_URL=redis://host:6379/0 (every process uses the same "
                          "Redis); `make run` starts an embedded Redis and sets REDIS_URL for its processes")
    return settings.redis_url


def redis_client(settings: Settings) -> redis.Redis:
    """A client (a thread-safe connection pool) for ``REDIS_URL``; connects on first use.

    ``redis+cluster://host:port`` (or ``rediss+cluster://``) names a Redis Cluster by any of its nodes: the
    client learns the slot map from it and follows MOVED/ASK redirects (``bot.storage.store`` keeps every
    script on one slot). The scheme, not a second switch, so every tool that reads REDIS_URL (web,
    worker, ``bottega`` commands, tests) knows what it talks to from the one setting.
    """
    url = redis_url(settings)
    if url.startswith(CLUSTER_SCHEMES):
        return cluster_client(url)
    return redis.Redis.from_url(url, socket_timeout=REDIS_SOCKET_TIMEOUT_SECONDS,
                                socket_connect_timeout=REDIS_CONNECT_TIMEOUT_SECONDS,
                                health_check_interval=REDIS_HEALTH_CHECK_SECONDS)


def cluster_client(url: str) -> redis.Redis:
    """A Redis Cluster client for ``redis+cluster://host:port`` (typed as ``redis.Redis``: same commands)."""
    plain = url.replace("+cluster://", "://", 1)
    client = RedisCluster.from_url(plain, socket_timeout=REDIS_SOCKET_TIMEOUT_SECONDS,
                                   socket_connect_timeout=REDIS_CONNECT_TIMEOUT_SECONDS,
                                   health_check_interval=REDIS_HEALTH_CHECK_SECONDS)
    return cast(redis.Redis, client)


def clock(settings: Settings, client: redis.Redis) -> Clock:
    """The real clock in production; in dev and test the shared one tests and `bottega clock` move."""
    return SharedTestClock(client) if settings.movable_clock else SystemClock()


def store(settings: Settings, client: redis.Redis) -> Store:
    return Store(client, dedup_ttl_seconds=settings.dedup_ttl_seconds, dedup_max_ids=settings.dedup_max_ids_per_learner,
                 outbox_max_items=settings.outbox_max_items, wait_replicas=settings.redis_wait_replicas,
                 wait_timeout_ms=settings.redis_wait_timeout_ms)


def proactive_policy(settings: Settings) -> Policy:
    """The rules of writing first (quiet hours, the daily cap, reminders, prices), from the settings."""
    quiet_start, quiet_end = Policy.parse_quiet(settings.quiet_hours)
    return Policy(quiet_start_minute=quiet_start, quiet_end_minute=quiet_end,
                  max_per_day=settings.proactive_max_per_day, stop_after_ignored=settings.reminder_stop_after_ignored,
                  shift_max_ms=settings.reminder_shift_max_minutes * 60_000,
                  margin_ms=settings.window_margin_minutes * 60_000, default_time_zone=settings.default_time_zone,
                  prices=Prices.parse(settings.whatsapp_prices, settings.price_currency),
                  handover_answer_hours=settings.handover_answer_hours, support_contact=settings.support_contact)


def registry(settings: Settings, client: redis.Redis) -> Registry:
    """The live course release (the flows folder is published first if nothing ever was)."""
    return Registry.open(client, course_files(settings.flows_dir), folder=str(settings.flows_dir),
                         public_base_url=settings.public_base_url, policy=proactive_policy(settings))


def job_queue(settings: Settings) -> JobQueue:
    return JobQueue(build_broker(settings, redis_url(settings)), settings)


def dispatcher(settings: Settings, client: redis.Redis, engines: EngineSource, *, notify: Notify,
               queue: JobQueue | None = None, exports: Callable[[str, str], None] | None = None,
               erase: Callable[[str], None] | None = None) -> Dispatcher:
    """The dispatcher on ``client``; with a ``queue``, a big batch's tail is handed to the worker, and a learner
    who asked to be erased is erased by it (after their goodbye). ``exports``: stores a learner's data export
    (``bot.privacy.chat.store_export``, wired by the processes above that layer)."""
    if erase is None and queue is not None:
        erase = queue.erase_learner
    return Dispatcher(store=store(settings, client), engines=engines, notify=notify,
                      commit_retries=settings.commit_retries, defer=queue.handle_events if queue else None,
                      inline_events_max=settings.inline_events_max, clock=clock(settings, client),
                      exports=exports, erase=erase, recording=recorder(settings))


def recorder(settings: Settings) -> Recorder | None:
    """Learning analytics' event builder (``bot.analytics``), or None with ``ANALYTICS=0``."""
    if not settings.analytics_enabled:
        return None
    return Recorder(shards=settings.analytics_shards, stream_max=settings.analytics_stream_max)


def analytics_store(settings: Settings) -> AnalyticsStore:
    """``ANALYTICS_URL`` (PostgreSQL), or SQLite under the var folder."""
    return AnalyticsStore.for_settings(settings.analytics_url, settings.var_dir)


def graph_client(settings: Settings) -> GraphClient:
    """One Graph API client (a keep-alive urllib3 pool): one per thread; its calls are counted (metrics)."""
    return MeteredGraphClient(settings)
