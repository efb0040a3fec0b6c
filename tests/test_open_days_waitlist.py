"""Business Open Days: the learners still on the waiting list when the event starts, through the real dispatcher
on real Redis. Two seats, seven RSVPs: at the start each one still waiting is told once, in their language, that
the seats ran out (free-form with the next Open Day's buttons in their window, the template outside it), and
later gets the recording; the seated, the promoted and those who cancelled hear nothing of it. And a learner
promoted while their window is closed gets the template with their calendar link."""

from __future__ import annotations

import io
import re
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

import redis as redis_lib

from bot.channels.whatsapp import WHATSAPP
from bot.dev.chat import Chat
from bot.flows.loader import check_course, load_course
from bot.flows.spec import Course
from bot.model.events import EventKind
from bot.storage.keys import LearnerPart, learner_key
from bot.storage.open_day_ledger import OpenDayLedger
from bot.storage.store import Store
from bot.tutor.progress import Progress
from config.settings import PROJECT_ROOT
from webhooks import create_app

DAY_MS, HOUR_MS = 86_400_000, 3_600_000
NEXT = "od_2027_02"


@dataclass(kw_only=True)
class LearnerChat(Chat):
    """A chat whose sweep shows each learner's messages in that learner's own chat (``peers``)."""

    peers: dict[str, Chat] = field(default_factory=dict)

    def _show(self, learner_id: str) -> None:
        Chat._show(self.peers.get(learner_id, self), learner_id)


def two_seats_and_a_next_event(folder: Path) -> Course:
    flows = folder / "flows"
    shutil.copytree(PROJECT_ROOT / "flows", flows)
    text = (flows / "events.yaml").read_text(encoding="utf-8").replace("capacity: 40", "capacity: 2")
    head, texts = text.split("\ntexts:\n", 1)
    block = head.split("events:\n", 1)[1]
    upcoming = re.sub(r'start: "[^"]+"', 'start: "2027-02-11T18:30"', block.replace("id: od_2027_01", f"id: {NEXT}"))
    (flows / "events.yaml").write_text(f"{head}\n{upcoming}\ntexts:\n{texts}", encoding="utf-8")
    check_course(flows)  # what `bottega flows check` runs: the new texts and templates pass
    return load_course(flows)


def tap(chat: Chat, title: str) -> None:
    number = next(n for n, (_, t) in enumerate(chat.shown_options, start=1) if t.startswith(title))
    chat.send_line(str(number))


def record(client: redis_lib.Redis, lid: str) -> Progress:
    progress = Progress.from_hash(client.hgetall(learner_key(lid, LearnerPart.PROGRESS)))
    assert progress is not None
    return progress


def at(chat: Chat, moment: int) -> Chat:
    chat.clock_offset_ms = moment - int(time.time() * 1000)
    return chat


def run_until(client: redis_lib.Redis, sweeper: Chat, lids: list[str], until_ms: int) -> None:
    """Fire every learner's timers one due time at a time, as the worker's clock does, up to ``until_ms``."""
    for _ in range(500):
        dues = [int(first[0][1]) for lid in lids
                if (first := client.zrange(learner_key(lid, LearnerPart.TIMERS), 0, 0, withscores=True))]
        if not dues or min(dues) > until_ms:
            return
        at(sweeper, min(dues)).fire_timers()
    raise AssertionError("the timers never settled")


def test_those_still_waiting_at_the_start_hear_the_seats_ran_out_once_in_their_language_then_the_recording(
        redis_client, settings, tmp_path):
    course = two_seats_and_a_next_event(tmp_path)
    event, upcoming = course.open_days
    assert upcoming.id == NEXT and upcoming.start_ms > event.start_ms and event.recording_url
    peers: dict[str, Chat] = {}
    langs = ["it", "en", "it", "it", "en", "it", "en"]
    chats = [LearnerChat(client=redis_client, settings=settings, channel=WHATSAPP, user_id=f"39333000070{n}",
                         out=io.StringIO(), course=course, peers=peers) for n in range(len(langs))]
    lids = [f"wa:{chat.user_id}" for chat in chats]
    peers.update(zip(lids, chats, strict=True))
    moment = event.start_ms - 5 * DAY_MS
    for chat, lang in zip(chats, langs, strict=True):
        at(chat, moment).send_line("ciao")
        tap(chat, "Italiano" if lang == "it" else "English")
        tap(chat, "Panificio" if lang == "it" else "Bakery")
        assert record(redis_client, f"wa:{chat.user_id}").lang == lang
        chat.send(kind=EventKind.CHOICE, payload=f"sys:od:yes:{event.id}", text="Ci sarò")
    ledger = OpenDayLedger(redis_client)
    standing = ledger.attendees(event.id)
    assert standing.seated == tuple(lids[:2]) and standing.waiting == tuple(lids[2:])

    # a seated learner cancels (the first one waiting is promoted), one waiting gives up their place
    chats[1].send(kind=EventKind.CHOICE, payload=f"sys:od:no:{event.id}", text="I can't come now")
    chats[6].send(kind=EventKind.CHOICE, payload=f"sys:od:no:{event.id}", text="I can't come now")
    run_until(redis_client, chats[0], lids, moment + 60_000)
    assert ledger.attendees(event.id).waiting == tuple(lids[3:6])
    assert record(redis_client, lids[2]).open_days.state(event.id) == "seated"
    # stop cancels every clock; riprendi sets the waiting list's one again
    chats[5].send_line("stop")
    tap(chats[5], "Sì")
    assert redis_client.zscore(learner_key(lids[5], LearnerPart.TIMERS), f"od:full:{event.id}") is None
    chats[5].send_line("riprendi")
    assert redis_client.zscore(learner_key(lids[5], LearnerPart.TIMERS), f"od:full:{event.id}") == event.start_ms

    # two of those waiting write two hours before the start: the news goes free-form to them, a template to the third
    for chat in chats[3:5]:
        at(chat, event.start_ms - 2 * HOUR_MS).send_line("menu")
    store = Store(redis_client, dedup_ttl_seconds=86_400, dedup_max_ids=100)
    store.schedule(lids[5], f"od:full:{event.id}:w:{event.start_ms}", event.start_ms)  # a second timer, same moment
    before = {lid: len(peers[lid].transcript) for lid in lids}
    run_until(redis_client, chats[0], lids, event.end_ms + DAY_MS)
    store.schedule(lids[3], f"od:full:{event.id}", chats[0].now_ms())  # fired again (a redelivered sweep)
    store.schedule(lids[5], f"od:full:{event.id}", chats[0].now_ms())
    chats[0].advance(1)

    def kinds(lid: str) -> list[str]:
        return [entry.kind for entry in record(redis_client, lid).proactive.sent]

    for lid in lids[3:6]:
        assert kinds(lid) == ["open_day_full", "open_day_rec"], lid
        assert record(redis_client, lid).open_days.state(event.id) == "missed"
    for lid in (lids[0], lids[2]):  # seated (the second one promoted): the link at the start, not the news
        assert "open_day_start" in kinds(lid) and "open_day_full" not in kinds(lid) and "open_day_rec" not in kinds(lid)
    assert kinds(lids[1]) == [] and kinds(lids[6]) == []  # cancelled a seat, left the waiting list: nothing
    assert [entry.how for entry in record(redis_client, lids[5]).proactive.sent] == ["template", "template"]

    def said(n: int) -> list[str]:
        return [shown.text for shown in chats[n].transcript[before[lids[n]]:]]

    [full_it, recording_it] = said(3)
    assert full_it.startswith("Mi dispiace: *Open Day: Instagram per la tua bottega* comincia adesso e i posti sono "
                              "finiti, non se n'è liberato nessuno.\n\nQuando finisce ti mando la registrazione.\n")
    assert "Il prossimo Open Day è *Open Day: Instagram per la tua bottega*, 11/02/2027 alle 18:30" in full_it
    assert recording_it == f"Come promesso, ecco la registrazione di *Open Day: Instagram per la tua bottega*: " \
                           f"{event.recording_url}"
    [full_en, recording_en] = said(4)
    assert full_en.startswith("Sorry: *Open Day: Instagram for your shop* is starting now and the seats ran out")
    assert "The next Open Day is *Open Day: Instagram for your shop*, 11/02/2027 at 18:30" in full_en
    assert recording_en.startswith("As promised, here is the recording of *Open Day: Instagram for your shop*")
    assert said(5) == ["[template: bottega_open_day_full] Open Day: Instagram per la tua bottega",
                       "[template: bottega_open_day_missed] Open Day: Instagram per la tua bottega | "
                       + event.recording_url]
    assert not any("posti sono finiti" in text or "seats ran out" in text for n in (0, 1, 2, 6) for text in said(n))

    # the next Open Day's buttons, offered with the news, take a seat for it
    offered = chats[4].transcript[before[lids[4]]].options
    assert offered == ((f"sys:od:yes:{NEXT}", "I'll come"), (f"sys:od:no:{NEXT}", "I can't"),
                       (f"sys:od:later:{NEXT}", "Remind me"))
    at(chats[3], event.end_ms + 2 * DAY_MS).send(kind=EventKind.CHOICE, payload=f"sys:od:yes:{NEXT}", text="Ci sarò")
    assert record(redis_client, lids[3]).open_days.state(NEXT) == "seated"
    assert ledger.attendees(NEXT).seated == (lids[3],)


def test_a_learner_promoted_outside_their_window_gets_the_calendar_link_in_the_template(
        redis_client, settings, course):
    [event] = course.open_days
    one_seat = replace(course, open_days=(replace(event, capacity=1),))
    peers: dict[str, Chat] = {}
    chats = [LearnerChat(client=redis_client, settings=settings, channel=WHATSAPP, user_id=f"39333000071{n}",
                         out=io.StringIO(), course=one_seat, peers=peers) for n in range(2)]
    lids = [f"wa:{chat.user_id}" for chat in chats]
    peers.update(zip(lids, chats, strict=True))
    for chat, lang in zip(chats, ("it", "en"), strict=True):
        at(chat, event.start_ms - 5 * DAY_MS).send_line("ciao")
        tap(chat, "Italiano" if lang == "it" else "English")
        tap(chat, "Panificio" if lang == "it" else "Bakery")
        chat.send(kind=EventKind.CHOICE, payload=f"sys:od:yes:{event.id}", text="Ci sarò")
    # three days later (the waiting one's window long closed) the seated one cancels: the seat is the other's
    at(chats[0], event.start_ms - 2 * DAY_MS).send(kind=EventKind.CHOICE, payload=f"sys:od:no:{event.id}",
                                                   text="Non posso più")
    chats[0].advance(1)
    [told] = [shown for shown in chats[1].transcript if "bottega_open_day_promoted" in shown.text]
    assert [payload for payload, _ in told.options] == ["sys:od:no"]  # the template's button: "I can't come now"
    title, when, link = told.text.removeprefix("[template: bottega_open_day_promoted] ").split(" | ")
    assert (title, when) == ("Open Day: Instagram for your shop", "14/01/2027 at 18:30")
    assert link.endswith(".ics?lang=en") and record(redis_client, lids[1]).proactive.sent[-1].how == "template"
    assert record(redis_client, lids[1]).open_days.state(event.id) == "seated"
    web = create_app(settings, redis_client=redis_client, notify=lambda learner_id: None).test_client()
    path = f"{urlsplit(link).path}?{urlsplit(link).query}"
    calendar = web.get(path)
    assert calendar.status_code == 200 and b"Open Day: Instagram for your shop" in calendar.data
    chats[1].send(kind=EventKind.CHOICE, payload="sys:od:no", text="I can't come now")  # the template's button
    assert record(redis_client, lids[1]).open_days.state(event.id) == "declined" and web.get(path).status_code == 404
