"""A person when they need one (issue 12 §2), through the real dispatcher on Redis: the offer (a global word
or three texts Bottega cannot read), the pause, the inbox (list, show, reply, hand back), riprendi, and how an
admin's reply may go on each channel (inside the window; Messenger's HUMAN_AGENT tag; WhatsApp refused).
"""

from __future__ import annotations

import dataclasses
import io
import json

import pytest

from bot import composition
from bot.channels.instagram import INSTAGRAM
from bot.channels.messenger import MESSENGER
from bot.channels.whatsapp import WHATSAPP
from bot.dev.chat import Chat
from bot.handover import Inbox, InboxError
from bot.model.events import Channel, EventKind
from bot.storage.keys import (
    LEGACY_HANDOVER_INDEX_KEY,
    LearnerPart,
    handover_index_keys,
    learner_handover_index_key,
    learner_key,
)
from bot.tutor.handover import Route
from bot.tutor.progress import Pending, Progress

HOUR = 3600.0


@pytest.fixture
def talk(redis_client, course, settings):
    def make(channel: Channel = WHATSAPP, user: str = "393330000701") -> Chat:
        return Chat(client=redis_client, course=course, settings=settings, channel=channel, user_id=user,
                    out=io.StringIO())

    return make


def inbox_for(chat: Chat, settings) -> Inbox:
    """The inbox on the chat's dispatcher, on the chat's clock (which the tests move)."""
    return Inbox(dataclasses.replace(chat.dispatcher, clock=chat.now_ms), composition.proactive_policy(settings))


def lid(chat: Chat) -> str:
    return f"{chat.channel.prefix}:{chat.user_id}"


def stored(redis_client, chat: Chat) -> Progress:
    progress = Progress.from_hash(redis_client.hgetall(learner_key(lid(chat), LearnerPart.PROGRESS)))
    assert progress is not None
    return progress


def tap(chat: Chat, title_start: str) -> None:
    for option_id, title in chat.shown_options:
        if title.startswith(title_start):
            chat.send(kind=EventKind.CHOICE, payload=option_id, text=title)
            return
    raise AssertionError(f"no option {title_start!r} in {chat.shown_options}")


def into_lesson(chat: Chat, course, lang: str = "it") -> None:
    """A learner in module 1, past its first step."""
    chat.send_line("ciao")
    tap(chat, "Italiano" if lang == "it" else "English")
    tap(chat, "Panificio" if lang == "it" else "Bakery")
    tap(chat, course.flows["m1_contatto"].short_title.get(lang)[:10])
    chat.send(kind=EventKind.CHOICE, payload=chat.shown_options[0][0], text=chat.shown_options[0][1])


def said_since(chat: Chat, start: int) -> str:
    return "\n".join(shown.text for shown in chat.transcript[start:])


def test_operatore_offers_a_person_and_yes_pauses_the_bot_keeping_every_message(talk, course, redis_client,
                                                                               settings):
    chat = talk()
    into_lesson(chat, course)
    where = stored(redis_client, chat)
    chat.send_line("Operatore!")
    assert stored(redis_client, chat).pending == Pending.HANDOVER_CONFIRM
    tap(chat, "Sì, una persona")
    learner = stored(redis_client, chat)
    assert learner.handover.open and learner.handover.reason == "asked"
    assert "entro 24 ore" in chat.transcript[-1].text, "the learner is told when to expect an answer"
    before = len(chat.transcript)
    chat.send_line("Come faccio a mettere gli orari su Google?")
    chat.send_line("menu")
    assert len(chat.transcript) == before, "while a person answers, the bot says nothing"
    kept = [m.text for m in stored(redis_client, chat).handover.messages if m.who == "learner"]
    assert kept == ["Come faccio a mettere gli orari su Google?", "menu"]
    after = stored(redis_client, chat)
    assert (after.flow, after.step, after.pending) == (where.flow, where.step, where.pending)

    inbox = inbox_for(chat, settings)
    (waiting,) = inbox.list_open()
    assert waiting.learner_id == lid(chat) and waiting.unanswered == 2 and not waiting.answered
    assert waiting.route is Route.FREE_FORM and waiting.last_text == "menu"


def test_three_unrecognised_texts_in_a_row_offer_a_person_and_no_goes_back_to_the_step(talk, course, redis_client):
    chat = talk(user="393330000702")
    into_lesson(chat, course)
    where = stored(redis_client, chat)
    chat.send_line("boh")
    chat.advance(40)  # past the "non ho capito" pause
    chat.send_line("non capisco")
    chat.advance(40)
    assert stored(redis_client, chat).pending != Pending.HANDOVER_CONFIRM
    chat.send_line("ma cosa devo fare")
    assert stored(redis_client, chat).pending == Pending.HANDOVER_CONFIRM
    assert "non ci stiamo capendo" in chat.transcript[-1].text
    tap(chat, "No, continuo qui")
    learner = stored(redis_client, chat)
    assert not learner.handover.open and (learner.flow, learner.step, learner.pending) == \
        (where.flow, where.step, where.pending)
    assert learner.handover.unrecognised == 0


def test_a_recognised_answer_resets_the_count(talk, course, redis_client):
    chat = talk(user="393330000703")
    into_lesson(chat, course)
    chat.send_line("boh")
    chat.send_line("boh?")
    chat.send_line("1")  # the first option on screen: understood
    chat.send_line("boh!")
    assert stored(redis_client, chat).pending != Pending.HANDOVER_CONFIRM


def test_an_admin_reply_reaches_the_learner_and_riprendi_resumes_exactly_where_they_were(
        talk, course, redis_client, settings):
    chat = talk(user="393330000704")
    into_lesson(chat, course)
    where = stored(redis_client, chat)
    chat.send_line("persona")
    tap(chat, "Sì")
    chat.send_line("Ho una domanda sul mio profilo")
    inbox = inbox_for(chat, settings)
    before = len(chat.transcript)
    sent = inbox.reply(lid(chat), "Ciao! Sono Giulia del team: dimmi pure.", admin="Giulia", request_id="r1")
    assert sent.tag == "" and chat.transcript[before].text == "Ciao! Sono Giulia del team: dimmi pure."
    with pytest.raises(InboxError, match="already sent"):
        inbox.reply(lid(chat), "Ciao! Sono Giulia del team: dimmi pure.", admin="Giulia", request_id="r1")
    assert len(chat.transcript) == before + 1, "exactly once per request id"
    talk_shown = inbox.show(lid(chat))
    assert [m.who for m in talk_shown.messages] == ["bot", "learner", "admin"]
    assert talk_shown.where.startswith("m1_contatto /")
    assert inbox.list_open()[0].answered
    chat.send_line("Riprendi")
    learner = stored(redis_client, chat)
    assert not learner.handover.open and learner.handover.closed_by == "learner"
    assert (learner.flow, learner.step, learner.pending) == (where.flow, where.step, where.pending)
    assert "Riprendiamo" in said_since(chat, before + 1)
    assert chat.shown_options, "the step's choices are on screen again"
    assert inbox.list_open() == []


def test_the_admins_hand_back_resumes_the_course_and_tells_the_learner(talk, course, redis_client, settings):
    chat = talk(MESSENGER, "7400000000000705")
    into_lesson(chat, course)
    where = stored(redis_client, chat)
    chat.send_line("human")
    tap(chat, "Sì")
    inbox = inbox_for(chat, settings)
    before = len(chat.transcript)
    inbox.hand_back(lid(chat), admin="Giulia")
    learner = stored(redis_client, chat)
    assert not learner.handover.open and learner.handover.closed_by == "admin"
    assert (learner.flow, learner.step) == (where.flow, where.step)
    assert "chiuso la conversazione" in said_since(chat, before)
    with pytest.raises(InboxError, match="no open handover"):
        inbox.reply(lid(chat), "ancora io")
    with pytest.raises(InboxError, match="no open handover"):
        inbox.hand_back(lid(chat))


def test_stop_during_a_handover_still_opts_out(talk, course, redis_client):
    chat = talk(user="393330000706")
    into_lesson(chat, course)
    chat.send_line("operatore")
    tap(chat, "Sì")
    chat.send_line("stop")
    learner = stored(redis_client, chat)
    assert not learner.handover.open and learner.pending == Pending.CONFIRM_STOP


def test_messenger_replies_after_24_hours_carry_the_human_agent_tag_up_to_7_days(
        talk, course, redis_client, settings):
    chat = talk(MESSENGER, "7400000000000707")
    into_lesson(chat, course)
    chat.send_line("persona")
    tap(chat, "Sì")
    chat.advance(30 * HOUR)
    inbox = inbox_for(chat, settings)
    assert inbox.list_open()[0].route is Route.HUMAN_AGENT
    queued = []
    chat.dispatcher = dataclasses.replace(chat.dispatcher, notify=queued.append)
    inbox = inbox_for(chat, settings)
    sent = inbox.reply(lid(chat), "Scusa il ritardo!", admin="Giulia")
    assert sent.tag == "HUMAN_AGENT"
    (raw,) = redis_client.lrange(learner_key(lid(chat), LearnerPart.OUTBOX), 0, -1)
    body = json.loads(raw)["body"]
    assert body["messaging_type"] == "MESSAGE_TAG" and body["tag"] == "HUMAN_AGENT"
    assert body["message"]["text"] == "Scusa il ritardo!"
    chat.advance(7 * 24 * HOUR)
    with pytest.raises(InboxError, match="more than 7 days"):
        inbox_for(chat, settings).reply(lid(chat), "ci sei?")


@pytest.mark.parametrize(("channel", "user"), [(WHATSAPP, "393330000708"), (INSTAGRAM, "5100000000000708")])
def test_outside_the_window_a_whatsapp_or_instagram_reply_is_refused_clearly(talk, course, redis_client, settings,
                                                                            channel, user):
    chat = talk(channel, user)
    into_lesson(chat, course)
    chat.send_line("operatore")
    tap(chat, "Sì")
    chat.advance(25 * HOUR)
    inbox = inbox_for(chat, settings)
    assert inbox.list_open()[0].route is Route.CLOSED
    before = len(chat.transcript)
    with pytest.raises(InboxError, match="24-hour window has closed"):
        inbox.reply(lid(chat), "Eccomi!")
    assert len(chat.transcript) == before
    assert redis_client.llen(learner_key(lid(chat), LearnerPart.OUTBOX)) == 0


def test_timers_say_nothing_while_a_person_answers(talk, course, redis_client):
    chat = talk(user="393330000709")
    chat.send_line("ciao")
    tap(chat, "Italiano")
    tap(chat, "Panificio")
    tap(chat, course.checkup.short_title.get("it")[:10])
    tap(chat, chat.shown_options[0][1][:8])  # start the timed check-up
    assert stored(redis_client, chat).checkup.running
    chat.send_line("operatore")
    tap(chat, "Sì")
    before = len(chat.transcript)
    chat.advance(course.checkup.time_limit_seconds + 60)  # its warnings and time-out fall due
    assert len(chat.transcript) == before


def test_the_inbox_refuses_unknown_learners_and_empty_replies(talk, course, settings):
    chat = talk(user="393330000710")
    inbox = inbox_for(chat, settings)
    with pytest.raises(InboxError, match="not a learner id"):
        inbox.show("393330000710")
    with pytest.raises(InboxError, match="no learner"):
        inbox.show("wa:393330009999")
    with pytest.raises(InboxError, match="empty"):
        inbox.reply("wa:393330000710", "  ")


def test_rescan_rebuilds_the_list_from_the_records(talk, course, redis_client, settings):
    chat = talk(user="393330000711")
    into_lesson(chat, course)
    chat.send_line("operatore")
    tap(chat, "Sì")
    redis_client.delete(*handover_index_keys())  # one key at a time on a cluster (redis-py splits DEL)
    inbox = inbox_for(chat, settings)
    assert inbox.list_open() == []
    assert inbox.rescan() == 1
    assert [item.learner_id for item in inbox.list_open()] == [lid(chat)]


def test_the_open_handovers_index_is_sharded_and_the_key_before_the_shards_is_still_read(redis_client, settings):
    store = composition.store(settings, redis_client)
    learners = [f"wa:39333070{n:04d}" for n in range(40)]
    for n, learner in enumerate(learners):
        store.index_handover(learner, 1_000 + n)
    assert len({learner_handover_index_key(learner) for learner in learners}) > 8
    redis_client.zadd(LEGACY_HANDOVER_INDEX_KEY, {"wa:393330799999": 500, learners[1]: 400})  # listed before the shards
    listed = store.indexed_handovers()
    assert listed == [("wa:393330799999", 500), *((learner, 1_000 + n) for n, learner in enumerate(learners))]
    store.index_handover("wa:393330799999", 0)
    store.index_handover(learners[1], 0)  # off the list: its shard and the legacy key
    assert [learner for learner, _ in store.indexed_handovers()] == [learners[0], *learners[2:]]
    assert redis_client.zcard(LEGACY_HANDOVER_INDEX_KEY) == 0
