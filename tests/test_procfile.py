"""The real Procfile processes (gunicorn web + Dramatiq worker) against the fake Graph API on loopback.

Learners tap through module 1 as a phone would; every outbound body is checked against the platform
limits; the processes are restarted, the worker SIGKILLed mid-send, the Graph API made to fail and to
crawl, Redis stopped and started again.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from bot.channels import check_limits, describe
from bot.channels.instagram import INSTAGRAM
from bot.channels.messenger import MESSENGER
from bot.channels.whatsapp import WHATSAPP
from bot.storage.keys import LearnerPart, learner_key
from config.settings import PROJECT_ROOT
from tests.cluster import purge_rabbitmq
from tests.service import Phone, Service

pytestmark = pytest.mark.procfile

# The walks, duplicates, restarts and ordering run on both engines: one Redis server with Dramatiq's Redis
# broker, and a Redis Cluster (3 primaries + 3 replicas) with RabbitMQ (issue 13 §3). Never skipped.
ON_BOTH_ENGINES = pytest.mark.parametrize("service", ["redis", "cluster+rabbitmq"], indirect=True)


@pytest.fixture
def service(request, tmp_path) -> Iterator[Service]:
    cluster = None
    if getattr(request, "param", "redis") == "cluster+rabbitmq":
        cluster = request.getfixturevalue("redis_cluster")
        cluster.flush()
        purge_rabbitmq()
    svc = Service(tmp_path, cluster=cluster)
    try:
        svc.start()
        yield svc
    finally:
        svc.close()


def steps_of_module_1(phone: Phone, course, lang: str) -> Iterator[None]:
    """Tap through module 1, one turn per iteration (so a test can disrupt things between turns)."""
    flow = course.flows["m1_contatto"]
    phone.send("ciao")
    phone.wait_turn()
    yield
    phone.tap("Italiano" if lang == "it" else "English")
    phone.wait_turn()
    yield
    phone.tap("Panificio" if lang == "it" else "Bakery")
    phone.wait_turn()
    yield
    phone.tap(flow.short_title.get(lang)[:10])
    phone.wait_turn()
    step = flow.steps[flow.start]
    while not step.end:
        yield
        if step.quiz:
            phone.tap(step.quiz.correct_option.label.get(lang))
            step = flow.steps[step.next]
        else:
            phone.tap(step.choices[0].label.get(lang))
            step = flow.steps[step.choices[0].next]
        phone.wait_turn()


def finish(steps: Iterator[None]) -> None:
    for _ in steps:
        pass


def bodies(phone: Phone) -> list[dict]:
    """What the phone received, with per-message ids blanked so two runs can be compared."""
    out = []
    for call in phone.calls():
        body = dict(call["body"])
        body.pop("message_id", None)
        out.append(body)
    return out


@ON_BOTH_ENGINES
def test_whatsapp_and_messenger_learners_complete_module_1_within_limits_and_survive_restarts(
        service, course, tmp_path):
    wa = Phone(service, WHATSAPP, "393330000101")
    ms = Phone(service, MESSENGER, "7000000000000101")
    wa_steps, ms_steps = steps_of_module_1(wa, course, "it"), steps_of_module_1(ms, course, "en")
    for _ in range(4):
        next(wa_steps)
        next(ms_steps)
    service.stop("web", "worker")  # both processes restart mid-module
    service.start("web", "worker")
    finish(wa_steps)
    finish(ms_steps)
    summary = {"it": "Hai completato", "en": "You completed"}
    for phone, lang in ((wa, "it"), (ms, "en")):
        texts = [body for body in bodies(phone)]
        assert texts, "no replies"
        assert phone.limit_violations() == []
        stored = service.redis_client().hgetall(
            learner_key(f"{phone.channel.prefix}:{phone.user}", LearnerPart.PROGRESS))
        assert stored[b"modules_done"] == b'["m1_contatto"]'
        assert stored[b"lang"].decode() == lang
    del summary

    # re-posting every webhook changes nothing and sends nothing (counted once the last sends have landed)
    before = _settled_call_count(service)
    for phone in (wa, ms):
        for raw in phone.posted:
            assert service.post(raw).status_code == 200
    time.sleep(1.5)
    assert len(service.graph.calls()) == before


def _settled_call_count(service: Service, quiet_seconds: float = 1.5, limit_seconds: float = 60.0) -> int:
    """The fake Graph API's call count once no call has come for ``quiet_seconds`` (a receipt or the last
    bubble may still be on its way when the walk's last reply is read)."""
    deadline = time.monotonic() + limit_seconds
    count, since = len(service.graph.calls()), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = len(service.graph.calls())
        if now != count:
            count, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_seconds:
            return count
    raise AssertionError(f"calls kept coming for {limit_seconds} s after the walk")


def answer_as_on_desktop(phone: Phone, label: str, turn: int) -> None:
    """Instagram shows no quick replies on desktop: read the numbered line and type its number or its label.

    Turns take the three ways in rotation: a tap on a quick reply (the phone app), the number typed,
    the label typed.
    """
    number, title = next((n, t) for n, (_, t) in enumerate(phone.options, start=1) if t.startswith(label))
    [last] = [describe(INSTAGRAM, call["body"]) for call in phone.calls()[-1:]]
    assert f"{number}. {title}" in last.text, last.text  # readable where no quick reply shows
    if turn % 3 == 0:
        phone.tap(label)
    else:
        phone.send(str(number) if turn % 3 == 1 else title)
    phone.wait_turn()


@ON_BOTH_ENGINES
def test_an_instagram_learner_completes_module_1_tapping_and_typing_within_instagrams_limits(service, course):
    flow = course.flows["m1_contatto"]
    phone = Phone(service, INSTAGRAM, "6000000000000101")
    phone.send("ciao")
    phone.wait_turn()
    labels = ["Italiano", "Panificio", flow.short_title.get("it")[:10]]
    step = flow.steps[flow.start]
    for turn, label in enumerate(labels):
        answer_as_on_desktop(phone, label, turn)
    turn = len(labels)
    while not step.end:
        if step.quiz:
            label, step = step.quiz.correct_option.label.get("it"), flow.steps[step.next]
        else:
            label, step = step.choices[0].label.get("it"), flow.steps[step.choices[0].next]
        answer_as_on_desktop(phone, label, turn)
        turn += 1

    quiz_steps = sum(s.quiz is not None for s in flow.steps.values())
    # every answer, tapped or typed, was read as the option meant
    assert (phone.count("✅ Giusto!"), phone.count("❌ Non proprio.")) == (quiz_steps, 0)
    calls = phone.calls()
    assert calls and phone.limit_violations() == []
    assert {call["path"] for call in calls} == {"/v25.0/me/messages"}  # the Page token picks the Page
    for call in calls:
        assert check_limits(INSTAGRAM, call["body"]) == []
        shown = describe(INSTAGRAM, call["body"])
        assert all(f"{n}. {title}" in shown.text for n, (_, title) in enumerate(shown.options, start=1))
    stored = service.redis_client().hgetall(learner_key(f"ig:{phone.user}", LearnerPart.PROGRESS))
    assert (stored[b"modules_done"], stored[b"lang"]) == (b'["m1_contatto"]', b"it")

    before = len(service.graph.calls())  # Meta redelivers: every webhook again changes nothing
    for raw in phone.posted:
        assert service.post(raw).status_code == 200
    time.sleep(1.5)
    assert len(service.graph.calls()) == before


def test_forged_signature_is_403_through_gunicorn(service):
    phone = Phone(service, WHATSAPP, "393330000102")
    raw = b'{"object":"whatsapp_business_account","entry":[]}'
    assert service.post(raw, secret="forged").status_code == 403
    assert service.post(raw).status_code == 200
    del phone


@ON_BOTH_ENGINES
def test_graph_failing_every_third_call_still_delivers_every_reply_exactly_once(service, course):
    clean = Phone(service, WHATSAPP, "393330000103")
    finish(steps_of_module_1(clean, course, "it"))
    service.graph.configure(fail_every=3, fail_status=500, fail_code=2)
    flaky = Phone(service, WHATSAPP, "393330000104")
    finish(steps_of_module_1(flaky, course, "it"))
    time.sleep(1.0)

    def normalised(phone: Phone) -> list[dict]:
        out = []
        for body in bodies(phone):
            if body.get("status") == "read":
                continue  # read receipts are best effort: one lost to a failed call is not retried
            body.pop("to", None)
            out.append(body)
        return out

    assert normalised(flaky) == normalised(clean)


def test_the_webhook_answers_fast_while_the_graph_api_takes_seconds(service):
    service.graph.configure(delay_seconds=3.0)
    phone = Phone(service, WHATSAPP, "393330000105")
    started = time.monotonic()
    phone.send("ciao")
    answered = time.monotonic() - started
    assert answered < 1.0, f"the webhook took {answered:.2f}s while the Graph API was slow"
    service.graph.configure(delay_seconds=0.0)
    phone.wait_turn(timeout=30)


@ON_BOTH_ENGINES
def test_a_worker_killed_mid_send_and_restarted_loses_no_reply(service, course):
    reference = Phone(service, WHATSAPP, "393330000106")
    reference.send("ciao")
    expected = reference.wait_turn()
    service.graph.configure(delay_seconds=2.0)
    phone = Phone(service, WHATSAPP, "393330000107")
    phone.send("ciao")
    time.sleep(1.0)  # the worker is inside a Graph call now
    service.stop("worker", sig=signal.SIGKILL)
    service.graph.configure(delay_seconds=0.0)
    service.start("worker")
    got = phone.wait_turn(timeout=60)
    texts = [shown.text for shown in got]
    assert [shown.text for shown in expected] == [t for i, t in enumerate(texts) if t not in texts[:i]]
    assert len(texts) <= len(expected) + 1  # at most the one call in flight when the worker died


def test_with_redis_down_the_webhook_answers_503_and_the_redelivery_is_handled_once_redis_is_back(service):
    phone = Phone(service, WHATSAPP, "393330000108")
    phone.send("ciao")
    phone.wait_turn()
    service.redis.stop()
    payload = phone._payload(text="1")
    raw = __import__("json").dumps(payload).encode()
    assert service.post(raw).status_code == 503
    service.restart_redis()
    deadline = time.monotonic() + 20
    while (code := service.post(raw).status_code) == 503 and time.monotonic() < deadline:
        time.sleep(0.5)  # Meta retries; the web process reconnects
    assert code == 200
    shown = phone.wait_turn(timeout=30)
    assert shown
    assert service.post(raw).status_code == 200  # once more: a duplicate now
    time.sleep(1.0)
    assert len([s for s in phone.calls()]) == phone.seen_calls


def test_a_learner_mid_lesson_goes_on_after_a_new_version_removing_their_step_is_published(service, tmp_path):
    phone = Phone(service, WHATSAPP, "393330000109")
    phone.send("ciao")
    phone.wait_turn()
    for title in ("Italiano", "Panificio", "Contatto clienti", "Iniziamo", "Fatto ✅"):
        phone.tap(title)
        shown = phone.wait_turn()
    assert any("2. Rispondere bene" in s.text for s in shown)  # waiting on lesson 2 of version 1
    flows = tmp_path / "flows_v2"
    shutil.copytree(PROJECT_ROOT / "flows", flows)
    module = yaml.safe_load((flows / "m1_contatto.yaml").read_text())
    module["version"] += 1
    new_version = str(module["version"]).encode()
    module["steps"] = [s for s in module["steps"] if s["id"] != "lesson_2"]
    for step in module["steps"]:
        for choice in step.get("choices", []):
            if choice["next"] == "lesson_2":
                choice["next"] = "check_1"
    # lesson 2 led to the retrieval check, which the new version keeps (with a new text)
    next(s for s in module["steps"] if s["id"] == "check_1")["quiz"]["question"]["it"] = "*Versione nuova del ripasso*"
    (flows / "m1_contatto.yaml").write_text(yaml.safe_dump(module, allow_unicode=True, sort_keys=False))
    published = subprocess.run([sys.executable, "-m", "bot.cli", "flows", "publish", str(flows)],
                               env=service.env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert published.returncode == 0, published.stdout + published.stderr
    phone.tap("Fatto ✅")  # the button of the step version 2 removed
    shown = phone.wait_turn()
    assert any("Versione nuova del ripasso" in s.text for s in shown)
    stored = service.redis_client().hgetall(
        learner_key(f"wa:{phone.user}", LearnerPart.PROGRESS))
    assert (stored[b"flow_version"], stored[b"step"], stored[b"business"]) == (new_version, b"check_1", b"bakery")


@pytest.fixture
def fast_checkup_flows(tmp_path) -> Path:
    """The shipped course with a 24-second check-up: warnings when 16 and 8 seconds remain."""
    flows = tmp_path / "flows_fast"
    shutil.copytree(PROJECT_ROOT / "flows", flows)
    text = (flows / "checkup.yaml").read_text()
    text = text.replace("time_limit_seconds: 1800", "time_limit_seconds: 24")
    text = text.replace("warnings_seconds: [600, 300]", "warnings_seconds: [16, 8]")
    (flows / "checkup.yaml").write_text(text)
    return flows


@pytest.mark.parametrize("engine", ["redis", "cluster+rabbitmq"])
def test_checkup_clock_survives_restarting_web_and_worker_and_fires_on_time_exactly_once(tmp_path, request, engine,
                                                                                      fast_checkup_flows):
    cluster = None
    if engine == "cluster+rabbitmq":  # the timer index sharded over the cluster's slots
        cluster = request.getfixturevalue("redis_cluster")
        cluster.flush()
        purge_rabbitmq()
    svc = Service(tmp_path, flows_dir=fast_checkup_flows, cluster=cluster)
    try:
        svc.start()
        phone = Phone(svc, WHATSAPP, "393330000110")
        phone.send("ciao")
        phone.wait_turn()
        for title in ("Italiano", "Ferramenta", "Check-up digitale", "Inizia il check-up"):
            phone.tap(title)
            phone.wait_turn()
        started = phone.wait_for("Via!")
        svc.stop("web", "worker")  # both processes go away mid-test ...
        svc.start("web", "worker")  # ... and come back
        back = time.monotonic()
        warned_16 = phone.wait_for("⏳")
        timed_out = phone.wait_for("⏰", timeout=60)
        time.sleep(3)
        assert phone.count("⏳") == 2 and phone.count("⏰") == 1  # exactly once each
        # Never early; late only by the time the processes were away plus a sweep and a send (generous
        # slack: the machine may be busy). Due 8 s after the start (16 s before the end), and at 24 s.
        assert warned_16 - started >= 8 - 1 and warned_16 <= max(started + 8, back) + 10
        assert timed_out - started >= 24 - 1 and timed_out <= max(started + 24, back) + 10
        assert phone.count("Il tuo risultato:") == 1
    finally:
        svc.close()
