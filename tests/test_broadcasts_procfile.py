"""A broadcast through the real Procfile processes (gunicorn web + Dramatiq worker), the fake Graph API
enforcing the number's throughput (130429) and the pair rate (131056), and the shared test clock.

The worker is SIGKILLed mid-broadcast and started again: the broadcast finishes from its cursor with every
recipient messaged exactly once (counted at the fake Graph API), the learner who wrote ``stop`` gets
nothing, learners who chat meanwhile get their replies, and the fake refused nothing. On both engines: one Redis
server with Dramatiq's Redis broker, and a Redis Cluster (3 primaries + 3 replicas) with RabbitMQ (issue 13 §3).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator

import pytest
import redis

from bot import composition
from bot.broadcasts.audience import Query
from bot.broadcasts.service import Broadcasts
from bot.delivery.broker import JobQueue, build_broker
from bot.storage.keys import LearnerPart, learner_key
from bot.storage.releases import Registry
from bot.tutor.progress import Progress
from tests.broadcast_harness import learners_with_one_stopped, messages_per_user, running_tomorrow_at_ten
from tests.cluster import ENGINES, engine_cluster
from tests.service import Phone, Service

pytestmark = pytest.mark.procfile

RATE = 6  # messages per second from the number: slow enough to kill the worker mid-broadcast
LEARNERS = 24
BROADCAST_TEXT = "modulo nuovo"
MENU_TEXT = "Ecco i moduli del corso"


@pytest.fixture(params=ENGINES)
def service(request, tmp_path) -> Iterator[Service]:
    """On both engines: one Redis server with Dramatiq's Redis broker, a Redis Cluster with RabbitMQ."""
    svc = Service(tmp_path, env="test", cluster=engine_cluster(request), extra_env={
        "WHATSAPP_MESSAGES_PER_SECOND": str(RATE), "BROADCAST_LOOKAHEAD_SECONDS": "1",
        "SEND_LOCK_SECONDS": "3", "SEND_TIMEOUT_SECONDS": "1"})
    svc.graph.configure(throughput_per_second=RATE, throughput_burst_seconds=1.0, pair_burst=10, pair_per_seconds=6.0)
    with running_tomorrow_at_ten(svc):
        yield svc


@pytest.fixture
def broadcasts(service: Service) -> Iterator[Callable[[], Broadcasts]]:
    """Builds the admin's side (as `bottega broadcast` does) once the course is live; its broker's connection
    (RabbitMQ's, on the cluster) and its Redis client are closed after the test."""
    made: list[tuple[JobQueue, redis.Redis]] = []

    def build() -> Broadcasts:
        client = service.redis_client()
        queue = JobQueue(build_broker(service.settings, service.settings.redis_url), service.settings)
        made.append((queue, client))
        registry = Registry.serving_live(client, policy=composition.proactive_policy(service.settings))
        return Broadcasts.build(service.settings, client, registry, queue=queue)

    yield build
    for queue, client in made:
        queue.broker.close()
        client.close()


def broadcast_counts(service: Service) -> dict[str, int]:
    return messages_per_user(service, BROADCAST_TEXT)


def opted_out(service: Service, phone: Phone) -> bool:
    client = service.redis_client()
    try:
        progress = Progress.from_hash(client.hgetall(learner_key(f"wa:{phone.user}", LearnerPart.PROGRESS)))
    finally:
        client.close()
    return progress is not None and progress.opted_out


def wait(condition, what: str, timeout: float = 120.0, state=lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError(f"{what} within {timeout}s {state()}")


def test_a_killed_worker_finishes_the_broadcast_exactly_once(service: Service, broadcasts):
    phones = learners_with_one_stopped(service, "39333200", LEARNERS)
    stopper = phones[-1]
    wait(lambda: opted_out(service, stopper), "the learner who wrote stop opted out")

    admin = broadcasts()
    plan = admin.dry_run(Query(), "news")
    assert len(plan.recipients) == LEARNERS - 1 and plan.unreachable == {"opted out": 1}
    broadcast_id = admin.start(Query(), "news", plan=plan)

    chatters = phones[:2]
    for phone in chatters:
        phone.send("menu")
    # kill the worker between two sends: right after every message the fake answered was also recorded as
    # sent (popped from its outbox). A kill during a call would send that one item again: the outbox is
    # at-least-once for the call in flight (bot.delivery.outbox), which this test does not measure.
    wait(lambda: sum(broadcast_counts(service).values()) >= 6, "the broadcast under way")
    seen = sum(broadcast_counts(service).values())
    wait(lambda: sum(broadcast_counts(service).values()) > seen, "one more broadcast message")
    wait(lambda: admin.progress(broadcast_id).sent >= sum(broadcast_counts(service).values()),
         "the messages at the fake recorded as sent")
    service.stop("worker", sig=signal.SIGKILL)
    killed_at = sum(broadcast_counts(service).values())
    assert killed_at < LEARNERS - 1, "the broadcast finished before the kill: lower RATE"
    service.start("worker")

    wait(lambda: admin.progress(broadcast_id).status == "done", "the broadcast done after the restart",
         state=lambda: (admin.progress(broadcast_id), broadcast_counts(service), service.graph.stats()))
    counts = broadcast_counts(service)
    assert sorted(counts) == sorted(phone.user for phone in phones[:-1])
    assert set(counts.values()) == {1}, counts  # exactly once each, across the kill
    assert stopper.count(BROADCAST_TEXT) == 0
    for phone in chatters:
        phone.wait_for(MENU_TEXT)
    progress = admin.progress(broadcast_id)
    assert progress.sent == LEARNERS - 1 and progress.failed == 0 and progress.skipped == 0
    assert service.graph.stats()["rejected"] == {}  # no 130429, no 131056
