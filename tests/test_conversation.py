"""Whole conversations through the real path minus HTTP: Dispatcher -> engine -> renderer -> Redis outbox.

Each test talks as a learner via ``bot.dev.chat.Chat`` (the same object ``bottega chat`` uses) on a real
Redis, and reads what the phone would show from the rendered API bodies.
"""

from __future__ import annotations

import io

import pytest

from bot.channels.messenger import MESSENGER
from bot.channels.whatsapp import WHATSAPP
from bot.dev.chat import Chat
from bot.model.events import Channel, EventKind
from bot.storage.keys import LearnerPart, learner_key
from bot.tutor.progress import Progress


@pytest.fixture
def talk(redis_client, course, settings):
    def make(channel: Channel = WHATSAPP, user: str = "393330000009") -> Chat:
        return Chat(client=redis_client, course=course, settings=settings, channel=channel, user_id=user,
                    out=io.StringIO())

    return make


def said(chat: Chat, since: int = 0) -> str:
    return "\n".join(shown.text for shown in chat.transcript[since:])


def titles(chat: Chat) -> list[str]:
    return [title for _, title in chat.shown_options]


def tap(chat: Chat, title_start: str) -> None:
    """Tap the option whose title starts with ``title_start`` (a button payload, as on the phone)."""
    for option_id, title in chat.shown_options:
        if title.startswith(title_start):
            chat.send(kind=EventKind.CHOICE, payload=option_id, text=title)
            return
    raise AssertionError(f"no option starting with {title_start!r} in {titles(chat)}")


def progress_of(redis_client, chat: Chat) -> Progress:
    lid = f"{chat.channel.prefix}:{chat.user_id}"
    progress = Progress.from_hash(redis_client.hgetall(learner_key(lid, LearnerPart.PROGRESS)))
    assert progress is not None
    return progress


def complete_module_1(chat: Chat, course, lang: str, wrong_first: bool = False) -> None:
    flow = course.flows["m1_contatto"]
    chat.send_line("ciao")
    tap(chat, "Italiano" if lang == "it" else "English")
    tap(chat, "Panificio" if lang == "it" else "Bakery")
    tap(chat, flow.short_title.get(lang)[:10])
    step = flow.steps[flow.start]
    while not step.end:
        if step.quiz:
            option = step.quiz.options[0] if wrong_first and not step.quiz.options[0].correct \
                else step.quiz.correct_option
            tap(chat, option.label.get(lang))
            step = flow.steps[step.next]
        else:
            tap(chat, step.choices[0].label.get(lang))
            step = flow.steps[step.choices[0].next]


@pytest.mark.parametrize("lang", ["it", "en"])
@pytest.mark.parametrize("channel", [WHATSAPP, MESSENGER])
def test_module_1_completes_in_both_languages_and_channels(talk, course, redis_client, lang, channel):
    chat = talk(channel)
    complete_module_1(chat, course, lang)
    progress = progress_of(redis_client, chat)
    assert progress.modules_done == ["m1_contatto"]
    max_score = course.flows["m1_contatto"].max_score
    assert max_score >= 4  # the retrieval check and the quiz, every answer right
    assert progress.module_scores["m1_contatto"] == [max_score, max_score]
    assert progress.lang == lang
    summary = course.flows["m1_contatto"].steps["summary"].say[0].get(lang)
    assert summary.split("{")[0].strip()[:30] in said(chat)
    assert str(max_score) in said(chat, -3)


def test_first_message_introduces_an_automated_tutor_and_asks_the_language_then_the_business(talk, course):
    chat = talk()
    chat.send_line("buongiorno")
    assert course.texts["welcome"].get("it").split("\n")[0] in said(chat)
    assert titles(chat) == ["Italiano", "English"]
    tap(chat, "English")
    assert titles(chat) == [kind.label.get("en") for kind in course.business_types]
    tap(chat, "Hair salon")
    assert "hair salon" in said(chat, -2)
    assert titles(chat)[:2] == [course.checkup.short_title.get("en"), course.flows["m1_contatto"].short_title.get("en")]


def test_wrong_answers_get_feedback_and_count_in_the_score(talk, course, redis_client):
    chat = talk()
    complete_module_1(chat, course, "it", wrong_first=True)
    progress = progress_of(redis_client, chat)
    flow = course.flows["m1_contatto"]
    wrong_count = sum(1 for s in flow.steps.values() if s.quiz and not s.quiz.options[0].correct)
    assert progress.module_scores["m1_contatto"][0] == flow.max_score - wrong_count
    assert course.texts["wrong_prefix"].get("it") in said(chat)


@pytest.mark.parametrize("word,key", [
    ("AIUTO!", "help"), ("help", "help"), ("Progressi", "progress"), ("progress?", "progress"),
])
def test_global_words_work_anywhere_ignoring_case_and_punctuation(talk, course, word, key):
    chat = talk()
    chat.send_line("ciao")
    tap(chat, "Italiano")
    tap(chat, "Ferramenta")
    tap(chat, course.flows["m1_contatto"].short_title.get("it")[:10])
    before = tuple(chat.shown_options)
    start = len(chat.transcript)
    chat.send_line(word)
    first_line = course.texts[key].get("it" if key == "help" or word[0] in "AP" else "it").split("{")[0][:20]
    assert first_line in said(chat, start)
    assert chat.shown_options == before  # the current step is shown again afterwards


def test_menu_lingua_and_accents(talk, course):
    chat = talk()
    chat.send_line("ciao")
    tap(chat, "Italiano")
    tap(chat, "Ferramenta")
    chat.send_line("Menù")
    assert course.texts["menu_intro"].get("it") in said(chat, -1)
    chat.send_line("lingua")
    assert titles(chat) == ["Italiano", "English"]
    tap(chat, "English")
    assert course.texts["language_set"].get("en") in said(chat)


def test_stop_asks_once_then_opts_out_and_still_answers(talk, course, redis_client):
    chat = talk()
    chat.send_line("ciao")
    tap(chat, "Italiano")
    tap(chat, "Ferramenta")
    chat.send_line("basta")
    assert course.texts["stop_confirm"].get("it") in said(chat, -1)
    tap(chat, course.texts["label_yes"].get("it"))
    assert progress_of(redis_client, chat).opted_out
    start = len(chat.transcript)
    chat.send_line("menu")  # a learner who writes again is answered
    assert course.texts["menu_intro"].get("it") in said(chat, start)
    chat.send_line("riprendi")
    assert not progress_of(redis_client, chat).opted_out


def test_restart_asks_to_confirm_and_resets_progress(talk, course, redis_client):
    chat = talk()
    complete_module_1(chat, course, "it")
    chat.send_line("ricomincia")
    tap(chat, course.texts["label_no"].get("it"))
    assert progress_of(redis_client, chat).modules_done == ["m1_contatto"]
    chat.send_line("restart")
    tap(chat, course.texts["label_yes"].get("it"))
    progress = progress_of(redis_client, chat)
    assert progress.modules_done == [] and progress.flow == ""


def test_old_button_and_unknown_text_get_a_polite_reprompt(talk, course):
    chat = talk()
    chat.send_line("ciao")
    tap(chat, "Italiano")
    tap(chat, "Ferramenta")
    tap(chat, course.flows["m1_contatto"].short_title.get("it")[:10])
    old = chat.shown_options[0][0]
    tap(chat, chat.shown_options[0][1])  # move on
    now = tuple(chat.shown_options)
    start = len(chat.transcript)
    chat.send(kind=EventKind.CHOICE, payload=old)
    assert course.texts["stale_button"].get("it") in said(chat, start)
    assert chat.shown_options == now
    chat.send(kind=EventKind.CHOICE, payload="c:nope:nope:nope")
    assert chat.shown_options == now
    start = len(chat.transcript)
    chat.send_line("boh, non so")  # within the pause after the stale-button note: no second note
    assert said(chat, start) == ""
    chat.advance(31)
    chat.send_line("boh, non so")
    assert course.texts["not_understood"].get("it") in said(chat, start)
    assert chat.shown_options == now


def test_typing_a_label_or_number_chooses_it(talk, course, redis_client):
    chat = talk()
    chat.send_line("ciao")
    chat.send(kind=EventKind.TEXT, text="english")  # label typed, different case
    assert progress_of(redis_client, chat).lang == "en"
    chat.send(kind=EventKind.TEXT, text="hardware store!")
    assert progress_of(redis_client, chat).business == "hardware"
    chat.send(kind=EventKind.TEXT, text="2")  # number typed: the first module in the menu (after the check-up)
    assert progress_of(redis_client, chat).flow == "m1_contatto"


def test_media_gets_a_friendly_reply_and_is_never_an_answer(talk, course, redis_client):
    chat = talk()
    chat.send_line("ciao")
    tap(chat, "Italiano")
    tap(chat, "Ferramenta")
    before = progress_of(redis_client, chat)
    start = len(chat.transcript)
    chat.send(kind=EventKind.MEDIA)
    assert course.texts["media_reply"].get("it").split("\n")[0] in said(chat, start)
    after = progress_of(redis_client, chat)
    assert (after.flow, after.step, after.answers) == (before.flow, before.step, before.answers)
