"""``/metrics`` (Prometheus) and ``/readyz`` (Redis and the broker answer) on the web app.

``/metrics`` shows the box's counters (every web and worker process of the box: ``config.metrics``) plus
what is a fact of the shared state, read when scraped: the clock events due now and not yet fired
(``bottega_timers_due``: should stay near 0; growing means the sweepers are down or behind) and the send
queue's depth (``bottega_broker_queue_depth``). ``/readyz`` is what a load balancer asks before it sends
webhooks to this process: 503 while Redis or the broker does not answer.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import redis
from flask import Flask, Response
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from bot.delivery.broker import JobQueue, queue_depth
from bot.delivery.timers import timers_due
from bot.storage.clock import Clock
from config import meters

log = logging.getLogger(__name__)


class SharedState(Collector):
    """Gauges read from Redis and the broker at scrape time (never from a process's memory)."""

    def __init__(self, client: redis.Redis, queue: JobQueue | None, clock: Clock) -> None:
        self.client, self.queue, self.clock = client, queue, clock

    def collect(self) -> Iterable[Metric]:
        due = GaugeMetricFamily("bottega_timers_due", "Learners' clock events due now and not fired yet")
        try:
            due.add_metric([], timers_due(self.client, self.clock()))
            yield due
        except (redis.RedisError, OSError) as error:
            log.warning("metrics: timers due not read (%s)", type(error).__name__)
        if self.queue is None:
            return
        depth = GaugeMetricFamily("bottega_broker_queue_depth", "Jobs waiting in the send queue: ready to run "
                                  "now, or delayed (scheduled retries and paced sends); queue: default (conversations) "
                                  "or bulk (broadcasts)", labels=["queue", "state"])
        try:
            for (queue, state), count in queue_depth(self.queue.broker).items():
                depth.add_metric([queue, state], count)
            yield depth
        except Exception as error:  # the broker's client raises its own errors (redis, pika)
            log.warning("metrics: broker queue depth not read (%s)", type(error).__name__)


def install(app: Flask, *, client: redis.Redis, queue: JobQueue | None, clock: Clock) -> None:
    shared = SharedState(client, queue, clock)

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(meters.exposition([shared]), 200, content_type=meters.CONTENT_TYPE_LATEST)

    @app.get("/readyz")
    def ready() -> Response:
        """Ready for webhooks: Redis answers, and so does the broker (503 otherwise)."""
        try:
            client.ping()
        except (redis.RedisError, OSError) as error:
            return Response(f"redis unavailable ({type(error).__name__})", 503, mimetype="text/plain")
        if queue is not None:
            try:
                queue_depth(queue.broker)
            except Exception as error:  # redis or pika errors, by broker
                return Response(f"broker unavailable ({type(error).__name__})", 503, mimetype="text/plain")
        return Response("ready", 200, mimetype="text/plain")
