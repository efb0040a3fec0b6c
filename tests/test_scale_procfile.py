"""Many boxes on engines that exist: the Procfile's processes on a local Redis Cluster (3 primaries + 3
replicas) with RabbitMQ, two web and two worker processes serving one learner population, a primary killed
mid-load, a slot moved mid-load.

The learners here behave as Meta does: a webhook answered anything but 200 is posted again (a few times a
second, as Meta's retries would, only faster), so a 503 during a failover or a slot move is a delay, never a
loss. What the tests hold:

* nothing acknowledged is lost: every learner finishes the same walk with the same replies, in order;
* nothing is sent twice beyond the documented in-flight window: a send whose removal from the outbox had not
  reached the replica when its primary died (or met a slot mid-move) may go again — at most one item per
  learner, and only around the fault;
* learners carry on after the replica takes over.

Never skipped: both engines exist on every development and CI machine (``tests/cluster.py`` fails loudly
when one does not answer).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator

import pytest

from bot.channels import describe
from bot.channels.whatsapp import WHATSAPP
from bot.storage.keys import LearnerPart, learner_key
from tests.cluster import LocalCluster, purge_rabbitmq
from tests.service import Phone, Service, free_port

pytestmark = pytest.mark.procfile

# Each learner's walk: onboarding, then the first steps of module 1 (what every learner sees, the same replies).
WALK = ("ciao", "Italiano", "Panificio", "Contatto clienti", "Iniziamo", "Fatto ✅")
RETRY_SECONDS = 90.0


class PatientPhone(Phone):
    """A learner whose webhooks Meta redelivers until they are answered 200 (a 503 during a failover)."""

    refused = 0

    def _post(self, payload: dict):
        import json

        raw = json.dumps(payload).encode()
        self.posted.append(raw)
        deadline = time.monotonic() + RETRY_SECONDS
        while True:
            try:
                urls = self.web_urls or [self.service.url]  # a learner's webhooks reach any box
                answer = self.service.post(raw, url=urls[len(self.posted) % len(urls)])
                if answer.status_code == 200:
                    return answer
                assert answer.status_code == 503, answer.text
            except OSError:  # a web process restarting
                pass
            PatientPhone.refused += 1
            assert time.monotonic() < deadline, "a webhook was refused for longer than Meta would retry"
            time.sleep(0.2)

    web_urls: list[str] = []

    def walk(self, steps: tuple[str, ...], after_each: Callable[[int], None] = lambda turn: None,
             final: str = "") -> None:
        """Walk ``steps`` (the first typed, the others tapped), each once the previous turn offers it; the walk
        ends when ``final`` (the last text of the reference walk) has arrived. A message sent again (the
        in-flight window around a fault) cannot be taken for the next turn: the next step is waited for."""
        for turn, step in enumerate(steps):
            if turn == 0:
                self.send(step)
            else:
                self.tap(step)
            coming = steps[turn + 1] if turn + 1 < len(steps) else None
            self.wait_offered(coming, final)
            after_each(turn)

    def wait_offered(self, label: str | None, final: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            shown = [describe(self.channel, call["body"]) for call in self.calls()]
            with_options = [s for s in shown if s.options]
            if label is None and final and any(s.text == final for s in shown) and self.outbox_empty():
                return
            if label is not None and with_options and any(t.startswith(label) for _, t in with_options[-1].options):
                self.options = with_options[-1].options
                return
            time.sleep(0.05)
        client = self.service.redis_client()
        lid = f"wa:{self.user}"
        state = {part.value: client.type(learner_key(lid, part)) for part in LearnerPart}
        waiting = client.lrange(learner_key(lid, LearnerPart.OUTBOX), 0, -1)
        lock_ttl = client.pttl(learner_key(lid, LearnerPart.SEND_LOCK))
        wake = client.get(learner_key(lid, LearnerPart.WAKE))
        step = client.hget(learner_key(lid, LearnerPart.PROGRESS), "step")
        seen = [(s.text[:40], [t for _, t in s.options]) for s in shown[-6:]]
        report = (f"{self.user}: {label or final!r} not offered within {timeout}s; last shown {seen}; "
                  f"outbox {len(waiting)} lock_ttl {lock_ttl} wake {wake} step {step} keys {state}")
        (self.service.workdir / f"stuck-{self.user}.txt").write_text(report + "\n" + "\n".join(
            f"{call['at']:.3f} {describe(self.channel, call['body']).text[:50]!r}" for call in self.calls()))
        raise AssertionError(report)

    def texts(self) -> list[str]:
        """What the phone showed (read receipts and bodies without text or options left out)."""
        shown = [describe(self.channel, call["body"]) for call in self.calls()]
        return [s.text for s in shown if s.text or s.options]


def reference_walk(service: Service) -> list[str]:
    """One learner walks WALK alone first: what every learner must see, in order."""
    phone = Phone(service, WHATSAPP, "393330000999")
    phone.send(WALK[0])
    texts = [shown.text for shown in phone.wait_turn(timeout=60)]
    for step in WALK[1:]:
        phone.tap(step)
        texts += [shown.text for shown in phone.wait_turn(timeout=60)]
    return texts


def walk_all(phones: list[PatientPhone], reference: list[str],
             after_each: Callable[[int], None] = lambda turn: None) -> None:
    """Every phone walks WALK in its own thread, to the reference's last text."""
    errors: list[BaseException] = []

    def run(phone: PatientPhone) -> None:
        try:
            phone.walk(WALK, after_each, final=reference[-1])
        except BaseException as error:  # reported below, with the learner
            errors.append(error)

    threads = [threading.Thread(target=run, args=(phone,)) for phone in phones]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert not errors, errors


def assert_nothing_lost_and_duplicates_bounded(phones: list[PatientPhone], reference: list[str],
                                               allowed_per_learner: int) -> int:
    """Every learner saw the reference walk's texts, in order; extra copies are counted and bounded."""
    duplicates = 0
    for phone in phones:
        texts = phone.texts()
        assert list(dict.fromkeys(texts)) == list(dict.fromkeys(reference)), phone.user
        extra = sum(count - 1 for count in Counter(texts).values())
        assert extra <= allowed_per_learner, (phone.user, Counter(texts))
        duplicates += extra
        progress = phone.service.redis_client().hgetall(learner_key(f"wa:{phone.user}", LearnerPart.PROGRESS))
        assert (progress[b"lang"], progress[b"business"]) == (b"it", b"bakery")
    return duplicates


@pytest.fixture
def own_cluster(tmp_path_factory) -> Iterator[LocalCluster]:
    """A cluster of this test's own: it loses a node."""
    cluster = LocalCluster(tmp_path_factory.mktemp("own-cluster"))
    try:
        yield cluster
    finally:
        cluster.stop()


def scale_service(tmp_path, cluster: LocalCluster, **env: str) -> Service:
    purge_rabbitmq()
    # short send timeouts: a sender whose lock sat on a dead primary is replaced within seconds
    # one public address for every box, as behind one load balancer (links in replies name it)
    return Service(tmp_path, cluster=cluster, extra_env={"SEND_TIMEOUT_SECONDS": "2", "SEND_LOCK_SECONDS": "5",
                                                         "LOG_LEVEL": "DEBUG", "PUBLIC_BASE_URL": "https://bottega.test",
                                                         **env})


def test_two_web_and_two_worker_processes_on_separate_addresses_serve_one_learner_population(tmp_path,
                                                                                            redis_cluster):
    redis_cluster.flush()
    service = scale_service(tmp_path, redis_cluster)
    try:
        web_a, web_b = f"http://127.0.0.2:{free_port()}", f"http://127.0.0.3:{free_port()}"
        for name, url, box in (("web", web_a, "a"), ("web-b", web_b, "b")):
            host, port = url.removeprefix("http://").split(":")
            service.start_as(name, "web", BIND_HOST=host, PORT=port, BOTTEGA_VAR_DIR=str(tmp_path / f"box-{box}"))
            service.wait_web(url=url)
        for name, box in (("worker", "a"), ("worker-b", "b")):
            service.start_as(name, "worker", BOTTEGA_VAR_DIR=str(tmp_path / f"box-{box}"))
        service.url = web_a
        reference = reference_walk(service)
        phones = []
        for n in range(8):
            phone = PatientPhone(service, WHATSAPP, f"3933300005{n:02d}")
            phone.web_urls = [web_a, web_b] if n % 2 else [web_b, web_a]  # turn by turn, box by box
            phones.append(phone)
        walk_all(phones, reference)
        assert assert_nothing_lost_and_duplicates_bounded(phones, reference, allowed_per_learner=0) == 0
        for log in ("web.log", "web-b.log"):  # both boxes took webhooks, both sent
            assert '"message": "webhook whatsapp:' in (tmp_path / log).read_text()
        for log in ("worker.log", "worker-b.log"):
            assert "graph send whatsapp: sent" in (tmp_path / log).read_text()
    finally:
        service.close()


def test_a_primary_killed_mid_load_loses_no_acknowledged_message_and_learners_carry_on(tmp_path, own_cluster):
    service = scale_service(tmp_path, own_cluster, REDIS_WAIT_REPLICAS="1", REDIS_WAIT_TIMEOUT_MS="500")
    try:
        service.start()
        reference = reference_walk(service)
        phones = [PatientPhone(service, WHATSAPP, f"3933300006{n:02d}") for n in range(8)]
        killed = threading.Event()
        lock = threading.Lock()
        done = [0]

        def kill_mid_load(turn: int) -> None:
            with lock:
                done[0] += 1
                if done[0] == len(phones) * 2 and not killed.is_set():  # a third of the way through
                    victim = own_cluster.node_of_key(learner_key(f"wa:{phones[0].user}", LearnerPart.PROGRESS))
                    heir = own_cluster.replica_of(victim)
                    own_cluster.kill(victim)
                    killed.set()
                    threading.Thread(target=rejoin, args=(victim, heir), daemon=True).start()

        def rejoin(victim, heir) -> None:  # its replica takes over; it comes back as a replica (WAIT needs one)
            own_cluster.wait_promoted(heir)
            own_cluster.restart(victim)

        walk_all(phones, reference, kill_mid_load)
        assert killed.is_set()
        own_cluster.wait_ok()
        duplicates = assert_nothing_lost_and_duplicates_bounded(phones, reference, allowed_per_learner=1)
        assert duplicates <= len(phones)
        # the promoted replica serves: one more turn for everyone, after the failover
        for phone in phones:
            before = len(phone.calls())
            phone.send("menu")
            deadline = time.monotonic() + 120
            while len(phone.calls()) == before or not phone.outbox_empty():
                assert time.monotonic() < deadline, f"{phone.user} got no answer after the failover"
                time.sleep(0.1)
    finally:
        service.close()


def test_moving_slots_mid_load_loses_nothing(tmp_path, redis_cluster):
    redis_cluster.flush()
    service = scale_service(tmp_path, redis_cluster)
    try:
        service.start()
        reference = reference_walk(service)
        phones = [PatientPhone(service, WHATSAPP, f"3933300007{n:02d}") for n in range(6)]
        moved = threading.Event()
        lock = threading.Lock()
        done = [0]

        def move_mid_load(turn: int) -> None:
            with lock:
                done[0] += 1
                if done[0] == len(phones) * 2 and not moved.is_set():
                    client = redis_cluster.client()
                    for phone in phones[:3]:  # these learners' slots go to another primary, keys and all
                        slot = client.keyslot(learner_key(f"wa:{phone.user}", LearnerPart.PROGRESS))
                        source = redis_cluster.node_of_slot(slot)
                        target = next(node for node in redis_cluster.primaries() if node.port != source.port)
                        redis_cluster.move_slot(slot, target)
                    client.close()
                    moved.set()

        walk_all(phones, reference, move_mid_load)
        assert moved.is_set()
        assert_nothing_lost_and_duplicates_bounded(phones, reference, allowed_per_learner=1)
    finally:
        service.close()
