"""Publishing the course's second edition over the first under learners who are mid-quiz, on the real
Procfile processes (gunicorn web + Dramatiq worker) against the fake Graph API on loopback.

The first edition is a fixture (``tests/fixtures/first_edition``, see its README): the web process
publishes it as the first release; learners walk into the middle of its quizzes; ``bottega flows
publish`` then makes ``flows/`` (the second edition: every module's version bumped, ``migrate:`` for the
quiz steps it removed) the live course, and the learners tap the buttons still on their screens.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as redis_lib

from bot.channels.whatsapp import WHATSAPP
from bot.flows.loader import load_course
from bot.storage.keys import LearnerPart, learner_key
from bot.tutor.progress import Progress
from config.settings import PROJECT_ROOT
from tests.service import Phone, Service

pytestmark = pytest.mark.procfile

FIRST_EDITION = Path(__file__).resolve().parent / "fixtures" / "first_edition"


@pytest.fixture
def first_edition(tmp_path) -> Path:
    folder = tmp_path / "first_edition"
    shutil.copytree(FIRST_EDITION, folder, ignore=shutil.ignore_patterns("*.md"))
    shutil.copy(PROJECT_ROOT / "flows" / "system.yaml", folder / "system.yaml")  # system texts carry no version
    return folder


@pytest.fixture
def service(tmp_path, first_edition) -> Iterator[Service]:
    svc = Service(tmp_path, flows_dir=first_edition)  # nothing is live yet: the web process publishes it
    try:
        svc.start()
        yield svc
    finally:
        svc.close()


def stored(service: Service, phone: Phone) -> Progress:
    raw = redis_lib.Redis.from_url(service.redis.url).hgetall(learner_key(f"wa:{phone.user}", LearnerPart.PROGRESS))
    progress = Progress.from_hash(raw)
    assert progress is not None
    return progress


def walk(phone: Phone, flow, stop: str, lang: str = "it") -> None:
    """Open ``flow`` from the menu and answer everything right until ``stop`` is on screen."""
    phone.send("menu")
    phone.wait_turn()
    if not any(title.startswith(flow.short_title.get(lang)) for _, title in phone.options):
        phone.tap("Altri moduli")
        phone.wait_turn()
    phone.tap(flow.short_title.get(lang))
    phone.wait_turn()
    step = flow.steps[flow.start]
    while step.id != stop:
        if step.quiz:
            phone.tap(step.quiz.correct_option.label.get(lang))
            step = flow.steps[step.next]
        else:
            phone.tap(step.choices[0].label.get(lang))
            step = flow.steps[step.choices[0].next]
        phone.wait_turn()


def texts(shown) -> str:
    return "\n".join(s.text for s in shown)


def test_learners_mid_quiz_in_the_first_edition_continue_without_loss_when_the_second_is_published(
        service, first_edition, course):
    old = load_course(first_edition)
    new_flows = course.flows
    on_q6 = Phone(service, WHATSAPP, "393330000501")  # on m2's q6, a question the second edition removed
    on_q2 = Phone(service, WHATSAPP, "393330000502")  # on m1's q2, a question both editions have
    for phone, business in ((on_q6, "Parrucchiere"), (on_q2, "Panificio")):
        phone.send("ciao")
        phone.wait_turn()
        phone.tap("Italiano")
        phone.wait_turn()
        phone.tap(business)
        phone.wait_turn()
    walk(on_q6, old.flows["m2_pagina"], "q6")
    walk(on_q2, old.flows["m1_contatto"], "q2")
    before = {phone.user: stored(service, phone) for phone in (on_q6, on_q2)}
    assert (before[on_q6.user].step, before[on_q6.user].flow_version) == ("q6", 1)
    assert (before[on_q2.user].step, before[on_q2.user].flow_version) == ("q2", 1)

    published = subprocess.run([sys.executable, "-m", "bot.cli", "flows", "publish", str(PROJECT_ROOT / "flows")],
                               env=service.env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert published.returncode == 0, published.stdout + published.stderr
    for module in old.modules:  # every module of the first edition was bumped
        assert f"{module} 1→{new_flows[module].version}" in published.stdout, published.stdout
    for module in ("m11_google", "m12_ai", "m13_clienti"):
        assert module in published.stdout

    # m2: q6 is gone in the second edition; the learner answers the q6 still on their screen
    q6 = old.flows["m2_pagina"].steps["q6"]
    on_q6.tap(q6.quiz.correct_option.label.get("it"))
    shown = on_q6.wait_turn()
    old_points = old.flows["m2_pagina"].max_score
    assert "✅ Giusto!" in texts(shown)
    assert f"Hai fatto {old_points} punti su {old_points}." in texts(shown)  # never "6 su 5": scored where answered
    after = stored(service, on_q6)
    assert "m2_pagina" in after.modules_done and after.flow_version == new_flows["m2_pagina"].version
    assert after.module_scores["m2_pagina"] == [old_points, old_points]
    on_q6.tap("Modulo successivo")  # and on into the second edition
    shown = on_q6.wait_turn()
    assert new_flows[course.modules[0]].title.get("it") in texts(shown)

    # m1: q2 is in both editions; the answer counts in the first, the second edition takes over at q3
    q2 = old.flows["m1_contatto"].steps["q2"]
    on_q2.tap(q2.quiz.correct_option.label.get("it"))
    shown = on_q2.wait_turn()
    new_m1 = new_flows["m1_contatto"]
    assert new_m1.steps["q3"].quiz.question.get("it").split("\n")[1] in texts(shown)
    for step_id in ("q3", "q4"):
        on_q2.tap(new_m1.steps[step_id].quiz.correct_option.label.get("it"))
        shown = on_q2.wait_turn()
    assert "Hai fatto 4 punti su 4." in texts(shown)  # q1, q2 of the first edition, q3, q4 of the second
    after = stored(service, on_q2)
    assert after.flow_version == new_m1.version and "m1_contatto" in after.modules_done
    assert {step: mark[2] for step, mark in after.marks["m1_contatto"].items()} == {
        "q1": 1, "q2": 1, "q3": new_m1.version, "q4": new_m1.version}

    for phone in (on_q6, on_q2):  # nothing else was lost, and every message fitted its channel
        now, then = stored(service, phone), before[phone.user]
        assert (now.created_at_ms, now.lang, now.business, now.lang_chosen) == \
            (then.created_at_ms, then.lang, then.business, then.lang_chosen)
        assert phone.limit_violations() == []
