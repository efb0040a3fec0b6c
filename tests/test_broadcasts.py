"""Broadcasts and the sending number's bucket, on a real Redis and the fake Graph API on loopback.

The bucket's bound is checked from counts: successes over a window measured on Redis's own clock (the
one the bucket refills by) never exceed the bucket's capacity plus its rate times that window, however
many processes and threads take from it. The broadcast runs its steps and drains here, in this process
(the Procfile-level tests in test_broadcasts_procfile.py run them in the real worker).
"""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
from typing import Any

import dramatiq
import pytest
import redis

from bot import channels, composition
from bot.broadcasts import console
from bot.broadcasts.audience import Query
from bot.broadcasts.service import BroadcastError, Broadcasts
from bot.delivery import outbox
from bot.delivery.broker import JobQueue, WakePrecision, build_broker
from bot.delivery.graph import GraphClient
from bot.delivery.throughput import Rate, Throughput
from bot.dispatch import Dispatcher
from bot.model.events import Channel
from bot.proactive.policy import Policy
from bot.storage import broadcast_store
from bot.storage.clock import SystemClock
from bot.storage.keys import BroadcastPart, LearnerPart, broadcast_key, broadcast_shard_key, learner_key
from bot.storage.releases import FixedRegistry
from bot.tutor.engine import Engine
from bot.tutor.progress import Progress

PHONE_NUMBER_ID = "100000000000001"


def _redis_seconds(client: redis.Redis) -> float:
    seconds, micros = client.time()
    return seconds + micros / 1_000_000


def _take_for(url: str, rate: dict[str, float], attempts: int, bulk: bool, results: Any) -> None:
    client = redis.Redis.from_url(url)
    bucket = Throughput(client, {"whatsapp": Rate(per_second=rate["per_second"], burst_seconds=rate["burst"],
                                                  reserve_ratio=rate["reserve"])})
    taken = 0
    for _ in range(attempts):
        wait = bucket.take("whatsapp", PHONE_NUMBER_ID, bulk=bulk)
        if wait == 0:
            taken += 1
        else:
            time.sleep(min(wait, 5) / 1000)
    results.put(taken)
    client.close()


def test_the_number_bucket_shared_by_processes_and_threads_never_exceeds_its_rate(redis_client, redis_url):
    rate = {"per_second": 200.0, "burst": 0.1, "reserve": 0.0}  # capacity 20
    results: multiprocessing.Queue[int] = multiprocessing.get_context("fork").Queue()
    start = _redis_seconds(redis_client)
    workers: list[Any] = [multiprocessing.get_context("fork").Process(
        target=_take_for, args=(redis_url, rate, 300, False, results)) for _ in range(3)]
    workers += [threading.Thread(target=_take_for, args=(redis_url, rate, 300, False, results)) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    end = _redis_seconds(redis_client)
    taken = sum(results.get(timeout=10) for _ in workers)
    bound = 20 + rate["per_second"] * (end - start)
    assert 0 < taken <= bound + 1, (taken, bound)


def test_a_broadcast_leaves_the_reserve_to_conversations(redis_client):
    bucket = Throughput(redis_client, {"whatsapp": Rate(per_second=1.0, burst_seconds=20.0, reserve_ratio=0.25)})
    start = _redis_seconds(redis_client)
    bulk = 0
    while bucket.take("whatsapp", PHONE_NUMBER_ID, bulk=True) == 0:
        bulk += 1
    elapsed = _redis_seconds(redis_client) - start
    assert bulk <= 15 + elapsed + 1  # capacity 20 less the reserve of 5, plus what refilled meanwhile
    assert bucket.take("whatsapp", PHONE_NUMBER_ID, bulk=False) == 0  # a learner's reply finds the reserve
    assert bucket.take("whatsapp", PHONE_NUMBER_ID, bulk=True) > 0  # the broadcast still waits


def test_recipients_states_are_sharded_and_a_broadcast_from_before_the_shards_keeps_its_one_pair(redis_client):
    learners = [f"wa:39333300{n:04d}" for n in range(40)]
    broadcast_id = "20261130-090000-aaaaaa"
    broadcast_store.create(redis_client, broadcast_id, {"message": "news"}, learners, created_ms=1)
    for lid in learners:
        assert broadcast_store.settle(redis_client, broadcast_id, lid, "queued")
    for lid in learners[:10]:
        assert broadcast_store.settle(redis_client, broadcast_id, lid, "sent")
    assert broadcast_store.settle(redis_client, broadcast_id, learners[0], "read")
    assert not broadcast_store.settle(redis_client, broadcast_id, learners[0], "delivered")  # only forward
    assert broadcast_store.counts(redis_client, broadcast_id) == {"queued": 30, "sent": 9, "read": 1}
    assert broadcast_store.state_of(redis_client, broadcast_id, learners[0]) == "read"
    assert sorted(broadcast_store.recipients_in(redis_client, broadcast_id, "sent")) == sorted(learners[1:10])
    shards = [n for n in range(16) if redis_client.exists(broadcast_shard_key(broadcast_id, n, BroadcastPart.STATE))]
    assert len(shards) > 8 and not redis_client.exists(broadcast_key(broadcast_id, BroadcastPart.STATE))

    before = "20261129-090000-bbbbbb"  # started before the shards: its meta names none
    broadcast_store.create(redis_client, before, {"message": "news"}, learners[:2], created_ms=1)
    redis_client.hdel(broadcast_key(before, BroadcastPart.META), broadcast_store.STATE_SHARDS_FIELD)
    for state in ("queued", "sent"):
        assert broadcast_store.settle(redis_client, before, learners[0], state)
    assert redis_client.hget(broadcast_key(before, BroadcastPart.STATE), learners[0]) == b"sent"
    assert broadcast_store.counts(redis_client, before) == {"sent": 1}
    assert list(broadcast_store.recipients_in(redis_client, before, "sent")) == [learners[0]]


def test_senders_finding_the_number_empty_are_told_their_place_in_line_not_all_the_same_wait(redis_client):
    """The herd: 600 learners against 80/s were all told ~12 ms and all came back together, over and over.
    (1 msg/s, so that a pause of the test process between two calls moves a wait by a few ms of 1,000.)"""
    bucket = Throughput(redis_client, {"whatsapp": Rate(per_second=1.0, burst_seconds=1.0, reserve_ratio=0.25)})
    assert bucket.take("whatsapp", PHONE_NUMBER_ID) == 0  # the one token (capacity 1)
    waits = [bucket.take("whatsapp", PHONE_NUMBER_ID) for _ in range(20)]
    steps = [later - earlier for earlier, later in zip(waits, waits[1:], strict=False)]
    assert all(900 <= step <= 1_100 for step in steps), waits  # one token (1 s at 1/s) apart: a line
    assert waits[0] <= 1_100 and waits[-1] >= 19_000, waits
    time.sleep((waits[0] + 20) / 1000)
    assert bucket.take("whatsapp", PHONE_NUMBER_ID) > 0  # a newcomer leaves the token to the first in line
    assert bucket.take("whatsapp", PHONE_NUMBER_ID, waited=True) == 0  # who came back at their time takes it
    assert bucket.take("whatsapp", PHONE_NUMBER_ID, waited=True) > 0  # and nobody takes more than there is


def test_a_conversation_never_waits_behind_the_broadcasts_in_line(redis_client):
    bucket = Throughput(redis_client, {"whatsapp": Rate(per_second=1.0, burst_seconds=10.0, reserve_ratio=0.2)})
    while bucket.take("whatsapp", PHONE_NUMBER_ID, bulk=True) == 0:
        pass  # the broadcast spends all but the reserve (2 of 10)
    bulk_waits = [bucket.take("whatsapp", PHONE_NUMBER_ID, bulk=True) for _ in range(30)]
    assert bulk_waits[-1] >= 29_000, bulk_waits  # thirty broadcast items in line behind the reserve
    assert bucket.take("whatsapp", PHONE_NUMBER_ID) == 0  # a learner's reply finds the reserve at once
    assert bucket.take("whatsapp", PHONE_NUMBER_ID) == 0
    first_in_line = bucket.take("whatsapp", PHONE_NUMBER_ID)
    assert 0 < first_in_line <= 1_100  # the next reply waits for one token, not for thirty broadcast items


def test_the_worker_looks_at_its_queues_every_worker_wake_ms(settings, broker_client, redis_url):
    """A delayed send (a waiter's place in line) is moved onto its queue when the worker next looks: the
    consumers' poll is WORKER_WAKE_MS, set before they start, instead of Dramatiq's 1 s."""
    broker = build_broker(settings, redis_url)
    broker.declare_queue("default")
    broker.add_middleware(WakePrecision(settings.worker_wake_ms))
    worker = dramatiq.Worker(broker, worker_threads=1)
    worker.start()
    try:
        consumers = list(worker.consumers.values())
        assert {thread.queue_name for thread in consumers} >= {"default", "default.DQ"}
        assert {thread.worker_timeout for thread in consumers} == {settings.worker_wake_ms} != {1000}
    finally:
        worker.stop()
        broker.close()


# -- a broadcast in this process ------------------------------------------------------------------------------


def _post(dispatcher: Dispatcher, channel: Channel, user: str, text: str) -> None:
    parts = channels.parts_for(channel)
    reply_from = PHONE_NUMBER_ID if channel.name == "whatsapp" else "200000000000002"
    events, _ = parts.parse(parts.dev.text_payload(text, user, reply_from, at_ms=SystemClock()()))
    for event in events:
        dispatcher.handle(event)


def _status(dispatcher: Dispatcher, user: str, message_id: str, status: str, code: int = 0) -> None:
    entry: dict[str, Any] = {"id": message_id, "status": status, "timestamp": str(int(time.time())),
                             "recipient_id": user}
    if code:
        entry["errors"] = [{"code": code, "title": "failed"}]
    payload = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"phone_number_id": PHONE_NUMBER_ID}, "statuses": [entry]}}]}]}
    events, _ = channels.parts_for(channels.named("whatsapp")).parse(payload)
    for event in events:
        dispatcher.handle(event)


@pytest.fixture
def world(redis_client, broker_client, redis_url, settings, course, fake):
    policy = Policy(quiet_start_minute=None, quiet_end_minute=None)
    engines = FixedRegistry(Engine(course, policy=policy))
    notified: list[str] = []
    dispatcher = composition.dispatcher(settings, redis_client, engines, notify=notified.append)
    queue = JobQueue(build_broker(settings, redis_url), settings)
    service = Broadcasts(redis_client, engines, clock=SystemClock(), queue=queue, dispatcher=dispatcher,
                         rate_per_second=5, lookahead_seconds=2, chunk=4)
    graph_settings = outbox_settings(settings, fake.url)
    graph = GraphClient(graph_settings)
    return {"client": redis_client, "dispatcher": dispatcher, "service": service, "graph": graph,
            "settings": graph_settings, "fake": fake}


def outbox_settings(settings, url):
    from dataclasses import replace

    return replace(settings, graph_api_url=url, learner_burst_messages=50, learner_message_interval_seconds=0.01)


def _drain_all(world: dict[str, Any], learner_ids: list[str]) -> None:
    throughput = Throughput(world["client"], {"whatsapp": Rate(per_second=10_000, burst_seconds=1, reserve_ratio=0.25)})
    for lid in learner_ids:
        for _ in range(20):
            result = outbox.drain(world["client"], world["graph"], lid, world["settings"], throughput=throughput)
            if result.again_in_seconds is None:
                break


def _step_to_the_end(world: dict[str, Any], broadcast_id: str, token: str, learner_ids: list[str]) -> None:
    """Run the broadcast's chain from ``token`` as the worker would, draining ``learner_ids`` between steps."""
    for _ in range(50):
        _drain_all(world, learner_ids)
        result = world["service"].step(broadcast_id, token)
        if result.again_in_seconds is None:
            return
        token = result.token


def _broadcast_calls(fake) -> dict[str, int]:
    counts: dict[str, int] = {}
    for call in fake.calls():
        body = call["body"]
        text = json.dumps(body, ensure_ascii=False)
        if "modulo nuovo" in text or "new module" in text or "bottega_news" in text:
            user = str(body.get("to") or (body.get("recipient") or {}).get("id"))
            counts[user] = counts.get(user, 0) + 1
    return counts


def test_plan_send_resume_and_report(world):
    client, dispatcher, service, fake = world["client"], world["dispatcher"], world["service"], world["fake"]
    wa, messenger = channels.named("whatsapp"), channels.named("messenger")
    users = [f"39333000{n:04d}" for n in range(10)]
    for user in users:
        _post(dispatcher, wa, user, "ciao")
    _post(dispatcher, messenger, "7000001", "ciao")
    _post(dispatcher, wa, "393339999999", "ciao")
    _post(dispatcher, wa, "393339999999", "stop")
    _post(dispatcher, wa, "393339999999", "1")  # yes, stop
    everyone = [f"wa:{user}" for user in users] + ["ms:7000001", "wa:393339999999"]
    _drain_all(world, everyone)
    fake.reset()

    plan = service.dry_run(Query(), "news")
    assert plan.matched == 12 and len(plan.recipients) == 11
    assert dict(plan.by_channel["whatsapp"]) == {"free_form": 10, "unreachable": 1}
    assert plan.unreachable == {"opted out": 1}
    assert service.dry_run(Query(channels=("messenger",)), "news").recipients == ["ms:7000001"]
    with pytest.raises(BroadcastError, match="no broadcast message 'nope'"):
        service.dry_run(Query(), "nope")

    broadcast_id = service.start(Query(), "news", plan=plan)
    token = broadcast_store.meta(client, broadcast_id)["step"]
    first = service.step(broadcast_id, token)
    assert first.admitted == 4 and service.progress(broadcast_id).queued == 4
    # a crash before the cursor moved: the chain is handed over and the same four are admitted again
    broadcast_store.set_fields(client, broadcast_id, cursor="0")
    service.recover()
    assert service.step(broadcast_id, first.token).again_in_seconds is None  # the old chain stops
    redone = service.step(broadcast_id, broadcast_store.meta(client, broadcast_id)["step"])
    assert redone.admitted == 4 and service.progress(broadcast_id).queued == 4  # refused by the learners' commits
    _step_to_the_end(world, broadcast_id, redone.token, everyone)
    progress = service.progress(broadcast_id)
    assert progress.status == "done" and progress.sent == 11 and progress.queued == 0
    sent = _broadcast_calls(fake)
    assert sorted(sent.values()) == [1] * 11 and "393339999999" not in sent

    wamid = client.hget(learner_key(everyone[0], LearnerPart.DELIVERY), "last_sent_id").decode()
    _status(dispatcher, users[0], wamid, "delivered")
    _status(dispatcher, users[0], wamid, "read")
    _status(dispatcher, users[0], wamid, "delivered")  # late: a state only moves forward
    other = client.hget(learner_key(everyone[1], LearnerPart.DELIVERY), "last_sent_id").decode()
    _status(dispatcher, users[1], other, "failed", 131026)
    report = service.report(broadcast_id)
    assert report.progress.counts == {"sent": 9, "read": 1, "failed:131026": 1, **(
        {"delivered": 0} if False else {})}
    text = "\n".join(report.lines())
    assert "sent 10, delivered 1, read 1, failed 1" in text and "failed with error 131026: 1" in text
    assert "left out by the plan (opted out): 1" in text


def test_the_simulator_s_sandbox_learners_are_nobody_s_audience(world):
    from bot.model.sandbox import sandbox_user

    dispatcher, service = world["dispatcher"], world["service"]
    _post(dispatcher, channels.named("whatsapp"), "393331234567", "ciao")
    _post(dispatcher, channels.named("whatsapp"), sandbox_user("12345678"), "ciao")  # an admin on the simulator
    assert world["client"].exists(learner_key(f"wa:{sandbox_user('12345678')}", LearnerPart.PROGRESS))
    plan = service.dry_run(Query(), "news")
    assert plan.matched == 1 and plan.recipients == ["wa:393331234567"]


def test_pause_resume_cancel_and_the_console(world, capsys):
    client, dispatcher, service = world["client"], world["dispatcher"], world["service"]
    for n in range(3):
        _post(dispatcher, channels.named("whatsapp"), f"39333100{n:04d}", "ciao")
    args = console_args("plan", message="news", lang=["it"])
    assert console.run(args, service) == 0
    assert "3 learners match, 3 would be sent it now" in capsys.readouterr().out
    broadcast_id = service.start(Query(), "news")
    assert service.pause(broadcast_id) and service.progress(broadcast_id).status == "paused"
    token = broadcast_store.meta(client, broadcast_id)["step"]
    assert service.step(broadcast_id, token).again_in_seconds is None  # a paused broadcast admits nobody
    assert service.resume(broadcast_id) and service.progress(broadcast_id).status == "running"
    assert console.run(console_args("cancel", broadcast_id=broadcast_id), service) == 0
    assert "cancelled" in capsys.readouterr().out
    assert not service.resume(broadcast_id)
    assert console.run(console_args("list"), service) == 0
    assert broadcast_id in capsys.readouterr().out


def console_args(action: str, **values: Any):
    import argparse

    parser = argparse.ArgumentParser()
    console.add_arguments(parser)
    argv = [action] + ([values.pop("broadcast_id")] if "broadcast_id" in values else [])
    if "message" in values:
        argv += ["--message", values.pop("message")]
    for lang in values.pop("lang", []):
        argv += ["--lang", lang]
    return parser.parse_args(argv)


def test_the_audience_query_reads_each_field_of_the_record():
    from bot.tutor.progress_parts import CheckupAttempt, CheckupResult, OpenDayState, ReminderState

    now = 100 * 86_400_000
    learner = Progress(learner_id="wa:1", channel="whatsapp", user_id="1", lang="it", business="bakery",
                       modules_done=["m1_contatto"], last_inbound_at_ms=now - 3 * 86_400_000, rev=1,
                       checkup=CheckupAttempt(result=CheckupResult(level="base")),
                       reminders=ReminderState(slot="closing"),
                       open_days=OpenDayState(rsvps={"od_2027_01": "seated", "od_2027_02": "waiting"}))
    assert Query().matches(learner, now)
    for query in (Query(channels=("whatsapp",), languages=("it",), business=("bakery",)),
                  Query(modules_done=("m1_contatto",), modules_not_done=("m2_pagina",)),
                  Query(checkup_levels=("base",), inactive_for_days=2, active_within_days=7),
                  Query(rsvp_event="od_2027_01"), Query(rsvp_event="od_2027_02", rsvp_states=("waiting",)),
                  Query(reminders=True)):
        assert query.matches(learner, now), query
        assert Query.from_json(query.to_json()) == query
    for query in (Query(channels=("messenger",)), Query(languages=("en",)), Query(business=("bar",)),
                  Query(modules_done=("m2_pagina",)), Query(modules_not_done=("m1_contatto",)),
                  Query(checkup_levels=("none",)), Query(active_within_days=1), Query(inactive_for_days=7),
                  Query(rsvp_event="od_2027_02"), Query(rsvp_event="od_2027_03"), Query(reminders=False)):
        assert not query.matches(learner, now), query
    with pytest.raises(ValueError, match="unknown query fields"):
        Query.from_json('{"shoe_size": 42}')


def test_ctrl_c_while_following_pauses_the_broadcast(world, monkeypatch):
    import io

    for n in range(2):
        _post(world["dispatcher"], channels.named("whatsapp"), f"39333300{n:04d}", "ciao")
    service = world["service"]
    broadcast_id = service.start(Query(), "news")

    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(console.time, "sleep", interrupted)
    out = io.StringIO()
    assert console.follow(service, broadcast_id, out) == 130
    assert service.progress(broadcast_id).status == "paused"
    assert f"bottega broadcast resume {broadcast_id}" in out.getvalue() and "0/2" in out.getvalue()


def test_bottega_broadcast_plan_on_redis_url(world, redis_url, monkeypatch, capsys, tmp_path):
    from bot import cli
    from bot.flows.loader import course_files
    from bot.storage.releases import publish
    from config.settings import PROJECT_ROOT

    publish(world["client"], course_files(PROJECT_ROOT / "flows"))
    for n in range(2):
        _post(world["dispatcher"], channels.named("whatsapp"), f"39333400{n:04d}", "ciao")
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("BOTTEGA_ENV", "test")
    monkeypatch.setenv("BOTTEGA_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("QUIET_HOURS", "00:00-00:01")
    assert cli.main(["broadcast", "plan", "--message", "news", "--channel", "whatsapp"]) == 0
    out = capsys.readouterr().out
    assert "2 learners match" in out and "estimated cost" in out
    assert cli.main(["broadcast", "report", "nope"]) == 2
    assert "no broadcast 'nope'" in capsys.readouterr().err


def test_a_broadcast_turn_leaves_the_menu_the_learner_asked_for(world):
    """A broadcast's turn is not the learner's: it must not supersede their ephemeral menu still waiting."""
    client, dispatcher, service, fake = world["client"], world["dispatcher"], world["service"], world["fake"]
    user, lid = "393335000001", "wa:393335000001"
    _post(dispatcher, channels.named("whatsapp"), user, "ciao")
    _drain_all(world, [lid])
    _post(dispatcher, channels.named("whatsapp"), user, "menu")  # the menu waits in the outbox, unsent
    waiting = client.llen(learner_key(lid, LearnerPart.OUTBOX))
    assert waiting >= 1
    broadcast_id = service.start(Query(), "news")
    assert service.step(broadcast_id, broadcast_store.meta(client, broadcast_id)["step"]).admitted == 1
    assert client.llen(learner_key(lid, LearnerPart.OUTBOX)) == waiting + 1
    fake.reset()
    _drain_all(world, [lid])
    texts = [json.dumps(call["body"], ensure_ascii=False) for call in fake.calls()]
    assert any("Ecco i moduli del corso" in text for text in texts) and any("modulo nuovo" in text for text in texts)


def test_a_learner_erased_before_their_turn_is_skipped_and_the_others_still_get_the_broadcast(world):
    from bot import privacy

    client, dispatcher, service, fake = world["client"], world["dispatcher"], world["service"], world["fake"]
    users = [f"39333600{n:04d}" for n in range(3)]
    for user in users:
        _post(dispatcher, channels.named("whatsapp"), user, "ciao")
    everyone = [f"wa:{user}" for user in users]
    _drain_all(world, everyone)
    fake.reset()
    broadcast_id = service.start(Query(), "news")
    erased = privacy.erase_learner(client, everyone[1])  # their place in the frozen audience is blanked
    assert erased.removed["broadcasts"] == 1
    _step_to_the_end(world, broadcast_id, broadcast_store.meta(client, broadcast_id)["step"],
                     [everyone[0], everyone[2]])
    progress = service.progress(broadcast_id)
    assert progress.status == "done" and progress.sent == 2 and progress.skipped == 0
    assert sorted(user.lstrip("+") for user in _broadcast_calls(fake)) == [users[0], users[2]]
    assert not client.exists(learner_key(everyone[1], LearnerPart.PROGRESS))
    assert users[1] not in json.dumps(broadcast_store.recipient_states(client, tuple(everyone)))
