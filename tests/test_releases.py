"""Publishing a new course version never strands, resets or breaks a learner in the middle of it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from bot.channels.signature import sign
from bot.channels.whatsapp.dev import text_payload as whatsapp_text_payload
from bot.flows.loader import course_files
from bot.flows.problems import FlowError
from bot.storage import releases
from bot.storage.keys import LearnerPart, learner_key
from bot.tutor.progress import Progress
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


DEV_MODULES = ("m1_contatto", "m2_pagina")


def dev_folder(tmp_path) -> Path:
    """A small course from the shipped files (two modules, no check-up): what these tests say about a
    save does not change when the course's content does."""
    import shutil

    folder = tmp_path / "flows"
    folder.mkdir()
    for name in ("system.yaml", *(f"{m}.yaml" for m in DEV_MODULES)):
        shutil.copy(PROJECT_ROOT / "flows" / name, folder / name)
    manifest = yaml.safe_load((PROJECT_ROOT / "flows" / "course.yaml").read_text(encoding="utf-8"))
    manifest["course"]["modules"] = list(DEV_MODULES)
    (folder / "course.yaml").write_text(yaml.safe_dump(manifest, allow_unicode=True, sort_keys=False))
    return folder


def version_line(text: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), start=1) if line.startswith("version:"))


def save(watcher, path: Path, text: str) -> None:
    """Write a file as an editor would and let the watcher notice it at once."""
    path.write_text(text)
    watcher.checked_at = 0.0
    watcher.poll()


def test_dev_mode_publishes_a_saved_flow_file_with_publish_on_save(tmp_path, redis_client, capsys):
    from bot.dev.devserver import FlowWatcher

    folder = dev_folder(tmp_path)
    watcher = FlowWatcher(folder, redis_client, publish_on_save=True)
    watcher.start()
    assert capsys.readouterr().out == "bottega: published release 1 — first release: 2 modules\n"
    module = folder / "m1_contatto.yaml"
    good = module.read_text().replace(f"version: {BASE}", f"version: {BASE + 1}", 1)
    save(watcher, module, good)
    assert releases.live_release(redis_client) == "2"
    assert releases.stored_release(redis_client, "2")["m1_contatto.yaml"] == module.read_text()
    assert capsys.readouterr().out == f"bottega: published release 2 — bumped: m1_contatto {BASE}→{BASE + 1}\n"

    save(watcher, module, good.replace("next: lesson_2", "next: lesson_nope", 1))
    out = capsys.readouterr().out
    assert out.startswith(f"bottega: {folder} not published; still serving release 2:\n{folder}/m1_contatto.yaml:")
    assert "lesson_nope" in out and releases.live_release(redis_client) == "2"
    save(watcher, module, good)  # the admin undoes the mistake: the same content as release 2
    assert capsys.readouterr().out == "bottega: fixed — serving release 2 (unchanged)\n"


def test_dev_mode_checks_a_save_and_publishes_nothing_by_default(tmp_path, redis_client, capsys):
    from bot.dev.devserver import FlowWatcher

    folder = dev_folder(tmp_path)
    watcher = FlowWatcher(folder, redis_client)
    watcher.start()  # nothing live yet: the folder becomes the first release, as the web process would do
    assert capsys.readouterr().out == "bottega: published release 1 — first release: 2 modules\n"
    FlowWatcher(folder, redis_client).start()  # a restart with a release live publishes nothing
    assert capsys.readouterr().out == f"bottega: {folder} passes the check; it is live release 1\n"

    module = folder / "m1_contatto.yaml"
    edited = module.read_text().replace('title: {it: "', 'title: {it: "Nuovo: ', 1)
    save(watcher, module, edited)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (f"{folder}/m1_contatto.yaml:{version_line(edited)}:10: warning: module 'm1_contatto' "
                      f"changed but is still version {BASE}, which learners may be on (publishing refuses it) — "
                      f"set 'version: {BASE + 1}'")
    assert out[1] == (f"bottega: {folder} passes the check; learners still get release 1. Try it: bottega chat "
                      "--draft; see what it changes: bottega flows diff; then: bottega flows publish")
    save(watcher, module, edited.replace("next: lesson_2", "next: lesson_nope", 1))
    out = capsys.readouterr().out
    assert out.startswith(f"bottega: {folder} does not pass the check; still serving release 1:\n")
    save(watcher, module, edited.replace(f"version: {BASE}", f"version: {BASE + 1}", 1))
    assert capsys.readouterr().out.startswith(f"bottega: fixed — {folder} passes the check; learners still get "
                                              "release 1.")
    assert releases.live_release(redis_client) == "1"  # saving never published
    releases.publish(redis_client, course_files(folder), folder=str(folder))  # `bottega flows publish`
    watcher.checked_at = 0.0
    watcher.poll()
    assert capsys.readouterr().out == "bottega: now serving release 2\n"


def manifest_with(change) -> dict[str, str]:
    files = course_files(PROJECT_ROOT / "flows")
    manifest = yaml.safe_load(files["course.yaml"])
    change(manifest["course"])
    files["course.yaml"] = yaml.safe_dump(manifest, allow_unicode=True, sort_keys=False)
    return files


LAST_MODULE = yaml.safe_load((PROJECT_ROOT / "flows" / "course.yaml").read_text())["course"]["modules"][-1]


def without_last_module(course: dict) -> None:
    course["modules"].remove(LAST_MODULE)


@pytest.mark.parametrize("change,label", [
    (lambda c: c["modules"].reverse(), "modules reordered"),
    (without_last_module, f"modules removed: {LAST_MODULE}"),
    (lambda c: c.update(support_email="nuovo@bottega.example"),
     "course title, support e-mail or business types changed"),
])
def test_a_release_label_says_what_changed(redis_client, change, label):
    releases.publish(redis_client, course_files(PROJECT_ROOT / "flows"))
    files = manifest_with(change)
    if change is without_last_module:  # the check-up's areas must not name a module the course dropped
        checkup = yaml.safe_load(files["checkup.yaml"])
        for area in checkup["areas"]:
            area["modules"] = [m for m in area.get("modules", [area.get("module")]) if m != LAST_MODULE] or \
                [m for m in yaml.safe_load(files["course.yaml"])["course"]["modules"]][:1]
            area.pop("module", None)
        files["checkup.yaml"] = yaml.safe_dump(checkup, allow_unicode=True, sort_keys=False)
    assert releases.publish(redis_client, files).summary.startswith(label)


def test_a_release_label_names_bumped_modules_and_changed_system_texts(redis_client):
    releases.publish(redis_client, course_files(PROJECT_ROOT / "flows"))
    files = course_with(without_lesson_2)
    files["system.yaml"] = files["system.yaml"].replace('"✅ Giusto!"', '"✅ Esatto!"')
    assert releases.publish(redis_client, files).summary == (f"bumped: m1_contatto {BASE}→{BASE + 1}; "
                                                             "system texts changed: correct_prefix")
    files["course.yaml"] = files["course.yaml"] + "# a comment\n"
    assert releases.publish(redis_client, files).summary == "no change learners can see (comments or formatting only)"


def test_the_terminal_chat_serves_the_live_release_and_every_older_version(redis_client):
    with pytest.raises(LookupError, match="bottega flows publish"):
        releases.Registry.serving_live(redis_client)
    releases.publish(redis_client, course_files(PROJECT_ROOT / "flows"))
    releases.publish(redis_client, course_with(without_lesson_2))
    registry = releases.Registry.serving_live(redis_client)
    assert registry.release == "2"
    assert {("m1_contatto", BASE), ("m1_contatto", BASE + 1)} <= set(registry.engine.flows)


def without_last_question(flow: dict) -> None:
    """Version BASE+1: the last quiz question removed (q3 leads to the summary), its learners sent there."""
    flow["version"] = BASE + 1
    flow["steps"] = [s for s in flow["steps"] if s["id"] != "q4"]
    steps_by_id(flow)["q3"]["next"] = "summary"
    flow["migrate"] = {"q4": "summary"}


def with_a_new_first_question(flow: dict) -> None:
    """Version BASE+1: a new retrieval check in front of lesson 1's choice, worth 2 points."""
    flow["version"] = BASE + 1
    check = dict(steps_by_id(flow)["check_1"], id="check_0")
    check["quiz"] = dict(check["quiz"], points=2)
    check["next"] = "lesson_2"
    for choice in steps_by_id(flow)["lesson_1"]["choices"]:
        choice["next"] = "check_0"
    flow["steps"].insert(2, check)


def answer_right_up_to(say, course_flow: dict, stop: str) -> None:
    """From lesson 2 on, tap the first choice of each lesson and the right option of each quiz until ``stop``."""
    steps = steps_by_id(course_flow)
    step = steps["lesson_2"]
    while step["id"] != stop:
        if "quiz" in step:
            right = next(o["id"] for o in step["quiz"]["options"] if o.get("correct"))
            say(tap(f"c:m1_contatto:{step['id']}:{right}"))
            step = steps[step["next"]]
        else:
            say(tap(f"c:m1_contatto:{step['id']}:{step['choices'][0]['id']}"))
            step = steps[step["choices"][0]["next"]]


def summary_text(bodies: list[dict]) -> str:
    return "\n".join(b.get("interactive", {}).get("body", {}).get("text", "") + b.get("text", {}).get("body", "")
                     for b in bodies)


def test_a_learner_moved_mid_module_is_scored_out_of_the_questions_on_their_way(service, redis_client):
    """The summary's max for learners migrated mid-module: never a score above the max, never a point they could
    not reach. Each answer is scored in the version it was given in."""
    shipped = yaml.safe_load((PROJECT_ROOT / "flows" / "m1_contatto.yaml").read_text(encoding="utf-8"))
    walk_to_lesson_2(service)
    answer_right_up_to(service, shipped, "q4")  # every question of version BASE right, q4 on screen
    releases.publish(redis_client, course_with(without_last_question))  # BASE+1 has one question fewer
    right = next(o["id"] for o in steps_by_id(shipped)["q4"]["quiz"]["options"] if o.get("correct"))
    bodies = service(tap(f"c:m1_contatto:q4:{right}"))  # answered on BASE, then BASE+1's summary
    maximum = sum(s["quiz"].get("points", 1) for s in shipped["steps"] if "quiz" in s)
    assert f"Hai fatto {maximum} punti su {maximum}." in summary_text(bodies)
    after = learner(redis_client)
    assert after.module_scores["m1_contatto"] == [maximum, maximum] and after.flow_version == BASE + 1
    assert {mark[2] for mark in after.marks["m1_contatto"].values()} == {BASE}


def test_a_learner_moved_past_a_new_question_is_not_marked_out_of_it(service, redis_client):
    shipped = yaml.safe_load((PROJECT_ROOT / "flows" / "m1_contatto.yaml").read_text(encoding="utf-8"))
    walk_to_lesson_2(service)  # on lesson 2 of BASE: BASE+1 adds a 2-point check before it, which they never see
    releases.publish(redis_client, course_with(with_a_new_first_question))
    answer_right_up_to(service, shipped, "summary")
    after = learner(redis_client)
    maximum = sum(s["quiz"].get("points", 1) for s in shipped["steps"] if "quiz" in s)
    assert after.flow_version == BASE + 1 and "m1_contatto" in after.modules_done
    assert after.module_scores["m1_contatto"] == [maximum, maximum]  # not out of maximum + 2


def test_a_live_release_this_code_cannot_read_is_replaced_by_the_shipped_folder(redis_client, caplog):
    """A deploy whose code requires a system text the live release predates: the process still starts."""
    files = course_files(PROJECT_ROOT / "flows")
    old = dict(files)
    system = yaml.safe_load(old["system.yaml"])
    missing = next(iter(system["texts"]))
    del system["texts"][missing]  # as a release published before this key was required reads
    old["system.yaml"] = yaml.safe_dump(system, allow_unicode=True, sort_keys=False)
    redis_client.hset(releases.release_key("1"), mapping=old)  # stored as an older Bottega stored it
    redis_client.set(releases.LIVE_KEY, "1")
    redis_client.set(releases.SEQUENCE_KEY, 1)
    with pytest.raises(FlowError):
        releases.Registry.serving_live(redis_client)
    registry = releases.Registry.open(redis_client, files)
    assert registry.release == "2" and releases.live_release(redis_client) == "2"
    assert releases.stored_release(redis_client, "2") == files
    assert "does not load with this version of Bottega" in caplog.text
