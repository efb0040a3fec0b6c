"""Folding the analytics streams into the store: a consumer group shared by every worker process.

Each worker process runs one ``Consumer`` thread (``AnalyticsFolding``, a Dramatiq middleware started at
worker boot, like the timer sweeper). It reads every shard through the consumer group ``analytics`` (one
XREADGROUP per shard, pipelined: no command spans two slots, so it works on a Redis Cluster), folds what it
read in one store transaction, then XACKs and XDELs those entries (a folded event stays only in the store,
where an erasure finds it). At least once: entries read but not acknowledged by a consumer that died are
claimed (XAUTOCLAIM) after ``CLAIM_IDLE_MS``; a redelivered event counts nothing (``AnalyticsStore.fold``).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import Any

import dramatiq
import redis
from dramatiq.middleware import Middleware

from bot.analytics.store import AnalyticsStore, parse
from bot.storage.keys import ANALYTICS_GROUP, analytics_stream_key

log = logging.getLogger(__name__)

BATCH = 500  # entries per shard per read
IDLE_WAIT_SECONDS = 0.5  # nothing to fold: look again after this long
CLAIM_IDLE_MS = 60_000  # an entry a consumer read this long ago without acknowledging it: its consumer died
CLAIM_EVERY_READS = 100


class Consumer:
    """Reads the ``shards`` streams as consumer ``name`` of the group and folds them into ``store``."""

    def __init__(self, client: redis.Redis, store: AnalyticsStore, *, shards: int, name: str = "") -> None:
        self.client = client
        self.store = store
        self.streams = [analytics_stream_key(shard) for shard in range(max(shards, 1))]
        self.name = name or f"{socket.gethostname()}-{os.getpid()}-{threading.get_ident()}"
        self._groups_ready = False
        self._reads = 0

    def ensure_groups(self) -> None:
        for stream in self.streams:
            try:
                self.client.xgroup_create(stream, ANALYTICS_GROUP, id="0", mkstream=True)
            except redis.ResponseError as error:
                if "BUSYGROUP" not in str(error):
                    raise
        self._groups_ready = True

    def fold_once(self) -> int:
        """Read what is waiting on every shard (and what dead consumers left), fold it; the entries handled."""
        if not self._groups_ready:
            self.ensure_groups()
        self._reads += 1
        claim = self._reads % CLAIM_EVERY_READS == 1
        pipe = self.client.pipeline(transaction=False)
        for stream in self.streams:
            if claim:
                pipe.xautoclaim(stream, ANALYTICS_GROUP, self.name, min_idle_time=CLAIM_IDLE_MS, start_id="0-0",
                                count=BATCH)
            pipe.xreadgroup(ANALYTICS_GROUP, self.name, {stream: ">"}, count=BATCH)
        answers = iter(pipe.execute())
        read: dict[str, list[Any]] = {stream: [] for stream in self.streams}
        for stream in self.streams:
            if claim:  # [next start, [(id, fields)...], deleted ids]: what a dead consumer read and never acked
                read[stream].extend(entry for entry in next(answers)[1] if entry[1])
            for _, entries in next(answers) or []:
                read[stream].extend(entries)
        events = []
        for entries in read.values():
            for _, fields in entries:
                raw = fields.get(b"e") if fields else None
                event = parse(raw) if raw is not None else None
                if event is not None:
                    events.append(event)
        handled = sum(len(entries) for entries in read.values())
        if not handled:
            return 0
        self.store.fold(events)
        pipe = self.client.pipeline(transaction=False)
        for stream, entries in read.items():
            ids = list({entry_id for entry_id, _ in entries})
            if ids:
                pipe.xack(stream, ANALYTICS_GROUP, *ids)
                pipe.xdel(stream, *ids)
        pipe.execute()
        return handled

    def fold_all(self) -> int:
        """Fold until the streams are empty (tests, the bench, ``bottega`` tools); the entries handled."""
        total = 0
        while True:
            handled = self.fold_once()
            total += handled
            if not handled:
                return total


class FoldingThread(threading.Thread):
    def __init__(self, consumer: Consumer) -> None:
        super().__init__(name="analytics-folding", daemon=True)
        self.consumer = consumer
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                if not self.consumer.fold_once():
                    self.stopped.wait(IDLE_WAIT_SECONDS)
            except (redis.RedisError, OSError) as error:
                log.warning("analytics folding failed (%s); retrying", type(error).__name__)
                self.stopped.wait(IDLE_WAIT_SECONDS * 4)
            except Exception:  # a bug must not stop the worker; logged with its traceback, retried later
                log.exception("analytics folding crashed; retrying")
                self.stopped.wait(IDLE_WAIT_SECONDS * 4)
        self.consumer.store.close()

    def stop(self) -> None:
        self.stopped.set()


class AnalyticsFolding(Middleware):
    """Dramatiq middleware: each worker process runs one folding thread (several share the consumer group)."""

    def __init__(self, client: redis.Redis, store: AnalyticsStore, shards: int) -> None:
        self.client, self.store, self.shards = client, store, shards
        self.thread: FoldingThread | None = None

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self.thread = FoldingThread(Consumer(self.client, self.store, shards=self.shards))
        self.thread.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        if self.thread:
            self.thread.stop()
