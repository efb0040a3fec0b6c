"""Bottega writing first: the placement rules (pure), reminders and follow-ups through the real dispatcher on
Redis, Meta's refusals and preferences, the opt-out emptying the outbox, templates as checked content."""

from __future__ import annotations

import io
import shutil
import time
import zoneinfo
from dataclasses import replace
from datetime import datetime

import pytest

from bot.channels.messenger import MESSENGER
from bot.channels.rendering import render
from bot.channels.whatsapp import WHATSAPP
from bot.dev.chat import Chat
from bot.dispatch import outbox_items
from bot.flows.loader import check_course, load_course
from bot.flows.problems import FlowError
from bot.flows.spec import Translated
from bot.model.events import EventKind, InboundEvent
from bot.model.replies import Reply, TemplateMessage
from bot.proactive.placement import How, Reach, first_look, place
from bot.proactive.policy import HOUR_MS, Policy, Prices
from bot.proactive.record import ProactiveRecord
from bot.proactive.templates import TemplateState, compare, submission
from bot.storage.keys import LearnerPart, learner_key
from bot.storage.outbox_item import OutboxItem
from bot.tutor import global_words
from bot.tutor.engine import Conversation
from bot.tutor.progress import Progress
from config.settings import PROJECT_ROOT

ROME = zoneinfo.ZoneInfo("Europe/Rome")
PRICES = Prices(currency="USD", table={"service": 0.01, "utility": 0.03, "marketing": 0.07})
POLICY = Policy(prices=PRICES)
MIN = 60_000


def at(day: int, hour: int, minute: int = 0) -> int:
    return int(datetime(2026, 12, day, hour, minute, tzinfo=ROME).timestamp() * 1000)


def reach(channel: str = "whatsapp", *, last: int = 0, opted_out: bool = False, **record: object) -> Reach:
    return Reach(channel=channel, opted_out=opted_out, last_inbound_ms=last,
                 record=ProactiveRecord().with_changes(**record))


# -- placement: the one decision ------------------------------------------------------------------------

def test_a_reminder_inside_the_open_window_waits_for_its_moment_then_goes_free_form(course):
    learner, moment = reach(last=at(1, 20)), at(2, 19, 30)
    assert first_look(moment, at(1, 20), POLICY) == at(2, 16, 30)
    waiting = place(learner, moment_ms=moment, now_ms=at(2, 16, 30), policy=POLICY)
    assert (waiting.how, waiting.at_ms) == (How.WAIT, moment)
    sent = place(learner, moment_ms=moment, now_ms=moment, policy=POLICY)
    assert (sent.how, sent.category, sent.cost, sent.currency) == (How.FREE_FORM, "service", 0.01, "USD")


def test_a_reminder_after_the_window_closes_moves_to_its_last_minute_when_close_enough():
    learner, moment = reach(last=at(1, 17)), at(2, 19, 30)
    end = at(2, 16, 50)  # 24 h after the last message, less the 10-minute margin
    waiting = place(learner, moment_ms=moment, now_ms=at(2, 16, 30), policy=POLICY)
    assert (waiting.how, waiting.at_ms) == (How.WAIT, end)
    moved = place(learner, moment_ms=moment, now_ms=end + 500, policy=POLICY)
    assert (moved.how, moved.category) == (How.MOVED, "service")


def test_a_reminder_far_from_the_window_goes_as_the_template_with_its_category_and_price(course):
    template = course.template_for("reminder")
    learner, moment = reach(last=at(1, 10)), at(2, 19, 30)
    assert place(learner, moment_ms=moment, now_ms=at(2, 16, 30), policy=POLICY, template=template).at_ms == moment
    sent = place(learner, moment_ms=moment, now_ms=moment, policy=POLICY, template=template)
    assert (sent.how, sent.template, sent.category, sent.cost) == (How.TEMPLATE, template, "utility", 0.03)
    assert place(learner, moment_ms=moment, now_ms=moment, policy=POLICY).how is How.NONE  # no template: none


def test_a_moved_time_never_lands_in_the_quiet_hours(course):
    learner = reach(last=at(1, 7, 0))  # the window ends at 06:50, inside the quiet hours before 08:00
    decided = place(learner, moment_ms=at(2, 8), now_ms=at(2, 5), policy=POLICY,
                    template=course.template_for("reminder"))
    assert (decided.how, decided.at_ms) == (How.WAIT, at(2, 8))  # not 06:50: the template at 08:00


def test_quiet_hours_the_daily_cap_opt_out_and_lateness_say_no():
    learner = reach(last=at(1, 22, 30))
    assert place(learner, moment_ms=at(1, 22, 40), now_ms=at(1, 22, 40), policy=POLICY).reason == "quiet hours"
    capped = reach(last=at(2, 9), day="2026-12-02", day_count=1)
    assert place(capped, moment_ms=at(2, 13), now_ms=at(2, 13), policy=POLICY).reason == "daily cap"
    assert place(reach(last=at(2, 9), opted_out=True), moment_ms=at(2, 13), now_ms=at(2, 13),
                 policy=POLICY).reason == "opted out"
    assert place(reach(last=at(2, 9)), moment_ms=at(2, 13), now_ms=at(2, 13) + 2 * HOUR_MS,
                 policy=POLICY).reason == "too late"
    assert not Policy(quiet_start_minute=None, quiet_end_minute=None).quiet(at(1, 23))


def test_messenger_writes_outside_the_window_only_with_a_marketing_opt_in_and_instagram_never():
    moment = at(3, 13)
    closed = reach("messenger", last=at(1, 10))
    assert place(closed, moment_ms=moment, now_ms=moment, policy=POLICY).how is How.NONE
    opted_in = reach("messenger", last=at(1, 10), optin_token="tok", optin_expires_ms=at(20, 0))
    decided = place(opted_in, moment_ms=moment, now_ms=moment, policy=POLICY)
    assert (decided.how, decided.category, decided.cost) == (How.OPT_IN_TOKEN, "marketing", 0.0)  # not billed
    expired = reach("messenger", last=at(1, 10), optin_token="tok", optin_expires_ms=at(2, 0))
    assert place(expired, moment_ms=moment, now_ms=moment, policy=POLICY).how is How.NONE
    stopped = reach("messenger", last=at(1, 10), optin_token="tok", marketing_stopped=True)
    assert "stopped marketing" in place(stopped, moment_ms=moment, now_ms=moment, policy=POLICY).reason
    assert place(reach("instagram", last=at(1, 10)), moment_ms=moment, now_ms=moment, policy=POLICY).how is How.NONE
    inside = place(reach("instagram", last=at(3, 10)), moment_ms=moment, now_ms=moment, policy=POLICY)
    assert (inside.how, inside.cost) == (How.FREE_FORM, 0.0)


def test_a_window_meta_said_was_closed_is_not_counted_on_until_the_learner_writes_again(course):
    template = course.template_for("reminder")
    learner = reach(last=at(2, 9), window_refused_ms=at(2, 12))
    assert place(learner, moment_ms=at(2, 13), now_ms=at(2, 13), policy=POLICY, template=template).how is \
        How.TEMPLATE


# -- reminders and follow-ups through the dispatcher, on Redis ----------------------------------------

def chat_at(redis_client, settings, course, user: str, moment: int, channel=WHATSAPP) -> Chat:
    chat = Chat(client=redis_client, settings=settings, channel=channel, user_id=user, out=io.StringIO(), course=course)
    chat.clock_offset_ms = moment - int(time.time() * 1000)
    return chat


def tap(chat: Chat, title: str) -> None:
    number = next(n for n, (_, t) in enumerate(chat.shown_options, start=1) if t.startswith(title))
    chat.send_line(str(number))


def progress_of(redis_client, chat: Chat) -> Progress:
    progress = Progress.from_hash(redis_client.hgetall(learner_key(f"{chat.channel.prefix}:{chat.user_id}",
                                                                   LearnerPart.PROGRESS)))
    assert progress is not None
    return progress


def run_until(chat: Chat, redis_client, until: int) -> None:
    """Fire this learner's timers one due time at a time, up to ``until``."""
    key = learner_key(f"{chat.channel.prefix}:{chat.user_id}", LearnerPart.TIMERS)
    while (due := redis_client.zrange(key, 0, 0, withscores=True)) and int(due[0][1]) <= until:
        chat.clock_offset_ms = int(due[0][1]) - int(time.time() * 1000)
        chat.fire_timers()
    chat.clock_offset_ms = until - int(time.time() * 1000)


def test_the_first_module_offers_reminders_keeping_its_buttons_last_and_a_later_task_is_asked_about(
        redis_client, settings, course):
    chat = chat_at(redis_client, settings, course, "393330000801", at(1, 18))
    chat.send_line("ciao")
    tap(chat, "Italiano")
    tap(chat, "Panificio")
    tap(chat, course.flows["m1_contatto"].short_title.get("it"))
    flow = course.flows["m1_contatto"]
    step, later = flow.steps[flow.start], ""
    while not step.end:
        if step.quiz:
            tap(chat, step.quiz.correct_option.label.get("it"))
            step = flow.steps[step.next]
        else:
            choice = next((c for c in step.choices if c.id == "later"), step.choices[0])
            later = step.id if choice.id == "later" else later  # the latest "later" is the one asked about
            tap(chat, choice.label.get("it"))
            step = flow.steps[choice.next]
    texts = [shown.text for shown in chat.transcript]
    offer = next(i for i, text in enumerate(texts) if text.startswith("Vuoi un promemoria"))
    assert texts[offer + 1].startswith("Complimenti!")  # the module's own message and buttons come last
    assert [title for _, title in chat.shown_options] == ["Modulo successivo", "Menu"]
    state = progress_of(redis_client, chat).reminders
    assert state.offered and state.followup and (state.followup.flow, state.followup.step) == ("m1_contatto", later)
    chat.send(kind=EventKind.CHOICE, payload="sys:rem:slot:closing")  # the offer's button, tapped from above
    tap(chat, "Tranne la chiusura")
    tap(chat, "Lunedì")
    assert "Ti scrivo alle 19:30, tutti i giorni tranne lunedì" in chat.transcript[-2].text
    run_until(chat, redis_client, at(2, 23))
    asked = chat.transcript[-1]
    task = next(say.get("it", "bakery") for say in flow.steps[later].say if "*Prova ora:*" in say.get("it", "bakery"))
    quoted = task.split("*Prova ora:*", 1)[1].strip().split("\n\n")[0][:40]
    assert "Lo faccio dopo" in asked.text and quoted in asked.text  # the task, quoted from the lesson
    assert [title for _, title in asked.options] == ["Fatto ✅", "Non ancora"]
    tap(chat, "Fatto ✅")
    state = progress_of(redis_client, chat).reminders
    assert state.followup is None and [(f.step, f.answer) for f in state.followups] == [(later, "done")]
    assert progress_of(redis_client, chat).flow == "m11_google"  # and on to the next module


def test_reminders_skip_the_closing_day_and_days_the_learner_came_by_themselves(redis_client, settings, course):
    chat = chat_at(redis_client, settings, course, "393330000802", at(1, 9))  # Tuesday 1 December
    chat.send_line("ciao")
    tap(chat, "Italiano")
    tap(chat, "Panificio")
    chat.send_line("promemoria")
    tap(chat, "Pausa pranzo")
    tap(chat, "Tranne la chiusura")
    tap(chat, "Mercoledì")
    assert progress_of(redis_client, chat).reminders.moment_ms == at(3, 13, 30)  # not today, not Wednesday 2
    chat.clock_offset_ms = at(3, 9) - int(time.time() * 1000)
    chat.send_line("menu")  # they come by on Thursday morning
    run_until(chat, redis_client, at(3, 23))
    assert progress_of(redis_client, chat).proactive.sent == ()
    assert progress_of(redis_client, chat).reminders.moment_ms == at(4, 13, 30)


def test_a_template_reminders_quick_reply_continues_the_flow_and_no_thanks_turns_them_off(
        redis_client, settings, course):
    chat = chat_at(redis_client, settings, course, "393330000803", at(1, 9))
    chat.send_line("ciao")
    tap(chat, "Italiano")
    tap(chat, "Panificio")
    chat.send_line("promemoria")
    tap(chat, "Dopo la chiusura")
    tap(chat, "Lunedì-venerdì")
    run_until(chat, redis_client, at(2, 20))
    assert chat.transcript[-1].text.startswith("[template: bottega_lesson_reminder] Restare in contatto")
    chat.send(kind=EventKind.CHOICE, payload="sys:rem:go", text="Riprendi")  # the template's button
    assert progress_of(redis_client, chat).flow == "m1_contatto"
    assert progress_of(redis_client, chat).reminders.unanswered == 0
    chat.send_line("reminders")
    tap(chat, "No, grazie")
    state = progress_of(redis_client, chat).reminders
    assert state.slot == "never" and not state.moment_ms


def test_stop_drops_a_reminder_still_waiting_in_the_outbox_and_cancels_the_next(redis_client, settings, course):
    chat = chat_at(redis_client, settings, course, "393330000804", at(1, 9))
    chat.send_line("ciao")
    tap(chat, "Italiano")
    tap(chat, "Panificio")
    chat.send_line("promemoria")
    tap(chat, "Dopo la chiusura")
    tap(chat, "Tutti i giorni")
    lid = "wa:393330000804"
    progress = progress_of(redis_client, chat)
    waiting = outbox_items(progress, (Reply(text="⏰ reminder", proactive="reminder"), Reply(text="an answer")),
                           at(1, 10))
    redis_client.rpush(learner_key(lid, LearnerPart.OUTBOX), *(item.to_json() for item in waiting))
    stalled = replace(chat.dispatcher, notify=lambda learner: None)  # the outbox stays, as with a stalled sender
    for number, (kind, text, payload) in enumerate([(EventKind.TEXT, "stop", ""),
                                                    (EventKind.CHOICE, "Sì", "sys:yes")]):
        stalled.handle(InboundEvent(channel=WHATSAPP, kind=kind, user_id="393330000804", phone="393330000804",
                                    reply_from="100000000000001", message_id=f"wamid.stop{number}", text=text,
                                    payload=payload, timestamp_ms=at(1, 10, 5)), now_ms=at(1, 10, 5))
    left = [OutboxItem.from_json(raw) for raw in redis_client.lrange(learner_key(lid, LearnerPart.OUTBOX), 0, -1)]
    texts = [item.body["text"]["body"] for item in left if item and item.body.get("type") == "text"]
    assert texts[0] == "an answer" and texts[1].startswith("Fatto: da ora non ti scrivo più per primo")
    assert len(left) == 2  # the waiting reminder is gone (and the superseded "are you sure?")
    assert redis_client.zcard(learner_key(lid, LearnerPart.TIMERS)) == 0
    assert progress_of(redis_client, chat).opted_out
    chat.send_line("riprendi")  # written: they are back, and so are the reminders they had chosen
    assert not progress_of(redis_client, chat).opted_out
    assert progress_of(redis_client, chat).reminders.moment_ms == at(2, 19, 30)
    assert redis_client.zcard(learner_key(lid, LearnerPart.TIMERS)) == 1


def test_meta_refusals_and_preferences_shape_the_record_and_unknown_learners_are_left_alone(
        redis_client, settings, course):
    chat = chat_at(redis_client, settings, course, "393330000805", at(1, 9))
    chat.send_line("ciao")

    def event(**fields: object) -> InboundEvent:
        return InboundEvent(channel=WHATSAPP, user_id="393330000805", reply_from="100000000000001",
                            phone="393330000805", timestamp_ms=at(1, 10), **fields)

    handle = chat.dispatcher.handle
    handle(event(kind=EventKind.PREFERENCE, status="stop", detail="marketing_messages", message_id="p1"),
           now_ms=at(1, 10))
    assert progress_of(redis_client, chat).proactive.marketing_stopped
    handle(event(kind=EventKind.PREFERENCE, status="resume", detail="marketing_messages", message_id="p2"),
           now_ms=at(1, 11))
    handle(event(kind=EventKind.STATUS, status="failed", error_code=131049, message_id="wamid.x"), now_ms=at(1, 12))
    handle(event(kind=EventKind.STATUS, status="failed", error_code=131047, message_id="wamid.y"), now_ms=at(1, 12))
    record = progress_of(redis_client, chat).proactive
    assert not record.marketing_stopped and record.marketing_retry_ms == at(2, 12)
    assert record.window_refused_ms == at(1, 12) and [r.code for r in record.refusals] == [131049, 131047]
    stranger = InboundEvent(channel=WHATSAPP, user_id="393330000899", reply_from="1", kind=EventKind.PREFERENCE,
                            status="stop", message_id="p3")
    assert handle(stranger, now_ms=at(1, 12)).value == "ignored"
    assert not redis_client.exists(learner_key("wa:393330000899", LearnerPart.PROGRESS))


def test_a_messenger_opt_in_keeps_its_token_and_time_zone_and_the_reminder_goes_to_the_token(
        redis_client, settings, course):
    chat = chat_at(redis_client, settings, course, "7000000000000806", at(1, 9), channel=MESSENGER)
    chat.send_line("ciao")
    tap(chat, "Italiano")
    tap(chat, "Panificio")
    optin = InboundEvent(channel=MESSENGER, user_id="7000000000000806", reply_from="200000000000002",
                         kind=EventKind.PREFERENCE, status="opt_in", detail="marketing_messages", token="NMT-1",
                         expires_ms=at(30, 0), time_zone="Europe/Lisbon", timestamp_ms=at(1, 9, 5))
    chat.dispatcher.handle(optin, now_ms=at(1, 9, 5))
    record = progress_of(redis_client, chat).proactive
    assert (record.optin_token, record.optin_expires_ms, record.time_zone) == ("NMT-1", at(30, 0), "Europe/Lisbon")
    reply = Reply(text="⏰", proactive="reminder", notification_token="NMT-1")
    [body] = render(MESSENGER, reply, user_id="7000000000000806")
    assert body == {"recipient": {"notification_messages_token": "NMT-1"}, "message": {"text": "⏰"}}
    [update] = render(MESSENGER, Reply(text="⏰", proactive="reminder"), user_id="7000000000000806")
    assert update["messaging_type"] == "UPDATE"


def test_a_whatsapp_template_reply_renders_its_parameters_and_quick_reply_payloads():
    message = TemplateMessage(name="bottega_lesson_reminder", language="it", params=("Modulo", "19:30"),
                              payloads=("sys:rem:go", "sys:rem:off"))
    [body] = render(WHATSAPP, Reply(text="fallback", template=message, proactive="reminder"), user_id="3933",
                    phone="393330000000")
    assert body["to"] == "+393330000000" and body["type"] == "template"
    assert body["template"]["language"] == {"code": "it", "policy": "deterministic"}
    assert body["template"]["components"] == [
        {"type": "body", "parameters": [{"type": "text", "text": "Modulo"}, {"type": "text", "text": "19:30"}]},
        {"type": "button", "sub_type": "quick_reply", "index": "0",
         "parameters": [{"type": "payload", "payload": "sys:rem:go"}]},
        {"type": "button", "sub_type": "quick_reply", "index": "1",
         "parameters": [{"type": "payload", "payload": "sys:rem:off"}]}]


# -- templates as content ---------------------------------------------------------------------------------

def broken_templates(tmp_path, text: str):
    flows = tmp_path / f"flows{len(list(tmp_path.iterdir()))}"
    shutil.copytree(PROJECT_ROOT / "flows", flows)
    (flows / "templates.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(FlowError) as error:
        check_course(flows)
    return [str(problem) for problem in error.value.problems]


def test_flows_check_validates_templates_parameters_languages_and_payloads(tmp_path):
    problems = broken_templates(tmp_path, """templates:
  - name: Bad-Name
    category: promo
    use: reminder
    params: [module, name]
    body: {it: "Ciao {{1}} {{3}}"}
    buttons:
      - {label: {it: "Vai", en: "Go"}, payload: "sys:nowhere"}
""")
    text = "\n".join(problems)
    assert "templates.yaml:2:" in text and "is not one Meta accepts" in text
    assert "category 'promo'" in text and "has no 'en' translation" in text
    assert "'sys:nowhere' leads nowhere" in text and "'name' may be empty" in text
    assert "has parameters but no example" in text
    numbering = broken_templates(tmp_path, """templates:
  - name: ok_name
    category: utility
    use: reminder
    params: [module]
    body: {it: "Ciao {{2}}", en: "Hi {{1}}"}
    example: {it: ["x"], en: ["x"]}
""")
    assert any("body (it) uses {{2}} but declares 1 parameter(s)" in p for p in numbering)


def test_every_template_payload_the_checker_accepts_is_routed_by_the_engine(course):
    from bot.flows.templates import PAYLOAD_WORDS, TEMPLATE_PAYLOADS

    assert set(global_words.WORDS) >= PAYLOAD_WORDS
    for payload in TEMPLATE_PAYLOADS:
        assert Conversation.navigation(_conversation(course), payload), payload


def _conversation(course) -> Conversation:
    from bot.tutor.engine import Engine

    engine = Engine(course)
    return Conversation(engine, Progress(learner_id="wa:1", channel="whatsapp", user_id="1", rev=1))


def test_compare_reports_missing_pending_paused_disabled_and_recategorised_templates(course):
    spec = course.template_for("reminder")
    remote = [{"name": spec.name, "language": "it", "status": "PAUSED", "category": "MARKETING"}]
    findings = compare([spec], remote)
    assert [(f.language, f.state) for f in findings] == [("it", TemplateState.PAUSED), ("en", TemplateState.MISSING)]
    assert "132015" in str(findings[0]) and "Meta files it as marketing" in str(findings[0])
    remote = [{"name": spec.name, "language": "it", "status": "DISABLED", "category": "UTILITY"},
              {"name": spec.name, "language": "en", "status": "APPROVED", "category": "UTILITY"}]
    assert [f.state for f in compare([spec], remote)] == [TemplateState.DISABLED, TemplateState.APPROVED]
    body = submission(spec, "en")
    assert body["category"] == "UTILITY" and body["components"][0]["example"] == {
        "body_text": [["Keeping in touch with customers", "19:30"]]}
    assert [b["text"] for b in body["components"][1]["buttons"]] == ["Resume", "Change time", "No more reminders"]


def test_bottega_templates_check_and_submit_against_the_fake_graph_api(fake, monkeypatch, capsys, tmp_path):
    from bot import cli

    monkeypatch.setenv("BOTTEGA_ENV", "test")
    monkeypatch.setenv("GRAPH_API_URL", fake.url)
    monkeypatch.setenv("WHATSAPP_BUSINESS_ACCOUNT_ID", "300000000000003")
    for name in ("META_APP_SECRET", "META_VERIFY_TOKEN", "WHATSAPP_TOKEN", "MESSENGER_PAGE_TOKEN"):
        monkeypatch.setenv(name, "x")
    monkeypatch.setenv("WHATSAPP_PHONE_NUMBER_ID", "100000000000001")
    monkeypatch.setenv("BOTTEGA_VAR_DIR", str(tmp_path))
    fake.configure(templates=[{"name": "bottega_lesson_reminder", "language": "it", "status": "PAUSED",
                               "category": "UTILITY", "id": "1"}], template_page_size=1)
    declared = 2 * len(load_course(PROJECT_ROOT / "flows").templates)  # each in Italian and English
    assert cli.main(["templates", "check"]) == 1
    out = capsys.readouterr().out
    assert "(it): paused" in out and "(en): missing" in out and f"0 of {declared} template(s) can be sent" in out
    assert cli.main(["templates", "submit"]) == 1  # submitted, but pending review (and the paused one stays)
    out = capsys.readouterr().out
    assert "(en): submitted, Meta says PENDING" in out and "(en): pending" in out
    created = [call for call in fake.calls() if call["path"].endswith("/message_templates")]
    assert len(created) == declared - 1  # all but the paused one
    reminder = next(call["body"] for call in created if call["body"]["name"] == "bottega_lesson_reminder")
    assert reminder["language"] == "en" and reminder["category"] == "UTILITY"
    fake.configure(templates=[{"name": spec.name, "language": lang, "status": "APPROVED",
                               "category": spec.category.upper()}
                              for spec in load_course(PROJECT_ROOT / "flows").templates for lang in ("it", "en")])
    assert cli.main(["templates", "check"]) == 0
    assert f"{declared} of {declared} template(s) can be sent" in capsys.readouterr().out


def test_the_reminders_file_names_each_slot_time_and_the_weekdays(course):
    spec = course.reminders
    assert [(slot.id, slot.time) for slot in spec.slots] == [("opening", "08:00"), ("lunch", "13:30"),
                                                             ("closing", "19:30")]
    assert len(spec.weekdays) == 7 and spec.weekdays[0] == Translated.of(it="Lunedì", en="Monday")


# -- the shared test clock ---------------------------------------------------------------------------------

def test_the_shared_test_clock_moves_forward_only_and_bottega_clock_moves_it(redis_client, redis_url, capsys,
                                                                             tmp_path):
    from bot.dev.clock_tool import clock_command, duration_ms, moment_ms
    from bot.storage import clock
    from config.settings import Settings

    assert duration_ms("1d2h30m") == 95_400_000 and duration_ms("90s") == 90_000
    with pytest.raises(ValueError, match="write it like 1d"):
        duration_ms("tomorrow")
    assert moment_ms("2026-12-02T08:00", "Europe/Rome") == at(2, 8)
    before = clock.SharedTestClock(redis_client)()
    settings = Settings.from_env({"BOTTEGA_ENV": "dev", "REDIS_URL": redis_url, "BOTTEGA_VAR_DIR": str(tmp_path)})
    assert clock_command(settings, "advance", "1d") == 0
    assert "24.00 h ahead of real time" in capsys.readouterr().out
    assert clock.SharedTestClock(redis_client)() - before >= 86_400_000
    with pytest.raises(ValueError, match="only moves forward"):
        clock.set_now(redis_client, before)
    assert clock_command(settings, "set", "2020-01-01T00:00") == 2  # the past: refused, with the reason
    production = Settings.from_env({"BOTTEGA_ENV": "production", "REDIS_URL": redis_url}, require_secrets=False)
    assert clock_command(production, "advance", "1d") == 2 and not production.movable_clock
    assert "real clock" in capsys.readouterr().err


def test_meta_refusing_a_proactive_send_reaches_the_learners_record_through_the_dispatcher(
        redis_client, settings, course, fake):
    from dataclasses import replace as with_values

    from bot.delivery import outbox
    from bot.delivery.actors import refusal_event
    from bot.delivery.graph import GraphClient

    chat = chat_at(redis_client, settings, course, "393330000806", at(1, 9))
    chat.send_line("ciao")
    lid = "wa:393330000806"
    redis_client.delete(learner_key(lid, LearnerPart.OUTBOX), learner_key(lid, LearnerPart.RECEIPT))
    progress = progress_of(redis_client, chat)
    items = outbox_items(progress, (Reply(text="⏰", proactive="reminder"), Reply(text="an answer")), at(1, 10))
    redis_client.rpush(learner_key(lid, LearnerPart.OUTBOX), *(item.to_json() for item in items))
    fake.configure(permanent_code=131049)
    sender = with_values(settings, graph_api_url=fake.url)
    with GraphClient(sender) as graph:
        result = outbox.drain(redis_client, graph, lid, sender, now_ms=lambda: at(1, 10))
    assert result.failed == 2 and result.refused == ((items[0].id, 131049),)  # only the proactive one counts
    for item_id, code in result.refused:
        chat.dispatcher.handle(refusal_event(lid, item_id, code, at(1, 10)), now_ms=at(1, 10))
        chat.dispatcher.handle(refusal_event(lid, item_id, code, at(1, 10)), now_ms=at(1, 10))  # once only
    record = progress_of(redis_client, chat).proactive
    assert record.marketing_retry_ms == at(2, 10) and [r.code for r in record.refusals] == [131049]


def test_a_messenger_learners_reminder_goes_inside_the_window_and_after_it_only_to_their_opt_in_token(
        redis_client, settings, course):
    chat = chat_at(redis_client, settings, course, "7000000000000807", at(1, 20), channel=MESSENGER)
    chat.send_line("ciao")
    tap(chat, "Italiano")
    tap(chat, "Panificio")
    chat.send_line("promemoria")
    tap(chat, "Dopo la chiusura")
    tap(chat, "Tutti i giorni")
    run_until(chat, redis_client, at(3, 23))  # the 2nd inside the window; the 3rd: closed, no opt-in
    sent = progress_of(redis_client, chat).proactive.sent
    assert [(entry.how, entry.cost) for entry in sent] == [("free_form", 0.0)]  # Messenger: not billed
    assert chat.transcript[-1].text.startswith("⏰ È l'ora della tua lezione")
    optin = InboundEvent(channel=MESSENGER, user_id="7000000000000807", reply_from="200000000000002",
                         kind=EventKind.PREFERENCE, status="opt_in", token="NMT-2", timestamp_ms=at(3, 23))
    chat.dispatcher.handle(optin, now_ms=at(3, 23))
    shown: list[dict] = []
    chat.dispatcher = replace(chat.dispatcher, notify=lambda learner: shown.extend(
        OutboxItem.from_json(raw).body for raw in redis_client.lrange(learner_key(learner, LearnerPart.OUTBOX), 0, -1)))
    run_until(chat, redis_client, at(4, 23))
    assert [entry.how for entry in progress_of(redis_client, chat).proactive.sent] == ["free_form", "opt_in_token"]
    assert shown[-1]["recipient"] == {"notification_messages_token": "NMT-2"} and "messaging_type" not in shown[-1]
