"""Business Open Days: the events file and its checks, the seat ledger on real Redis (many threads at once),
the calendar file and its route, and an announcement answered through the real dispatcher."""

from __future__ import annotations

import io
import shutil
import threading
import time
import zoneinfo
from datetime import datetime

import icalendar
import pytest
import redis as redis_lib

from bot.channels.whatsapp import WHATSAPP
from bot.delivery.open_days import announce
from bot.dev.chat import Chat
from bot.flows.loader import check_course, load_course
from bot.flows.problems import FlowError
from bot.model.events import EventKind
from bot.model.seats import SeatState
from bot.storage.keys import LearnerPart, OpenDayPart, learner_key, open_day_key
from bot.storage.open_day_ledger import OpenDayLedger
from bot.storage.store import Store
from bot.tutor.progress import Progress
from bot.web.open_days import calendar_file
from config.settings import PROJECT_ROOT
from webhooks import create_app

ROME = zoneinfo.ZoneInfo("Europe/Rome")


def test_event_keys_keep_their_format_and_share_the_events_hash_slot():
    assert open_day_key("od_2027_01", OpenDayPart.SEATS) == "bottega:{event:od_2027_01}:seats"
    assert open_day_key("od_2027_01", OpenDayPart.NOTICES) == "bottega:{event:od_2027_01}:notices"
    with pytest.raises(ValueError):
        open_day_key("a}b", OpenDayPart.SEATS)


# -- the ledger ----------------------------------------------------------------------------------------------

def test_capacity_five_eight_rsvps_seat_five_wait_list_three_and_a_cancellation_promotes_the_first(redis_client):
    ledger = OpenDayLedger(redis_client)
    seats = [ledger.rsvp("od_t", f"wa:{n}", coming=True, capacity=5, now_ms=n) for n in range(8)]
    assert [s.state for s in seats] == [SeatState.SEATED] * 5 + [SeatState.WAITING] * 3
    assert [s.rank for s in seats[5:]] == [1, 2, 3] and all(len(s.ticket) >= 40 for s in seats[:5])
    again = ledger.rsvp("od_t", "wa:6", coming=True, capacity=5, now_ms=9)  # a second tap keeps the place
    assert (again.state, again.rank, again.already) == (SeatState.WAITING, 2, True)
    assert ledger.holder("od_t", seats[1].ticket) == "wa:1"

    gone = ledger.rsvp("od_t", "wa:1", coming=False, capacity=5, now_ms=10)
    assert gone.state is SeatState.DECLINED and ledger.holder("od_t", seats[1].ticket) == ""
    told: list[tuple[str, str]] = []
    assert ledger.deliver_notices("od_t", lambda lid, payload: told.append((lid, payload))) == 1
    [(promoted, payload)] = told
    assert promoted == "wa:5" and payload.startswith("od:seat:od_t:")
    assert ledger.holder("od_t", payload.rsplit(":", 1)[1]) == "wa:5"
    assert ledger.deliver_notices("od_t", lambda lid, payload: told.append((lid, payload))) == 0  # told once
    standing = ledger.attendees("od_t")
    assert standing.seated == ("wa:0", "wa:2", "wa:3", "wa:4", "wa:5")
    assert standing.waiting == ("wa:6", "wa:7") and standing.declined == ("wa:1",)
    assert ledger.rsvp("od_t", "wa:7", coming=True, capacity=5, now_ms=11).rank == 2
    # a raised capacity seats those waiting first, in order, before anyone new
    late = ledger.rsvp("od_t", "wa:9", coming=True, capacity=7, now_ms=12)
    assert late.state is SeatState.WAITING and ledger.attendees("od_t").seated[-2:] == ("wa:6", "wa:7")


def test_many_threads_rsvping_and_cancelling_at_once_never_exceed_capacity(redis_url, redis_client):
    capacity, learners = 10, 60
    errors: list[BaseException] = []
    start = threading.Barrier(learners)

    def learner(number: int) -> None:
        client = redis_lib.Redis.from_url(redis_url)
        try:
            ledger = OpenDayLedger(client)
            start.wait()
            ledger.rsvp("od_busy", f"wa:{number}", coming=True, capacity=capacity, now_ms=number)
            if number % 3 == 0:  # a third change their mind at once, which promotes someone waiting
                ledger.rsvp("od_busy", f"wa:{number}", coming=False, capacity=capacity, now_ms=number)
        except BaseException as error:
            errors.append(error)
        finally:
            client.close()

    threads = [threading.Thread(target=learner, args=(n,)) for n in range(learners)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    standing = OpenDayLedger(redis_client).attendees("od_busy")
    assert len(standing.seated) == capacity  # full: 40 stayed, never more than 10 seats
    assert len(standing.declined) == learners // 3
    assert len(set(standing.seated) | set(standing.waiting) | set(standing.declined)) == learners
    assert not set(standing.seated) & set(standing.waiting)
    assert len(standing.waiting) == learners - learners // 3 - capacity
    told: list[str] = []  # those promoted get their ticket when they are told
    OpenDayLedger(redis_client).deliver_notices("od_busy", lambda lid, payload: told.append(lid))
    assert set(told) <= set(standing.seated)
    tickets = redis_client.hgetall(open_day_key("od_busy", OpenDayPart.TICKETS))
    assert len(tickets) == 2 * capacity  # one ticket per seat, both ways; none left for those who left


# -- events.yaml ---------------------------------------------------------------------------------------------

def broken_events(tmp_path, text: str) -> list[str]:
    flows = tmp_path / "flows"
    shutil.copytree(PROJECT_ROOT / "flows", flows)
    (flows / "events.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(FlowError) as error:
        check_course(flows)
    return [str(problem) for problem in error.value.problems]


def test_the_events_file_is_read_with_its_start_in_its_time_zone(course):
    [event] = course.open_days
    assert datetime.fromtimestamp(event.start_ms / 1000, tz=ROME) == datetime(2027, 1, 14, 18, 30, tzinfo=ROME)
    assert event.capacity == 40 and event.followup_module == "m3_instagram" and event.online_url.startswith("https://")
    assert course.text("label_od_yes", "it") == "Ci sarò" and course.text("label_od_yes", "en") == "I'll come"


def test_flows_check_names_file_line_and_fix_for_every_broken_event(tmp_path):
    texts = (PROJECT_ROOT / "flows" / "events.yaml").read_text(encoding="utf-8").split("\ntexts:\n", 1)[1]
    problems = broken_events(tmp_path, """events:
  - id: od_bad
    title: {it: "Solo italiano"}
    start: "14 gennaio alle 18:30"
    time_zone: Europe/Rome
    duration_minutes: 0
    capacity: 5
    description: {it: "x", en: "x"}
    followup_module: m99_nowhere
    audience: {channels: [telegram]}
  - id: od_bad2
    title: {it: "a", en: "b"}
    start: "2027-01-14T18:30"
    time_zone: Europe/Roma
    duration_minutes: 60
    capacity: 5
    online: "http://insecure.example"
    description: {it: "x", en: "x"}
    venue: "typo"
texts:
""" + texts)
    text = "\n".join(problems)
    assert "flows/events.yaml:3:" in text and "event 'od_bad' title has no 'en' translation" in text
    assert "flows/events.yaml:4:" in text and 'write it like "2026-12-10T18:30" (quoted)' in text
    assert "duration_minutes must be a whole number >= 1" in text
    assert "flows/events.yaml:2:" in text and "neither an online link nor an address" in text
    assert "follow-up module 'm99_nowhere' is not in the course" in text
    assert "'telegram' is not a channel" in text
    assert "flows/events.yaml:14:" in text and "'Europe/Roma' is not a time zone" in text
    assert "flows/events.yaml:17:" in text and "is not an https link" in text
    assert "unknown key 'venue'" in text
    missing_text = broken_events(tmp_path / "b", "events: []\ntexts:\n  open_day_invite: {it: a, en: b}\n")
    assert any("is missing the key 'label_od_yes'" in p for p in missing_text)


# -- the calendar file ---------------------------------------------------------------------------------------

def test_the_calendar_file_parses_with_its_start_in_its_time_zone(course):
    [event] = course.open_days
    parsed = icalendar.Calendar.from_ical(calendar_file(event, lang="en", stamp_ms=event.start_ms - 86_400_000))
    [entry] = parsed.walk("VEVENT")
    start, end = entry.decoded("dtstart"), entry.decoded("dtend")
    assert start == datetime(2027, 1, 14, 18, 30, tzinfo=ROME) and str(start.tzinfo) == "Europe/Rome"
    assert (end - start).total_seconds() == 90 * 60
    assert str(entry["summary"]) == "Open Day: Instagram for your shop" and "Milano" in str(entry["location"])
    assert [str(tz["tzid"]) for tz in parsed.walk("VTIMEZONE")] == ["Europe/Rome"]


def test_the_calendar_route_serves_a_seat_holders_ticket_and_404s_anything_else(settings, redis_client):
    app = create_app(settings, redis_client=redis_client, notify=lambda learner_id: None)
    client = app.test_client()
    [event] = app.extensions["bottega"]["registry"].engine.course.open_days
    seat = OpenDayLedger(redis_client).rsvp(event.id, "wa:1", coming=True, capacity=event.capacity, now_ms=1)
    answer = client.get(f"/open-days/{event.id}/{seat.ticket}.ics?lang=en")
    assert answer.status_code == 200 and answer.mimetype == "text/calendar"
    assert "noindex" in answer.headers["X-Robots-Tag"]
    assert icalendar.Calendar.from_ical(answer.data).walk("VEVENT")[0]["summary"] == "Open Day: Instagram for your shop"
    assert client.get(f"/open-days/{event.id}/{'x' * 43}.ics").status_code == 404
    assert client.get(f"/open-days/other_event/{seat.ticket}.ics").status_code == 404
    OpenDayLedger(redis_client).rsvp(event.id, "wa:1", coming=False, capacity=event.capacity, now_ms=2)
    assert client.get(f"/open-days/{event.id}/{seat.ticket}.ics").status_code == 404  # the seat was given up


# -- announced and answered through the dispatcher --------------------------------------------------------------

def chat_at(redis_client, settings, course, user: str, moment: int) -> Chat:
    chat = Chat(client=redis_client, settings=settings, channel=WHATSAPP, user_id=user, out=io.StringIO(),
                course=course)
    chat.clock_offset_ms = moment - int(time.time() * 1000)
    return chat


def tap(chat: Chat, title: str) -> None:
    number = next(n for n, (_, t) in enumerate(chat.shown_options, start=1) if t.startswith(title))
    chat.send_line(str(number))


def record(redis_client, user: str) -> Progress:
    progress = Progress.from_hash(redis_client.hgetall(learner_key(f"wa:{user}", LearnerPart.PROGRESS)))
    assert progress is not None
    return progress


def test_an_announcement_is_counted_dry_then_said_once_and_an_rsvp_seats_the_learner_with_the_calendar_file(
        redis_client, settings, tmp_path):
    flows = tmp_path / "flows"
    shutil.copytree(PROJECT_ROOT / "flows", flows)
    events = (flows / "events.yaml").read_text(encoding="utf-8").replace("capacity: 40", "capacity: 1")
    (flows / "events.yaml").write_text(events.replace("languages: [it, en]", "languages: [it]"), encoding="utf-8")
    course = load_course(flows)
    [event] = course.open_days
    moment = event.start_ms - 5 * 86_400_000  # five days before, 18:30
    chats = [chat_at(redis_client, settings, course, f"39333000080{n}", moment) for n in range(3)]
    for chat, lang in zip(chats, ("Italiano", "Italiano", "English"), strict=True):
        chat.send_line("ciao")
        tap(chat, lang)
        tap(chat, "Panificio" if lang == "Italiano" else "Bakery")
    store = Store(redis_client, dedup_ttl_seconds=86_400, dedup_max_ids=100)
    engine = chats[0].dispatcher.engines.engine_for("")
    dry = announce(redis_client, store, course, engine.policy, event, now_ms=moment + 60_000, dry_run=True)
    assert (dry.scheduled, dict(dry.by_channel), dict(dry.by_how), dry.outside_audience) == (
        2, {"whatsapp": 2}, {"free_form": 2}, 1)
    assert redis_client.zcard(learner_key(f"wa:{chats[0].user_id}", LearnerPart.TIMERS)) == 0  # nothing sent
    for _ in range(2):  # announcing twice invites once
        announce(redis_client, store, course, engine.policy, event, now_ms=moment + 60_000)
        chats[0].advance(60)  # the sweep fires every learner's clock (their messages show in this chat)
    sent = [[entry.kind for entry in record(redis_client, chat.user_id).proactive.sent] for chat in chats]
    assert sent == [["open_day_ann"], ["open_day_ann"], []]
    assert sum("Vieni? I posti sono limitati." in shown.text for shown in chats[0].transcript) == 2
    assert [o[1] for o in chats[0].shown_options] == ["Ci sarò", "Non posso", "Ricordamelo"]

    chats[0].send(kind=EventKind.CHOICE, payload=f"sys:od:yes:{event.id}", text="Ci sarò")
    shown = "\n".join(shown.text for shown in chats[0].transcript[-3:])
    assert "il posto è tuo" in shown and "open-day.ics" in shown, shown  # with the calendar file as a document
    assert record(redis_client, chats[0].user_id).open_days.state(event.id) == "seated"
    chats[1].send(kind=EventKind.CHOICE, payload="sys:od:yes", text="Ci sarò")  # a template's: the latest event
    assert any("lista d'attesa" in shown.text and "numero 1" in shown.text for shown in chats[1].transcript)
    # the seated one cancels from the confirmation's button: the seat goes to the one waiting, who is told
    chats[0].send(kind=EventKind.CHOICE, payload=f"sys:od:no:{event.id}", text="Non posso più")
    chats[1].advance(1)
    told = [shown.text for chat in chats for shown in chat.transcript if "si è liberato un posto" in shown.text]
    calendars = [shown.text for chat in chats for shown in chat.transcript if "open-day.ics" in shown.text]
    assert len(told) == 1 and len(calendars) == 2  # the seated one's and the promoted one's
    promoted = record(redis_client, chats[1].user_id)
    assert promoted.open_days.state(event.id) == "seated" and promoted.proactive.sent[-1].kind == "open_day_seat"
    assert record(redis_client, chats[0].user_id).open_days.state(event.id) == "declined"
    assert OpenDayLedger(redis_client).attendees(event.id).seated == (f"wa:{chats[1].user_id}",)


def test_remind_me_asks_again_the_day_before_a_typed_answer_counts_and_a_seat_keeps_its_reminders_across_stop(
        redis_client, settings, course):
    [event] = course.open_days
    chat = chat_at(redis_client, settings, course, "393330000810", event.start_ms - 5 * 86_400_000)
    chat.send_line("ciao")
    tap(chat, "Italiano")
    tap(chat, "Panificio")
    lid = f"wa:{chat.user_id}"
    Store(redis_client, dedup_ttl_seconds=86_400, dedup_max_ids=100).schedule(lid, f"od:ann:{event.id}",
                                                                              chat.now_ms())
    chat.advance(1)
    tap(chat, "Ricordamelo")
    assert record(redis_client, chat.user_id).open_days.state(event.id) == "maybe"
    timers = {payload.decode(): int(due) for payload, due in
              redis_client.zrange(learner_key(lid, LearnerPart.TIMERS), 0, -1, withscores=True)}
    assert timers[f"od:ask:{event.id}"] == event.start_ms - 86_400_000
    # the learner comes back on the eve, two hours before, so the question goes free-form at its moment
    chat.clock_offset_ms = event.start_ms - 86_400_000 - 2 * 3_600_000 - int(time.time() * 1000)
    chat.send_line("menu")
    chat.clock_offset_ms = event.start_ms - 86_400_000 + 60_000 - int(time.time() * 1000)
    chat.fire_timers()
    assert any("Ti avevo promesso di ricordartelo" in shown.text for shown in chat.transcript)
    chat.send_line("ci saro!")  # typed, as on Instagram's desktop (no buttons): the label counts as the tap
    assert record(redis_client, chat.user_id).open_days.state(event.id) == "seated"

    def open_day_timers() -> set[str]:
        return {payload.decode().rsplit(":", 1)[0] if payload.decode().count(":") > 2 else payload.decode()
                for payload in redis_client.zrange(learner_key(lid, LearnerPart.TIMERS), 0, -1)
                if payload.decode().startswith("od:")}

    assert open_day_timers() == {f"od:r1:{event.id}", f"od:start:{event.id}", f"od:after:{event.id}"}
    chat.send_line("stop")
    tap(chat, "Sì")
    assert open_day_timers() == set()  # stop cancels every clock
    chat.send_line("riprendi")
    assert open_day_timers() == {f"od:r1:{event.id}", f"od:start:{event.id}", f"od:after:{event.id}"}
    # then the hour before (free-form), the link and the follow-up (templates: the window closed before the start);
    # its button, which carries no event id, starts the suggested module
    key = learner_key(lid, LearnerPart.TIMERS)
    while (due := redis_client.zrange(key, 0, 0, withscores=True)) and int(due[0][1]) <= event.end_ms + 86_400_000:
        chat.clock_offset_ms = int(due[0][1]) - int(time.time() * 1000)  # one due time at a time, as the clock does
        chat.fire_timers()
    kinds = [entry.kind for entry in record(redis_client, chat.user_id).proactive.sent]
    assert kinds[-3:] == ["open_day_r1", "open_day_start", "open_day_after"]
    shown = [shown.text for shown in chat.transcript[-3:]]
    assert shown[0].startswith("Tra un'ora comincia") and shown[1] == (
        "[template: bottega_open_day_starting] Open Day: Instagram per la tua bottega | " + event.online_url)
    assert shown[2].startswith("[template: bottega_open_day_followup]") and event.recording_url in shown[2]
    chat.send(kind=EventKind.CHOICE, payload="sys:od:module", text="Inizia il modulo")
    assert record(redis_client, chat.user_id).flow == event.followup_module


def test_an_open_days_entry_link_shows_the_invitation_after_onboarding_and_its_buttons_take_a_seat(
        redis_client, settings, course):
    [event] = course.open_days
    chat = chat_at(redis_client, settings, course, "393330000820", event.start_ms - 3 * 86_400_000)
    chat.send_line(f"Ciao! bt-event-{event.id}")  # a wa.me link's prefilled text (a QR code on a slide)
    tap(chat, "Italiano")
    tap(chat, "Panificio")
    assert "Vieni? I posti sono limitati." in chat.transcript[-1].text
    tap(chat, "Ci sarò")
    assert record(redis_client, chat.user_id).open_days.state(event.id) == "seated"
    assert OpenDayLedger(redis_client).attendees(event.id).seated == (f"wa:{chat.user_id}",)
