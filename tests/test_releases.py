"""Publishing a new course version never strands, resets or breaks a learner in the middle of it."""

from __future__ import annotations

import json

import pytest
import yaml

from bot import releases
from bot.devserver import whatsapp_text_payload
from bot.flows.loader import course_files
from bot.flows.problems import FlowError
from bot.keys import LearnerPart, learner_key
from bot.progress import Progress
from bot.security import sign
from config.settings import PROJECT_ROOT
from webhooks import create_app

PHONE = "393330000777"
LID = f"wa:{PHONE}"


def course_with(change) -> dict[str, str]:
    """The shipped course files with module 1 changed by ``change(flow_dict)``."""
    files = course_files(PROJECT_ROOT / "flows")
    flow = yaml.safe_load(files["m1_contatto.yaml"])
    change(flow)
    files["m1_contatto.yaml"] = yaml.safe_dump(flow, allow_unicode=True, sort_keys=False)
    return files


BASE = yaml.safe_load((PROJECT_ROOT / "flows" / "m1_contatto.yaml").read_text(encoding="utf-8"))["version"]


def steps_by_id(flow: dict) -> dict[str, dict]:
    return {step["id"]: step for step in flow["steps"]}


def without_lesson_2(flow: dict) -> None:
    """Version BASE+1: lesson 2 (and the retrieval check after it) removed, lesson 1 leads to lesson 3."""
    flow["version"] = BASE + 1
    flow["steps"] = [s for s in flow["steps"] if s["id"] not in ("lesson_2", "check_1")]
    for choice in steps_by_id(flow)["lesson_1"]["choices"]:
        choice["next"] = "lesson_3"
    flow["migrate"] = {"check_1": "lesson_3"}  # learners whose lesson 2 leads on to the removed check
    steps_by_id(flow)["lesson_3"]["say"][0]["it"] = "*Lezione 3, nuova versione*\n\nTesto aggiornato."


def lesson_3_renamed(flow: dict) -> None:
    """Version BASE+2: lesson 3 is now 'lesson_3b'; migrate sends old lesson_3 learners there."""
    without_lesson_2(flow)
    flow["version"] = BASE + 2
    step = steps_by_id(flow)["lesson_3"]
    step["id"] = "lesson_3b"
    for choice in steps_by_id(flow)["lesson_1"]["choices"]:
        choice["next"] = "lesson_3b"
    flow["migrate"] = {"lesson_3": "lesson_3b", "check_1": "lesson_3b"}


@pytest.fixture
def service(settings, redis_client):
    sent: list[str] = []
    app = create_app(settings, redis_client=redis_client, notify=sent.append)
    client = app.test_client()

    def say(payload: dict) -> list[dict]:
        raw = json.dumps(payload).encode()
        start = redis_client.llen(learner_key(LID, LearnerPart.OUTBOX))
        answer = client.post("/webhook", data=raw, headers={"X-Hub-Signature-256": sign("test-app-secret", raw)})
        assert answer.status_code == 200
        return [json.loads(i)["body"] for i in redis_client.lrange(learner_key(LID, LearnerPart.OUTBOX), start, -1)]

    return say


def tap(option_id: str) -> dict:
    payload = whatsapp_text_payload("", PHONE, "100000000000001")
    message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    message.update(type="interactive", interactive={"type": "button_reply",
                                                     "button_reply": {"id": option_id, "title": "x"}})
    del message["text"]
    return payload


def learner(redis_client) -> Progress:
    progress = Progress.from_hash(redis_client.hgetall(learner_key(LID, LearnerPart.PROGRESS)))
    assert progress is not None
    return progress


def walk_to_lesson_2(say) -> None:
    say(whatsapp_text_payload("ciao", PHONE, "100000000000001"))
    say(tap("sys:lang:it"))
    say(tap("sys:biz:bakery"))
    say(tap("sys:module:m1_contatto"))
    say(tap("c:m1_contatto:intro:go"))
    say(tap("c:m1_contatto:lesson_1:done"))


def test_a_learner_mid_lesson_continues_after_a_version_removing_their_step_is_published(
        service, redis_client):
    walk_to_lesson_2(service)
    before = learner(redis_client)
    assert (before.step, before.flow_version) == ("lesson_2", BASE)
    published = releases.publish(redis_client, course_with(without_lesson_2))
    assert published.changed == ("m1_contatto",)

    # the learner taps the button of the step version 2 removed: no error, no reset
    bodies = service(tap("c:m1_contatto:lesson_2:done"))
    texts = [b.get("interactive", {}).get("body", {}).get("text", "") + b.get("text", {}).get("body", "")
             for b in bodies]
    assert any("Lezione 3, nuova versione" in t for t in texts)  # version 2 took over at the boundary
    after = learner(redis_client)
    assert (after.step, after.flow_version, after.flow) == ("lesson_3", BASE + 1, "m1_contatto")
    assert after.created_at_ms == before.created_at_ms and after.lang == "it" and after.business == "bakery"


def test_migrate_moves_learners_whose_step_was_renamed(service, redis_client):
    walk_to_lesson_2(service)
    releases.publish(redis_client, course_with(lesson_3_renamed))
    service(tap("c:m1_contatto:lesson_2:done"))  # version 1 leads to lesson_3, renamed in version 3
    after = learner(redis_client)
    assert (after.step, after.flow_version) == ("lesson_3b", BASE + 2)
    service(tap("c:m1_contatto:lesson_3b:done"))
    assert learner(redis_client).step == "q1"


def test_a_learner_whose_path_never_rejoins_finishes_on_their_version(service, redis_client):
    walk_to_lesson_2(service)

    def everything_renamed(flow: dict) -> None:
        flow["version"] = BASE + 1
        rename = {s["id"]: f"{s['id']}_v2" for s in flow["steps"]}
        for step in flow["steps"]:
            step["id"] = rename[step["id"]]
            for choice in step.get("choices", []):
                choice["next"] = rename[choice["next"]]
            if "next" in step:
                step["next"] = rename[step["next"]]
        flow["start"] = rename[flow["start"]]

    releases.publish(redis_client, course_with(everything_renamed))
    service(tap("c:m1_contatto:lesson_2:done"))
    after = learner(redis_client)
    assert (after.step, after.flow_version) == ("check_1", BASE)  # still on its version, still loadable


def test_publish_refuses_a_changed_module_without_a_version_bump(redis_client):
    releases.publish(redis_client, course_files(PROJECT_ROOT / "flows"))

    def edited_but_same_version(flow: dict) -> None:
        steps_by_id(flow)["lesson_1"]["say"][0]["it"] = "Testo cambiato."

    with pytest.raises(FlowError) as error:
        releases.publish(redis_client, course_with(edited_but_same_version))
    assert f"still version {BASE}" in str(error.value) and f"version: {BASE + 1}" in str(error.value)
    assert releases.live_release(redis_client) == "1"


def test_publish_never_stores_a_broken_course(redis_client):
    files = course_files(PROJECT_ROOT / "flows")
    files["m1_contatto.yaml"] = files["m1_contatto.yaml"].replace("next: lesson_2", "next: lesson_nope", 1)
    with pytest.raises(FlowError) as error:
        releases.publish(redis_client, files)
    assert "lesson_nope" in str(error.value)
    assert releases.live_release(redis_client) == ""


def test_diff_counts_learners_waiting_on_removed_steps_and_says_whether_migrate_covers_them(
        service, redis_client):
    walk_to_lesson_2(service)
    report = releases.diff(redis_client, course_with(without_lesson_2))
    (entry,) = report
    removed = {s.step: s for s in entry.steps if s.change == "removed"}
    assert removed["lesson_2"].learners == 1 and removed["lesson_2"].covered_by == ""
    assert "not covered" in releases.describe_diff(report)

    def with_migrate(flow: dict) -> None:
        without_lesson_2(flow)
        flow["migrate"] = {"lesson_2": "lesson_3"}

    (entry,) = releases.diff(redis_client, course_with(with_migrate))
    assert {s.step: s.covered_by for s in entry.steps}["lesson_2"] == "lesson_3"


def test_every_process_serves_a_new_release_from_its_next_message(settings, redis_client, service):
    walk_to_lesson_2(service)
    other = create_app(settings, redis_client=redis_client, notify=lambda lid: None)  # a second process
    registry = other.extensions["bottega"]["registry"]
    old_release = registry.release
    releases.publish(redis_client, course_with(without_lesson_2))
    service(tap("c:m1_contatto:lesson_2:done"))
    engine = registry.engine_for(releases.live_release(redis_client))
    assert registry.release != old_release
    assert engine.course.flows["m1_contatto"].version == BASE + 1
    assert ("m1_contatto", BASE) in engine.flows  # the old version stays loadable


def test_a_release_that_fails_to_load_leaves_the_last_good_one_serving(settings, redis_client, service, caplog):
    walk_to_lesson_2(service)
    app = create_app(settings, redis_client=redis_client, notify=lambda lid: None)
    registry = app.extensions["bottega"]["registry"]
    good = registry.engine_for(releases.live_release(redis_client))
    broken = dict(course_files(PROJECT_ROOT / "flows"), **{"m1_contatto.yaml": "flow: [unclosed"})
    redis_client.hset(releases.release_key("99"), mapping=broken)  # stored by hand, never by publish
    redis_client.set(releases.LIVE_KEY, "99")
    assert registry.engine_for("99") is good
    assert "course release 99 not loaded" in caplog.text
    bodies = service(tap("c:m1_contatto:lesson_2:done"))  # learners are still served
    assert bodies and learner(redis_client).step == "check_1"  # lesson 2 leads to the retrieval check


def test_dev_mode_publishes_a_saved_flow_file(tmp_path, redis_client):
    import shutil

    from bot.devserver import FlowWatcher

    folder = tmp_path / "flows"
    shutil.copytree(PROJECT_ROOT / "flows", folder, ignore=shutil.ignore_patterns("tests"))
    watcher = FlowWatcher(folder, redis_client)
    watcher.publish()
    first = releases.live_release(redis_client)
    module = folder / "m1_contatto.yaml"
    module.write_text(module.read_text().replace(f"version: {BASE}", f"version: {BASE + 1}", 1))
    watcher.checked_at = 0.0
    watcher.poll()
    assert releases.live_release(redis_client) != first
    assert releases.stored_release(redis_client, releases.live_release(redis_client))["m1_contatto.yaml"] \
        == module.read_text()
