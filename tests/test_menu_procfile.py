"""Issue 14 on the real Procfile processes: with 11 modules every module is reachable and a finished one can
be reopened, on both channels; during a running check-up, ``menu`` cannot lead to another question whose
tap answers the check-up.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import redis as redis_lib

from bot.channels.messenger import MESSENGER
from bot.channels.whatsapp import WHATSAPP
from bot.storage.keys import LearnerPart, learner_key
from bot.tutor.progress import Progress
from tests.service import Phone, Service
from tests.test_menu import course_with

pytestmark = pytest.mark.procfile


@pytest.fixture
def eleven(tmp_path) -> Iterator[tuple[Service, object]]:
    course = course_with(tmp_path, 11)
    service = Service(tmp_path, flows_dir=tmp_path / "flows_11")
    try:
        service.start()
        yield service, course
    finally:
        service.close()


def stored(service: Service, phone: Phone) -> Progress:
    client = redis_lib.Redis.from_url(service.redis.url)
    progress = Progress.from_hash(client.hgetall(learner_key(f"{phone.channel.prefix}:{phone.user}",
                                                             LearnerPart.PROGRESS)))
    assert progress is not None
    return progress


def onboard(phone: Phone, lang: str) -> None:
    phone.send("ciao")
    phone.wait_turn()
    phone.tap("Italiano" if lang == "it" else "English")
    phone.wait_turn()
    phone.tap("Panificio" if lang == "it" else "Bakery")
    phone.wait_turn()


@pytest.mark.parametrize(("channel", "user", "lang"), [(WHATSAPP, "393330000401", "it"),
                                                        (MESSENGER, "7000000000000401", "en")])
def test_with_eleven_modules_every_module_is_reachable_and_a_finished_one_reopens(eleven, channel, user, lang):
    service, course = eleven
    more = "Altri moduli ›" if lang == "it" else "More modules ›"
    phone = Phone(service, channel, user)
    onboard(phone, lang)
    seen: set[str] = set()
    while True:
        seen |= {option_id for option_id, _ in phone.options if option_id.startswith("sys:module:")}
        if not any(title == more for _, title in phone.options):
            break
        phone.tap(more)
        phone.wait_turn()
    assert seen == {f"sys:module:{flow_id}" for flow_id in course.modules}
    assert phone.limit_violations() == []

    flow = course.flows["m1_contatto"]
    phone.send("menu")
    phone.wait_turn()
    phone.tap(flow.short_title.get(lang))
    phone.wait_turn()
    step = flow.steps[flow.start]
    while not step.end:
        if step.quiz:
            phone.tap(step.quiz.correct_option.label.get(lang))
            step = flow.steps[step.next]
        else:
            phone.tap(step.choices[0].label.get(lang))
            step = flow.steps[step.choices[0].next]
        phone.wait_turn()
    score = stored(service, phone).flow_score("m1_contatto")
    phone.send("menu")
    phone.wait_turn()
    phone.tap("✓ " + flow.short_title.get(lang))  # the finished module, reopened
    phone.wait_turn()
    step = flow.steps[flow.start]
    while not step.quiz:
        phone.tap(step.choices[0].label.get(lang))
        phone.wait_turn()
        step = flow.steps[step.choices[0].next]
    phone.tap("Salto il quiz" if lang == "it" else "Skip the quiz")
    phone.wait_turn()
    after = stored(service, phone)
    assert after.modules_done == ["m1_contatto"] and after.flow_score("m1_contatto") == score
    assert after.revisiting == ""
    assert phone.limit_violations() == []


def test_menu_during_the_checkup_cannot_answer_it_with_another_questions_tap(eleven):
    service, course = eleven
    phone = Phone(service, WHATSAPP, "393330000402")
    onboard(phone, "it")
    first_menu = phone.options
    phone.tap("Check-up digitale")
    phone.wait_turn()
    phone.tap("Inizia il check-up")
    phone.wait_turn()
    phone.send("menu")
    shown = phone.wait_turn()
    assert [title for _, title in shown[-1].options] == ["Continuo il check-up", "Consegno adesso"]
    module_row = next(option for option in first_menu if option[0] == "sys:module:m1_contatto")
    quiz = course.flows["m1_contatto"].steps["q1"].quiz
    stale_taps = (module_row, (f"c:m1_contatto:q1:{quiz.options[0].id}", quiz.options[0].label.get("it")))
    for stale in stale_taps:  # the old module row asks again whether to hand the check-up in; the quiz
        raw = json.dumps(phone._payload(reply=stale)).encode()  # button is refused as an old button
        assert service.post(raw).status_code == 200
        phone.wait_turn()
        assert all(option_id.startswith("sys:checkup:") for option_id, _ in phone.options)
        state = stored(service, phone)
        assert state.checkup.running and state.checkup.index == 0 and state.flow == ""
    phone.tap("Continuo il check-up")
    phone.wait_turn()
    assert all(option_id.startswith("k:") for option_id, _ in phone.options)
    phone.tap(phone.options[0][1])
    phone.wait_turn()
    assert stored(service, phone).checkup.index == 1
