"""The digital check-up, the review and the certificate, through the real dispatcher on real Redis.

Time passes on the conversation's own clock (``Chat.advance``): the timers are the real ones, fired by
the real sweeper (``bot.delivery.timers.sweep``), and each must fire exactly once.
"""

from __future__ import annotations

import dataclasses
import io
import json

import pytest
from pypdf import PdfReader

from bot.channels.whatsapp import WHATSAPP
from bot.dev.chat import Chat
from bot.model.events import Channel, EventKind
from bot.storage import certificate_store
from bot.storage.keys import LearnerPart, learner_key
from bot.tutor import checkup
from bot.tutor.progress import Pending, Progress
from webhooks import create_app


@pytest.fixture
def talk(redis_client, course, settings):
    def make(user: str = "393330000200", channel: Channel = WHATSAPP) -> Chat:
        chat = Chat(client=redis_client, course=course, settings=settings, channel=channel, user_id=user,
                    out=io.StringIO())
        chat.send_line("ciao")
        tap(chat, "Italiano")
        tap(chat, "Panificio")
        return chat

    return make


def tap(chat: Chat, title: str) -> None:
    for option_id, shown in chat.shown_options:
        if shown == title:
            chat.send(kind=EventKind.CHOICE, payload=option_id, text=shown)
            return
    raise AssertionError(f"{title!r} not in {[t for _, t in chat.shown_options]}")


def tap_number(chat: Chat, number: int) -> None:
    option_id, title = chat.shown_options[number - 1]
    chat.send(kind=EventKind.CHOICE, payload=option_id, text=title)


def progress(redis_client, chat: Chat) -> Progress:
    found = Progress.from_hash(redis_client.hgetall(learner_key(f"{chat.channel.prefix}:{chat.user_id}",
                                                                LearnerPart.PROGRESS)))
    assert found is not None
    return found


def said(chat: Chat, since: int) -> str:
    return "\n".join(shown.text for shown in chat.transcript[since:])


def start_checkup(chat: Chat) -> None:
    chat.send_line("menu")
    tap(chat, "Check-up digitale")
    tap(chat, "Inizia il check-up")


def test_the_order_is_random_per_attempt_but_reproducible(talk, redis_client, course):
    first, second = talk("393330000201"), talk("393330000202")
    start_checkup(first)
    start_checkup(second)
    order_a = progress(redis_client, first).checkup.order
    order_b = progress(redis_client, second).checkup.order
    assert sorted(order_a) == sorted(q.id for q in course.checkup.questions)
    assert order_a != order_b  # another learner, another order
    ids = [q.id for q in course.checkup.questions]
    assert tuple(checkup.question_order("wa:393330000201", 1, ids)) == order_a  # reproducible
    assert checkup.question_order("wa:393330000201", 2, ids) != order_a  # a retake gets a new order


def test_time_per_question_is_recorded_and_one_attempt_runs_at_a_time(talk, redis_client):
    chat = talk()
    start_checkup(chat)
    chat.advance(42)
    tap_number(chat, 1)
    state = progress(redis_client, chat).checkup
    first = state.order[0]
    assert 42_000 <= state.ms[first] < 43_000
    chat.send_line("menu")  # while it runs, the menu first asks whether to hand it in
    assert [title for _, title in chat.shown_options] == ["Continuo il check-up", "Consegno adesso"]
    tap(chat, "Continuo il check-up")  # carrying on shows the current question: still one attempt
    assert progress(redis_client, chat).checkup.attempt == 1
    assert "(2/25)" in chat.transcript[-1].text


def test_warnings_and_the_automatic_submission_fire_exactly_once(talk, redis_client, course):
    chat = talk()
    start_checkup(chat)
    tap_number(chat, 1)
    marks = []
    for seconds in (1200, 300, 300, 600):
        start = len(chat.transcript)
        chat.advance(seconds)
        chat.fire_timers()  # a second sweeper pass at the same moment: nothing fires twice
        marks.append(said(chat, start))
    assert marks[0].count("restano 10 min") == 1 and "Risposte date: 1 su 25" in marks[0]
    assert marks[1].count("restano 5 min") == 1
    assert marks[2].count("Tempo scaduto") == 1 and "Il tuo risultato:" in marks[2]
    assert marks[3] == ""
    state = progress(redis_client, chat).checkup
    assert state.running is False and state.result.timed_out is True
    assert state.result.answered == 1
    assert redis_client.zcard(learner_key(f"wa:{chat.user_id}", LearnerPart.TIMERS)) == 0


def test_the_plan_names_the_three_weakest_areas_and_its_buttons_start_their_modules(talk, redis_client, course):
    chat = talk()
    start_checkup(chat)
    checkup = course.checkup
    best = {q.id: max(q.options, key=lambda o: o.points).id for q in checkup.questions}
    worst = {q.id: min(q.options, key=lambda o: o.points).id for q in checkup.questions}
    weak_areas = {"advertising", "measuring", "selling"}
    for _ in checkup.questions:
        state = progress(redis_client, chat).checkup
        question = next(q for q in checkup.questions if q.id == state.order[state.index])
        choice = worst if question.area in weak_areas else best
        chat.send(kind=EventKind.CHOICE, payload=f"k:{state.attempt}:{question.id}:{choice[question.id]}")
    result = progress(redis_client, chat).checkup.result
    assert result.areas["presence"] == 100 and result.areas["advertising"] == 0
    plan_modules = [option_id.removeprefix("sys:module:") for option_id, _ in chat.shown_options]
    expected = [a.module for a in checkup.areas if a.id in weak_areas]
    assert plan_modules == expected
    tap_number(chat, 2)
    assert progress(redis_client, chat).flow == expected[1]


def test_a_certificate_is_issued_after_every_module_and_a_passed_checkup(talk, redis_client, course, settings):
    chat = talk()
    lid = f"wa:{chat.user_id}"
    stored = progress(redis_client, chat)  # a learner who finished every module (walked in other tests)
    done = stored.with_changes(modules_done=list(course.modules), rev=stored.rev)
    redis_client.hset(learner_key(lid, LearnerPart.PROGRESS), mapping=done.to_hash())
    start_checkup(chat)
    for _ in course.checkup.questions:
        state = progress(redis_client, chat).checkup
        question = next(q for q in course.checkup.questions if q.id == state.order[state.index])
        top = max(question.options, key=lambda o: o.points)
        chat.send(kind=EventKind.CHOICE, payload=f"k:{state.attempt}:{question.id}:{top.id}")
    assert progress(redis_client, chat).pending == Pending.CERTIFICATE_NAME
    chat.send_line("Nicolò Bianchi")
    chat.send_line("Forno Bianchi")
    issued = progress(redis_client, chat).certificate
    certificate = certificate_store.by_code(redis_client, issued.code)
    assert certificate is not None and certificate.name == "Nicolò Bianchi" and certificate.score_percent == 100
    assert issued.code in chat.transcript[-1].text

    app = create_app(settings, redis_client=redis_client, notify=lambda lid: None).test_client()
    pdf = app.get(f"/certificates/{certificate.token}.pdf")
    assert pdf.status_code == 200
    text = PdfReader(io.BytesIO(pdf.data)).pages[0].extract_text()
    assert "Nicolò Bianchi" in text and "Forno Bianchi" in text and certificate.code in text
    page = app.get(f"/verify/{certificate.code}")
    assert page.status_code == 200 and "Nicolò Bianchi" in page.get_data(as_text=True)
    assert chat.user_id not in page.get_data(as_text=True)
    assert app.get("/verify/BTG-AAAA-AAAA").status_code == 404


def test_clock_events_send_no_read_receipt(talk, redis_client):
    chat = talk()
    start_checkup(chat)
    lid = f"wa:{chat.user_id}"
    chat.dispatcher = dataclasses.replace(chat.dispatcher, notify=lambda learner_id: None)  # keep the outbox
    chat.advance(1200)
    bodies = [json.loads(raw)["body"] for raw in redis_client.lrange(learner_key(lid, LearnerPart.OUTBOX), 0, -1)]
    assert bodies, "the warning was queued"
    assert not [b for b in bodies if b.get("status") == "read"]  # only learners' messages are marked read


def test_an_attempt_whose_questions_were_unpublished_ends_quietly(talk, redis_client):
    chat = talk()
    start_checkup(chat)
    lid = f"wa:{chat.user_id}"
    stored = progress(redis_client, chat)
    gone = stored.checkup.with_changes(order=("no_longer_there", *stored.checkup.order[1:]))
    redis_client.hset(learner_key(lid, LearnerPart.PROGRESS), mapping=stored.with_changes(checkup=gone).to_hash())
    chat.send_line("riprendi")  # no crash: the menu comes back and the check-up can start again
    assert any(title == "Check-up digitale" for _, title in chat.shown_options)
    chat.advance(1800)  # its clock events do nothing
    tap(chat, "Check-up digitale")
    assert any(title == "Inizia il check-up" for _, title in chat.shown_options)


def answer_all(chat: Chat, redis_client, course, pick) -> None:
    """Answer every question of the running attempt with ``pick(question) -> option``."""
    for _ in course.checkup.questions:
        state = progress(redis_client, chat).checkup
        question = next(q for q in course.checkup.questions if q.id == state.order[state.index])
        chat.send(kind=EventKind.CHOICE, payload=f"k:{state.attempt}:{question.id}:{pick(question).id}")


def test_not_for_me_never_penalises_and_the_certificate_reads_the_knowledge_questions_only(
        talk, redis_client, course):
    chat = talk("393330000203")
    stored = progress(redis_client, chat)
    done = stored.with_changes(modules_done=list(course.modules), rev=stored.rev)
    redis_client.hset(learner_key(f"wa:{chat.user_id}", LearnerPart.PROGRESS), mapping=done.to_hash())
    start_checkup(chat)
    knowledge = [q for q in course.checkup.questions if q.kind == "knowledge"]
    right = set(q.id for q in knowledge[: -(len(knowledge) * 3 // 10)])  # about 70 % of them right

    def pick(question):
        if question.kind == "knowledge":
            return max(question.options, key=lambda o: o.points) if question.id in right else \
                min(question.options, key=lambda o: o.points)
        not_for_me = [o for o in question.options if o.not_applicable]
        return not_for_me[0] if not_for_me else min(question.options, key=lambda o: o.points)

    answer_all(chat, redis_client, course, pick)
    result = progress(redis_client, chat).checkup.result
    scored = [q for q in course.checkup.questions if not any(o.not_applicable for o in q.options)]
    expected_overall = round(100 * 2 * len(right) / sum(q.max_points for q in scored))
    assert result.knowledge_percent == round(100 * len(right) / len(knowledge)) >= course.checkup.pass_percent
    assert result.percent == expected_overall < course.checkup.pass_percent  # the old rule would have failed it
    old_rule = round(100 * 2 * len(right) / sum(q.max_points for q in course.checkup.questions))
    assert old_rule < expected_overall  # "not for me" no longer counts as 0 points
    assert all(q.area in result.areas for q in knowledge)
    assert progress(redis_client, chat).pending == Pending.CERTIFICATE_NAME  # passed on knowledge alone
    chat.send_line("Giulia Neri")
    chat.send_line("Salone Giulia")
    certificate = certificate_store.by_code(redis_client, progress(redis_client, chat).certificate.code)
    assert certificate is not None and certificate.score_percent == result.knowledge_percent


def test_the_plan_links_each_weak_area_to_the_first_module_not_done_and_one_action(talk, redis_client, course):
    chat = talk("393330000204")
    checkup = course.checkup
    presence = next(a for a in checkup.areas if a.id == "presence")
    assert len(presence.modules) >= 2
    stored = progress(redis_client, chat)
    done = stored.with_changes(modules_done=[presence.modules[0]], rev=stored.rev)  # its main module is done
    redis_client.hset(learner_key(f"wa:{chat.user_id}", LearnerPart.PROGRESS), mapping=done.to_hash())
    start_checkup(chat)
    weak = {"presence", "reputation", "measuring"}
    answer_all(chat, redis_client, course, lambda q: min(q.options, key=lambda o: o.points) if q.area in weak
               else max(q.options, key=lambda o: o.points))
    plan = chat.transcript[-1]
    modules = [option_id.removeprefix("sys:module:") for option_id, _ in plan.options]
    reputation = next(a for a in checkup.areas if a.id == "reputation")
    assert modules[0] == presence.modules[1]  # presence: the first of its modules not done yet
    assert modules[1] == next(m for m in reputation.modules if m not in (presence.modules[0], modules[0]))
    for area in (a for a in checkup.areas if a.id in weak):
        assert area.action.get("it") in plan.text
    assert f"→ modulo «{course.flows[presence.modules[1]].title.get('it')}»" in plan.text
