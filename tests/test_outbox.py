"""outbox.drain on a real Redis against the fake Graph API: order, exactly-once, errors, the lock."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from bot.delivery import outbox
from bot.delivery.graph import GraphClient
from bot.dev.fake_graph import FakeGraphHandle
from bot.storage.keys import LearnerPart, learner_key
from config.settings import Settings

PHONE_ID = "100000000000001"
PAGE_ID = "200000000000002"
LID = "wa:393330000001"


class Clock:
    """The wall clock ``drain`` reads, moved by hand so backoffs take no real time."""

    def __init__(self) -> None:
        self.ms = outbox.wall_clock_ms()

    def __call__(self) -> int:
        return self.ms

    def advance(self, seconds: float) -> None:
        self.ms += int(seconds * 1000) + 1



def make_settings(url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {"env": "dev", "whatsapp_token": "t", "messenger_page_token": "t",
                                 "graph_api_url": url, "send_timeout_seconds": 2.0}
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(fake: FakeGraphHandle) -> Settings:
    return make_settings(fake.url)


@pytest.fixture
def graph(settings: Settings) -> Iterator[GraphClient]:
    with GraphClient(settings) as client:
        yield client


def body(lid: str, n: int) -> dict[str, Any]:
    if lid.startswith("ms:"):
        return {"recipient": {"id": lid[3:]}, "messaging_type": "RESPONSE",
                "message": {"text": f"{lid} #{n}"}}
    return {"messaging_product": "whatsapp", "to": "+" + lid[3:], "type": "text",
            "text": {"body": f"{lid} #{n}"}}


def push(client: redis.Redis, lid: str, count: int, *, created_ms: int | None = None,
         sender_id: str | None = None) -> list[dict[str, Any]]:
    """RPUSH items the way the webhook does; returns the bodies in order."""
    channel = "messenger" if lid.startswith("ms:") else "whatsapp"
    sender = sender_id or (PAGE_ID if channel == "messenger" else PHONE_ID)
    start = client.llen(learner_key(lid, LearnerPart.OUTBOX))
    bodies = [body(lid, start + i) for i in range(count)]
    for item_body in bodies:
        item = {"id": uuid.uuid4().hex, "channel": channel, "sender_id": sender, "body": item_body,
                "created_ms": outbox.wall_clock_ms() if created_ms is None else created_ms}
        client.rpush(learner_key(lid, LearnerPart.OUTBOX), json.dumps(item))
    return bodies


def drain_until_empty(client: redis.Redis, graph: GraphClient, lid: str, settings: Settings,
                      clock: Callable[[], int] | Clock, rounds: int = 200) -> int:
    """Call drain like the job does (again after retry_in), moving the clock instead of sleeping."""
    for round_number in range(1, rounds + 1):
        result = outbox.drain(client, graph, lid, settings, now_ms=clock)
        assert result.locked_for_seconds is None
        if result.retry_in_seconds is None:
            return round_number
        assert isinstance(clock, Clock)
        clock.advance(result.retry_in_seconds)
    raise AssertionError("outbox did not drain")


def delivered(fake: FakeGraphHandle) -> list[dict[str, Any]]:
    return [call["body"] for call in fake.calls()]


def delivery(client: redis.Redis, lid: str) -> dict[str, str]:
    raw = client.hgetall(learner_key(lid, LearnerPart.DELIVERY))
    return {key.decode(): value.decode() for key, value in raw.items()}


@pytest.mark.parametrize("lid", [LID, "wa:IT.123456789", "ms:7000001"])
def test_sends_in_order_and_leaves_nothing_behind(redis_client: redis.Redis, fake: FakeGraphHandle,
                                                  graph: GraphClient, settings: Settings, lid: str) -> None:
    expected = push(redis_client, lid, 5)
    result = outbox.drain(redis_client, graph, lid, settings)
    assert (result.sent, result.failed, result.again_in_seconds) == (5, 0, None)
    assert delivered(fake) == expected
    assert redis_client.llen(learner_key(lid, LearnerPart.OUTBOX)) == 0
    assert not redis_client.exists(learner_key(lid, LearnerPart.SEND_LOCK))
    record = delivery(redis_client, lid)
    assert record["sent_count"] == "5" and record["last_sent_id"] == fake.calls()[-1]["message_id"]
    assert not redis_client.exists(learner_key(lid, LearnerPart.PROGRESS))


@pytest.mark.parametrize(("fail_status", "fail_code"), [(500, 2), (429, 130429), (502, None), (400, 131056)])
def test_exactly_once_in_order_when_every_third_call_fails(
        redis_client: redis.Redis, fake: FakeGraphHandle, graph: GraphClient, settings: Settings,
        fail_status: int, fail_code: int | None) -> None:
    fake.configure(fail_every=3, fail_status=fail_status, fail_code=fail_code)
    expected = push(redis_client, LID, 12)
    clock = Clock()
    rounds = drain_until_empty(redis_client, graph, LID, settings, clock)
    assert delivered(fake) == expected  # each body once, in order
    assert rounds > 1  # the failures really happened and were retried
    record = delivery(redis_client, LID)
    assert record["sent_count"] == "12" and "failed_sends" not in record
    assert record["last_error_kind"] == "transient"


def test_transient_error_keeps_the_item_and_honours_its_backoff(
        redis_client: redis.Redis, fake: FakeGraphHandle, graph: GraphClient, settings: Settings) -> None:
    fake.configure(fail_every=1, fail_status=400, fail_code=131056)
    push(redis_client, LID, 2)
    clock = Clock()
    first = outbox.drain(redis_client, graph, LID, settings, now_ms=clock)
    assert first.retry_in_seconds is not None and 1.0 <= first.retry_in_seconds <= 1.2 + 1e-9
    head = json.loads(redis_client.lindex(learner_key(LID, LearnerPart.OUTBOX), 0))
    assert (head["attempts"], head["last_error_code"]) == (1, 131056)
    assert not redis_client.exists(learner_key(LID, LearnerPart.SEND_LOCK))
    attempts = fake.server.state.counter
    early = outbox.drain(redis_client, graph, LID, settings, now_ms=clock)  # another job, too early
    assert fake.server.state.counter == attempts  # no call before not_before_ms
    assert early.retry_in_seconds is not None and early.retry_in_seconds <= first.retry_in_seconds
    clock.advance(first.retry_in_seconds)
    second = outbox.drain(redis_client, graph, LID, settings, now_ms=clock)
    assert second.retry_in_seconds is not None and 4.0 <= second.retry_in_seconds <= 4.8 + 1e-9  # 4^1
    assert redis_client.llen(learner_key(LID, LearnerPart.OUTBOX)) == 2


def test_backoff_is_capped(redis_client: redis.Redis, fake: FakeGraphHandle, graph: GraphClient) -> None:
    settings = make_settings(fake.url, send_max_backoff_seconds=3.0)
    fake.configure(fail_every=1, fail_code=2)
    push(redis_client, LID, 1)
    clock = Clock()
    waits = []
    for _ in range(5):
        result = outbox.drain(redis_client, graph, LID, settings, now_ms=clock)
        assert result.retry_in_seconds is not None
        waits.append(result.retry_in_seconds)
        clock.advance(result.retry_in_seconds)
    assert 1.0 <= waits[0] <= 1.2 + 1e-9 and 2.0 <= waits[1] <= 2.4 + 1e-9
    assert waits[2:] == [3.0, 3.0, 3.0]


def test_permanent_errors_are_recorded_on_delivery_and_skipped(
        redis_client: redis.Redis, fake: FakeGraphHandle, graph: GraphClient, settings: Settings) -> None:
    fake.configure(sender_ids=[PHONE_ID])  # any other sender id: Meta error 100
    first = push(redis_client, LID, 1)
    push(redis_client, LID, 1, sender_id="999")
    bad_id = json.loads(redis_client.lindex(learner_key(LID, LearnerPart.OUTBOX), 1))["id"]
    last = push(redis_client, LID, 1)
    result = outbox.drain(redis_client, graph, LID, settings)
    assert (result.sent, result.failed, result.again_in_seconds) == (2, 1, None)
    assert delivered(fake) == first + last
    record = delivery(redis_client, LID)
    assert record["failed_sends"] == "1" and record["last_error_code"] == "100"
    assert record["last_error_kind"] == "permanent" and record["last_failed_item"] == bad_id
    assert int(record["last_error_at_ms"]) > 0
    assert not redis_client.exists(learner_key(LID, LearnerPart.PROGRESS))


def test_malformed_item_is_dropped_and_recorded(redis_client: redis.Redis, fake: FakeGraphHandle,
                                                graph: GraphClient, settings: Settings) -> None:
    redis_client.rpush(learner_key(LID, LearnerPart.OUTBOX), b"not json", json.dumps({"id": "x"}))
    expected = push(redis_client, LID, 1)
    result = outbox.drain(redis_client, graph, LID, settings)
    assert (result.sent, result.failed) == (1, 2)
    assert delivered(fake) == expected
    assert delivery(redis_client, LID)["last_error_code"] == str(outbox.MALFORMED_ITEM_CODE)


def test_gives_up_after_the_deadline(redis_client: redis.Redis, fake: FakeGraphHandle,
                                     graph: GraphClient) -> None:
    settings = make_settings(fake.url, send_give_up_seconds=60.0)
    clock = Clock()
    fake.configure(fail_every=1, fail_code=2)
    push(redis_client, LID, 1, created_ms=clock.ms)
    assert outbox.drain(redis_client, graph, LID, settings, now_ms=clock).retry_in_seconds is not None
    fake.configure(fail_every=0)
    later = push(redis_client, LID, 1, created_ms=clock.ms + 30_000)
    clock.advance(60)  # the first item is past its deadline, the second is not
    result = outbox.drain(redis_client, graph, LID, settings, now_ms=clock)
    assert (result.sent, result.failed, result.again_in_seconds) == (1, 1, None)
    assert delivered(fake) == later
    record = delivery(redis_client, LID)
    assert (record["last_error_kind"], record["last_error_code"]) == ("gave_up", "2")


def test_gives_up_when_a_transient_error_comes_after_the_deadline(
        redis_client: redis.Redis, fake: FakeGraphHandle, graph: GraphClient) -> None:
    settings = make_settings(fake.url, send_give_up_seconds=60.0)
    created = outbox.wall_clock_ms()
    fake.configure(fail_every=1, fail_code=130429)
    push(redis_client, LID, 1, created_ms=created)

    def now_ms() -> int:  # 59 s after the item was written until the call failed, 61 s after it
        return created + (61_000 if fake.server.state.counter else 59_000)

    result = outbox.drain(redis_client, graph, LID, settings, now_ms=now_ms)
    assert (result.sent, result.failed, result.again_in_seconds) == (0, 1, None)
    assert delivery(redis_client, LID)["last_error_code"] == "130429"


def test_stale_unsent_item_is_dropped_without_a_call(redis_client: redis.Redis, fake: FakeGraphHandle,
                                                     graph: GraphClient, settings: Settings) -> None:
    push(redis_client, LID, 1, created_ms=outbox.wall_clock_ms() - int(settings.send_give_up_seconds * 1000))
    result = outbox.drain(redis_client, graph, LID, settings)
    assert (result.sent, result.failed) == (0, 1)
    assert fake.server.state.counter == 0
    assert delivery(redis_client, LID)["last_error_code"] == str(outbox.EXPIRED_UNSENT_CODE)


def test_held_lock_returns_its_ttl_and_sends_nothing(redis_client: redis.Redis, fake: FakeGraphHandle,
                                                     graph: GraphClient, settings: Settings) -> None:
    push(redis_client, LID, 2)
    redis_client.set(learner_key(LID, LearnerPart.SEND_LOCK), "someone-else", px=7000)
    result = outbox.drain(redis_client, graph, LID, settings)
    assert result.sent == 0 and result.locked_for_seconds is not None
    assert 6.5 < result.locked_for_seconds <= 7.0
    assert fake.calls() == []


def test_lock_lost_during_a_send_stops_after_that_item(redis_client: redis.Redis, fake: FakeGraphHandle,
                                                       graph: GraphClient, settings: Settings) -> None:
    fake.configure(delay_seconds=0.3)
    push(redis_client, LID, 3)
    lock = learner_key(LID, LearnerPart.SEND_LOCK)

    def steal_while_the_first_call_is_in_flight() -> None:
        deadline = time.monotonic() + 10
        while fake.server.state.counter < 1 and time.monotonic() < deadline:
            time.sleep(0.005)
        redis_client.set(lock, "thief", px=5000)

    thief = threading.Thread(target=steal_while_the_first_call_is_in_flight)
    thief.start()
    result = outbox.drain(redis_client, graph, LID, settings)
    thief.join()
    assert result.sent == 1 and result.locked_for_seconds is not None
    assert redis_client.get(lock) == b"thief"  # not released by us
    assert redis_client.llen(learner_key(LID, LearnerPart.OUTBOX)) == 2


def test_concurrent_drainers_never_reorder_or_duplicate(redis_client: redis.Redis, redis_url: str,
                                                        fake: FakeGraphHandle, settings: Settings) -> None:
    fake.configure(delay_seconds=0.005, fail_every=7, fail_code=2)
    expected = push(redis_client, LID, 30)
    errors: list[BaseException] = []
    locked: list[float] = []
    clock = Clock()  # shared: a retry wait is skipped by whichever thread sees it

    def worker() -> None:
        client = redis.Redis.from_url(redis_url)
        with GraphClient(settings) as graph:
            try:
                for _ in range(2000):
                    if not client.exists(learner_key(LID, LearnerPart.OUTBOX)):
                        return
                    result = outbox.drain(client, graph, LID, settings, now_ms=clock)
                    if result.retry_in_seconds:
                        clock.advance(result.retry_in_seconds)
                    if result.locked_for_seconds is not None:
                        locked.append(result.locked_for_seconds)
            except BaseException as exc:  # reported below
                errors.append(exc)
            finally:
                client.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert locked  # the threads did contend for the lock
    assert delivered(fake) == expected


def test_yields_after_max_sends(redis_client: redis.Redis, fake: FakeGraphHandle, graph: GraphClient,
                                settings: Settings) -> None:
    push(redis_client, LID, 5)
    result = outbox.drain(redis_client, graph, LID, settings, max_sends=2)
    assert (result.sent, result.retry_in_seconds) == (2, 0.0)
    assert not redis_client.exists(learner_key(LID, LearnerPart.SEND_LOCK))
    assert outbox.drain(redis_client, graph, LID, settings).sent == 3


def test_pending_learners_finds_every_nonempty_outbox(redis_client: redis.Redis, fake: FakeGraphHandle,
                                                      graph: GraphClient, settings: Settings) -> None:
    lids = {"wa:393330000001", "wa:IT.123456789", "ms:7000001"}
    for lid in lids | {"wa:393330000009"}:
        push(redis_client, lid, 2)
    redis_client.hset(learner_key("wa:393330000002", LearnerPart.PROGRESS), "x", "1")
    outbox.drain(redis_client, graph, "wa:393330000009", settings)
    assert set(outbox.pending_learners(redis_client, batch=2)) == lids


def test_lock_must_outlive_a_call(fake: FakeGraphHandle) -> None:
    with pytest.raises(ValueError, match="send_lock_seconds"):
        outbox.check_timing(make_settings(fake.url, send_timeout_seconds=20.0, send_lock_seconds=30.0))


def test_a_drain_of_three_items_and_a_receipt_makes_four_redis_round_trips(
        redis_client: redis.Redis, redis_url: str, fake: FakeGraphHandle, graph: GraphClient,
        settings: Settings) -> None:
    """The lock's script brings the pace, the head and the receipt; each settle brings the next head or lets go."""
    bodies = push(redis_client, LID, 3)
    receipt = {"channel": "whatsapp", "sender_id": PHONE_ID,
               "body": {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.latest"}}
    redis_client.set(learner_key(LID, LearnerPart.RECEIPT), json.dumps(receipt))
    counted = redis.Redis.from_url(redis_url)
    counted.ping()  # connect (and load no script) before counting
    connection = counted.connection_pool.get_connection()
    counted.connection_pool.release(connection)
    sent: list[int] = []
    original = connection.send_packed_command

    def send_packed_command(command: Any, check_health: bool = True) -> None:
        sent.append(1)
        original(command, check_health)

    connection.send_packed_command = send_packed_command  # type: ignore[method-assign]
    for _ in range(2):  # the second time the scripts are cached: EVALSHA only (the first adds a SCRIPT LOAD each)
        sent.clear()
        result = outbox.drain(counted, graph, LID, settings)
        assert (result.sent, result.again_in_seconds) == (3, None)
        assert delivered(fake)[-3:] == bodies and delivered(fake)[-4]["message_id"] == "wamid.latest"
        bodies = push(redis_client, LID, 3)
        redis_client.set(learner_key(LID, LearnerPart.RECEIPT), json.dumps(receipt))
        redis_client.delete(learner_key(LID, LearnerPart.PACE))  # a full bucket and no recent receipt again
    assert len(sent) == 4
    counted.close()


def test_a_drain_registers_its_scripts_once_per_client_not_per_call(redis_client: redis.Redis, fake: FakeGraphHandle,
                                                                    graph: GraphClient, settings: Settings,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    registered: list[str] = []
    register = redis_client.register_script
    monkeypatch.setattr(redis_client, "register_script", lambda text: registered.append(text) or register(text))
    for n in range(3):
        push(redis_client, LID, 1)
        assert outbox.drain(redis_client, graph, LID, settings).sent == 1
        if n == 0:
            first = list(registered)
    assert registered == first  # the second and third drains hashed no script again
    assert len(fake.calls()) == 3
