"""Spacing, through the real dispatcher on real Redis: missed questions come back at the learner's next
visit (not right after the quiz), and each later module's quiz mixes in one question from an earlier
module. Time passes on the conversation's own clock (``Chat.advance``)."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest

from bot.channels.whatsapp import WHATSAPP
from bot.dev.chat import Chat
from bot.model.events import EventKind
from bot.storage.keys import LearnerPart, learner_key
from bot.tutor import review
from bot.tutor.progress import Pending, Progress
from tests.test_conversation import complete_module_1

GAP_SECONDS = review.NEXT_VISIT_GAP_MS / 1000


@pytest.fixture
def talk(redis_client, course, settings):
    def make(user: str) -> Chat:
        return Chat(client=redis_client, course=course, settings=settings, channel=WHATSAPP, user_id=user,
                    out=io.StringIO())

    return make


def stored(redis_client, chat: Chat) -> Progress:
    found = Progress.from_hash(redis_client.hgetall(learner_key(f"wa:{chat.user_id}", LearnerPart.PROGRESS)))
    assert found is not None
    return found


def said(chat: Chat, since: int) -> str:
    return "\n".join(shown.text for shown in chat.transcript[since:])


def tap(chat: Chat, title: str) -> None:
    for option_id, shown in chat.shown_options:
        if shown == title:
            chat.send(kind=EventKind.CHOICE, payload=option_id, text=shown)
            return
    raise AssertionError(f"{title!r} not in {[t for _, t in chat.shown_options]}")


def missed_of_module_1(course) -> list[str]:
    """complete_module_1(wrong_first=True) answers option A wherever A is wrong."""
    flow = course.flows["m1_contatto"]
    return [f"m1_contatto:{s.id}" for s in flow.steps.values() if s.quiz and not s.quiz.options[0].correct]


def test_missed_questions_come_back_at_the_next_visit_not_right_after_the_quiz(talk, course, redis_client):
    chat = talk("393330000301")
    complete_module_1(chat, course, "it", wrong_first=True)
    missed = missed_of_module_1(course)
    assert len(missed) >= 2
    start = len(chat.transcript)
    tap(chat, "Modulo successivo")  # the same visit: the next module, no review
    assert "ripasso" not in said(chat, start) and stored(redis_client, chat).flow == course.modules[1]

    chat.advance(GAP_SECONDS - 60)  # just inside the visit: still nothing
    start = len(chat.transcript)
    chat.send_line("ciao")
    assert "ripasso" not in said(chat, start)

    chat.advance(GAP_SECONDS)  # a gap as long as NEXT_VISIT_GAP_MS since the last message: a new visit
    start = len(chat.transcript)
    chat.send_line("ciao")
    first = course.flows["m1_contatto"].steps[missed[0].split(":")[1]]
    assert f"le {min(len(missed), review.REVIEW_MAX)} domande che l'ultima volta" in said(chat, start)
    assert first.quiz.question.get("it").split("\n", 2)[1] in said(chat, start)  # without its quiz heading
    assert stored(redis_client, chat).review.queue == tuple(missed[:review.REVIEW_MAX])
    for _ in missed[:review.REVIEW_MAX]:
        key = stored(redis_client, chat).review.queue[0]
        step = course.flows["m1_contatto"].steps[key.split(":")[1]]
        tap(chat, step.quiz.correct_option.label.get("it"))
    after = stored(redis_client, chat)
    assert "Riprendiamo da dove eravamo" in chat.transcript[-1].text or "Riprendiamo" in said(chat, start)
    assert after.pending == Pending.NONE and after.flow == course.modules[1]  # back where the learner was
    assert set(after.review.reviewed) == set(missed[:review.REVIEW_MAX])

    chat.advance(2 * GAP_SECONDS)  # another visit: what was reviewed does not come back
    start = len(chat.transcript)
    chat.send_line("ciao")
    assert ("ripasso" in said(chat, start)) == (len(missed) > review.REVIEW_MAX)


def test_an_owed_review_waits_out_global_words_and_comes_before_the_module_the_learner_opens(
        talk, course, redis_client):
    chat = talk("393330000302")
    complete_module_1(chat, course, "it", wrong_first=True)
    chat.advance(GAP_SECONDS + 1)
    start = len(chat.transcript)
    chat.send_line("aiuto")  # a global word is answered as always ...
    assert "ripasso" not in said(chat, start) and stored(redis_client, chat).review.owed
    chat.send_line("menu")
    tap(chat, course.flows[course.modules[1]].short_title.get("it"))  # ... and opening a module asks first
    assert "un breve *ripasso*" in said(chat, start)
    progress = stored(redis_client, chat)
    assert progress.pending == Pending.REVIEW and progress.review.then == course.modules[1]
    for _ in progress.review.queue:
        key = stored(redis_client, chat).review.queue[0]
        step = course.flows["m1_contatto"].steps[key.split(":")[1]]
        tap(chat, step.quiz.options[0].label.get("it"))  # wrong again: asked once, not again
    after = stored(redis_client, chat)
    assert after.flow == course.modules[1] and not after.review.owed  # the module started after the review


def walk_to_last_quiz(chat: Chat, course, flow_id: str) -> None:
    flow = course.flows[flow_id]
    chat.send_line("menu")
    tap(chat, flow.short_title.get("it"))
    step = flow.steps[flow.start]
    last = [s.id for s in flow.steps.values() if s.quiz][-1]
    while step.id != last:
        if step.quiz:
            tap(chat, step.quiz.correct_option.label.get("it"))
            step = flow.steps[step.next]
        else:
            tap(chat, step.choices[0].label.get("it"))
            step = flow.steps[step.choices[0].next]


def test_each_later_quiz_mixes_in_one_unscored_question_from_an_earlier_module(talk, course, redis_client):
    later = "m2_pagina"
    chosen = []
    for user in ("393330000303", "393330000304"):
        chat = talk(user)
        complete_module_1(chat, course, "it")
        walk_to_last_quiz(chat, course, later)
        progress = stored(redis_client, chat)
        assert progress.pending == Pending.REVIEW and progress.step == [s.id for s in course.flows[later].steps.values()
                                                                         if s.quiz][-1]
        (key,) = progress.review.queue
        assert key.startswith("m1_contatto:") and progress.review.mixed == (f"{later}>{key}",)
        chosen.append(key)
        assert "una dal modulo «Restare in contatto con i clienti»" in chat.transcript[-1].text  # with the question
        step = course.flows["m1_contatto"].steps[key.split(":")[1]]
        tap(chat, step.quiz.options[0].label.get("it"))
        assert "domanda 4 di 4" in chat.transcript[-1].text  # back to the module's own last question
        chat.send_line("riprendi")  # coming back to it does not ask the earlier question again
        assert stored(redis_client, chat).pending == Pending.NONE
        flow = course.flows[later]
        last = flow.steps[progress.step]
        tap(chat, last.quiz.correct_option.label.get("it"))
        done = stored(redis_client, chat)
        assert done.module_scores[later] == [flow.max_score, flow.max_score]  # the mixed-in question is not scored
        assert "m1_contatto" not in {k.split(":")[0] for k in done.answers.get(later, {})}
    # reproducible: the same learner and module always get the same question (seeded by both)
    learner = Progress(learner_id="wa:393330000303", channel="whatsapp", user_id="393330000303",
                       modules_done=["m1_contatto"])
    assert review.spaced_question(SimpleNamespace(progress=learner, course=course), course.flows[later]) == chosen[0]


def test_learners_stored_before_marks_keep_their_review_and_old_edition_answers_are_not_misjudged(
        talk, course, redis_client):
    flow = course.flows["m1_contatto"]
    quiz = [s for s in flow.steps.values() if s.quiz]
    wrong = {s.id: next(o.id for o in s.quiz.options if not o.correct) for s in quiz[:2]}
    answers = {**{s.id: s.quiz.correct_option.id for s in quiz}, **wrong}
    score = flow.score_of(answers)
    for user, maximum, expect_review in (("393330000305", flow.max_score, True), ("393330000306", 4, False)):
        chat = talk(user)
        chat.send_line("ciao")
        tap(chat, "Italiano")
        tap(chat, "Panificio")
        lid = f"wa:{user}"
        before = stored(redis_client, chat)
        legacy = before.with_changes(modules_done=["m1_contatto"], answers={"m1_contatto": answers},
                                     module_scores={"m1_contatto": [score, maximum]}, seen_ms=0)
        data = legacy.to_hash()
        data.pop("marks")
        data.pop("seen_ms")  # a record written before marks and visits existed
        redis_client.delete(learner_key(lid, LearnerPart.PROGRESS))
        redis_client.hset(learner_key(lid, LearnerPart.PROGRESS), mapping=data)
        start = len(chat.transcript)
        chat.send_line("ciao")
        if expect_review:  # its stored result matches the live module: its answers are judged by it
            assert "le 2 domande" in said(chat, start)
            assert stored(redis_client, chat).review.queue == tuple(f"m1_contatto:{s}" for s in wrong)
        else:  # a result out of 4 was earned on the first edition: its answers are not re-judged
            assert "ripasso" not in said(chat, start)
