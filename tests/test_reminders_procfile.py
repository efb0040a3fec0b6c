"""Reminders through the real Procfile processes (gunicorn web + Dramatiq worker), the fake Graph API and the
shared test clock (BOTTEGA_ENV=test): ten days of a course pass in about a minute.

Five WhatsApp learners choose their reminders on day 0 at different hours; the clock then jumps from one
due timer to the next (``Service.run_timers_until``) for ten days. What each learner receives is read from
the fake Graph API and from the decisions kept on their record (``proactive.sent``: when, how, category, cost).
"""

from __future__ import annotations

import json
import uuid
import zoneinfo
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
import redis as redis_lib

from bot.channels import describe
from bot.channels.whatsapp import WHATSAPP
from bot.proactive.policy import Policy
from bot.storage.keys import LearnerPart, learner_key
from bot.tutor.progress import Progress
from tests.service import PHONE_NUMBER_ID, Phone, Service

pytestmark = pytest.mark.procfile

ROME = zoneinfo.ZoneInfo("Europe/Rome")
POLICY = Policy()  # the defaults: quiet 21:00-08:00, one a day, three unanswered, 3 h shift, 10 min margin
REMINDER_TEXT = "È l'ora della tua lezione"
TEMPLATE = "[template: bottega_lesson_reminder]"


@pytest.fixture
def service(tmp_path) -> Iterator[Service]:
    svc = Service(tmp_path, env="test")
    try:
        svc.start()
        yield svc
    finally:
        svc.close()


def local_ms(day: datetime, hour: int, minute: int = 0) -> int:
    return int(day.replace(hour=hour, minute=minute).timestamp() * 1000)


def choose_reminders(phone: Phone, slot: str, days: str = "Tutti i giorni") -> None:
    """A new learner: hello, language, business; then ``promemoria``, a slot and the days."""
    phone.send("ciao")
    phone.wait_turn()
    for title in ("Italiano", "Panificio"):
        phone.tap(title)
        phone.wait_turn()
    phone.send("promemoria")
    phone.wait_turn()
    phone.tap(slot)
    phone.wait_turn()
    phone.tap(days)
    phone.wait_turn()


def reminders_received(phone: Phone) -> list[str]:
    shown = [describe(WHATSAPP, call["body"]).text for call in phone.calls()]
    return [text for text in shown if text.startswith(TEMPLATE) or REMINDER_TEXT in text]


def record(service: Service, phone: Phone) -> Progress:
    client = redis_lib.Redis.from_url(service.redis.url)
    try:
        progress = Progress.from_hash(client.hgetall(learner_key(f"wa:{phone.user}", LearnerPart.PROGRESS)))
    finally:
        client.close()
    assert progress is not None
    return progress


def answer_latest_reminder(phone: Phone) -> None:
    """Tap "Riprendi" on the reminder just received: a template's quick reply or the free-form button."""
    body = next(call["body"] for call in reversed(phone.calls()) if describe(WHATSAPP, call["body"]).text
                .startswith(TEMPLATE) or REMINDER_TEXT in describe(WHATSAPP, call["body"]).text)
    at = phone.service.now_ms() // 1000
    if body.get("type") == "template":  # a tap on a template's quick reply comes back as a "button" message
        content = {"type": "button", "button": {"payload": "sys:rem:go", "text": "Riprendi"}}
    else:
        content = {"type": "interactive", "interactive": {"type": "button_reply",
                                                          "button_reply": {"id": "sys:rem:go", "title": "Riprendi"}}}
    message = {"from": phone.user, "id": f"wamid.test{uuid.uuid4().hex}", "timestamp": str(at), **content}
    payload = {"object": "whatsapp_business_account", "entry": [{"id": "WABA_ID", "changes": [{
        "field": "messages", "value": {"messaging_product": "whatsapp",
                                       "metadata": {"display_phone_number": "390200000000",
                                                    "phone_number_id": PHONE_NUMBER_ID},
                                       "contacts": [{"profile": {"name": "Q"}, "wa_id": phone.user}],
                                       "messages": [message]}}]}]}
    before = len(phone.calls())
    assert phone.service.post(json.dumps(payload).encode()).status_code == 200
    phone.seen_calls = before
    phone.wait_turn()  # the lesson it resumes


def test_ten_days_of_reminders_at_the_learners_time_window_aware_capped_quiet_and_paused_when_ignored(service):
    today = datetime.fromtimestamp(service.now_ms() / 1000, tz=ROME).replace(hour=0, minute=0, second=0,
                                                                             microsecond=0)
    day0 = today + timedelta(days=1)
    day = [day0 + timedelta(days=n) for n in range(12)]

    # day 0, 10:00: a learner whose window will have closed long before tomorrow's 19:30 (template), and one
    # who then writes "stop"
    service.set_clock(local_ms(day[0], 10))
    template_learner = Phone(service, WHATSAPP, "393330000701")
    choose_reminders(template_learner, "Dopo la chiusura")
    stopped = Phone(service, WHATSAPP, "393330000702")
    choose_reminders(stopped, "Dopo la chiusura")
    stopped.send("stop")
    stopped.wait_turn()
    stopped.tap("Sì")
    stopped.wait_for("non ti scrivo più per primo")
    # day 0, 17:00: the window will close at 17:00 tomorrow, 2.5 h before the slot: moved inside it (16:50)
    service.set_clock(local_ms(day[0], 17))
    moved_learner = Phone(service, WHATSAPP, "393330000703")
    choose_reminders(moved_learner, "Dopo la chiusura")
    # day 0, 20:00: the window is still open at 19:30 tomorrow: a normal message
    service.set_clock(local_ms(day[0], 20))
    open_learner = Phone(service, WHATSAPP, "393330000704")
    choose_reminders(open_learner, "Dopo la chiusura")
    # day 0, 20:30: a learner who answers every reminder (so they never pause), before opening (08:00)
    service.set_clock(local_ms(day[0], 20, 30))
    busy = Phone(service, WHATSAPP, "393330000705")
    choose_reminders(busy, "Prima di aprire")
    day0_calls = {phone.user: len(phone.calls()) for phone in (template_learner, open_learner, moved_learner)}

    for number in range(1, 11):
        service.run_timers_until(local_ms(day[number], 8, 1))
        if reminders_received(busy) and record(service, busy).proactive.day == day[number].date().isoformat():
            answer_latest_reminder(busy)  # 08:0x: "Riprendi"
        if number == 3:  # and on day 3 they move their reminders to the lunch break
            busy.send("promemoria")
            busy.wait_turn()
            busy.tap("Pausa pranzo")
            busy.wait_turn()
            busy.tap("Tutti i giorni")
            busy.wait_turn()
        if number >= 4:
            service.run_timers_until(local_ms(day[number], 13, 31))
            if record(service, busy).proactive.day == day[number].date().isoformat():
                answer_latest_reminder(busy)
        if number == 1:  # tomorrow at 19:30 (or moved inside the window): exactly one each, as chosen
            service.run_timers_until(local_ms(day[1], 23, 59))
            expected = {template_learner.user: ("template", local_ms(day[1], 19, 30)),
                        open_learner.user: ("free_form", local_ms(day[1], 19, 30)),
                        moved_learner.user: ("moved", local_ms(day[1], 16, 50))}
            for phone in (template_learner, open_learner, moved_learner):
                sent = record(service, phone).proactive.sent
                how, at = expected[phone.user]
                assert [entry.how for entry in sent] == [how], phone.user
                assert at <= sent[0].at_ms < at + 180_000, (phone.user, sent[0].at_ms - at)  # within its minutes
                assert len(reminders_received(phone)) == 1
                new = [describe(WHATSAPP, c["body"]).text for c in phone.calls()[day0_calls[phone.user]:]]
                assert len(new) == 1, new  # the reminder, nothing else
            template_sent = record(service, template_learner).proactive.sent[0]
            assert (template_sent.category, template_sent.template, template_sent.cost) == (
                "utility", "bottega_lesson_reminder", 0.03)
            assert reminders_received(template_learner)[0].startswith(TEMPLATE)
        service.run_timers_until(local_ms(day[number], 23, 59))

    # "stop": nothing, ever
    assert reminders_received(stopped) == [] and record(service, stopped).proactive.sent == ()
    # three unanswered reminders, then none: they pause
    for phone in (template_learner, open_learner, moved_learner):
        progress = record(service, phone)
        assert len(reminders_received(phone)) == 3 == len(progress.proactive.sent), phone.user
        assert progress.reminders.paused and not progress.reminders.moment_ms
    # the one who answers got one a day, every day, never in the quiet hours, the moved ones inside the window
    sent = record(service, busy).proactive.sent
    days_sent = [POLICY.local_day(entry.at_ms) for entry in sent]
    assert len(days_sent) == len(set(days_sent)) == 10
    assert not any(POLICY.quiet(entry.at_ms) for entry in sent)
    assert {entry.how for entry in sent} >= {"template", "moved"}  # 08:00 after 08:0x: the window ends in quiet
    assert len(reminders_received(busy)) == len(sent)
    for phone in (template_learner, open_learner, moved_learner, stopped, busy):
        assert phone.limit_violations() == []

    # a paused learner who writes again hears why, and how to resume
    template_learner.send("menu")
    template_learner.wait_for("ho messo in pausa i promemoria")
