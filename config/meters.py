"""The metrics every process counts (prometheus_client; see ``config.metrics`` for the multiprocess set-up).

Names follow Prometheus' conventions (``_total`` is added to counters, ``_seconds`` is the unit). Labels
are bounded: results, event kinds, channels and Meta's error codes — never a learner, a phone number or
a text. ``exposition`` renders the box's values (every process's files, plus ``extra`` collectors that
read shared state when scraped).
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from config.settings import exported_metrics_dir

__all__ = ["CONTENT_TYPE_LATEST", "exposition"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

WEBHOOKS = Counter("bottega_webhooks", "Webhook POSTs by answer: ok (200), forged (403), malformed (400), "
                   "too_large (413), unavailable (503: Redis or the cluster could not take it; Meta redelivers)",
                   ["result"])
EVENTS = Counter("bottega_events", "Inbound and clock events by how they were handled", ["handled"])
TURN_SECONDS = Histogram("bottega_turn_seconds", "One event's turn: load, step, commit, wake the sender",
                         ["kind"], buckets=_LATENCY_BUCKETS)
OUTBOX_LENGTH = Histogram("bottega_outbox_length", "A learner's outbox length right after a commit (items "
                          "waiting to be sent)", buckets=(0, 1, 2, 3, 5, 8, 13, 21, 34, 50))
SENDS = Counter("bottega_sends", "Graph API calls by channel, result (sent, transient, permanent) and Meta's "
                "error code (empty when sent; negative: a local code, bot.delivery.graph.LocalCode)",
                ["channel", "result", "code"])
SEND_SECONDS = Histogram("bottega_send_seconds", "One Graph API call, answer or error", ["channel"],
                         buckets=_LATENCY_BUCKETS)
SEND_RETRIES = Counter("bottega_send_retries", "Sends that failed transiently and will be retried with backoff",
                       ["channel", "code"])
DELIVER_AGAIN = Counter("bottega_deliver_again", "deliver jobs scheduled again: backoff or pacing (later), or "
                        "another sender held the learner's lock (locked)", ["reason"])
JOBS = Counter("bottega_jobs", "Worker jobs by actor and result (ok, failed: Dramatiq retries it)",
               ["actor", "result"])
TIMERS_FIRED = Counter("bottega_timers_fired", "Learners' clock events fired by the sweeper")
TIMER_LATENESS = Histogram("bottega_timer_lateness_seconds", "How late a clock event fired after it was due",
                           buckets=(0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0))


def exposition(extra: Iterable[Collector] = ()) -> bytes:
    """The Prometheus text format of the box (every process's files in multiprocess mode), plus ``extra``."""
    registry = CollectorRegistry()
    path = exported_metrics_dir()
    if path:
        MultiProcessCollector(registry, path=path)
    else:  # one process (tests, `bottega chat`): its own values
        registry.register(_Everything(REGISTRY))
    for collector in extra:
        registry.register(collector)
    return generate_latest(registry)


class _Everything(Collector):
    """The process's default registry as one collector."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterable[Metric]:
        return self.registry.collect()
