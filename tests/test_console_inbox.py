"""The console's Inbox through the real Flask app on real Redis (issue 12 §2 in the console).

Security: every inbox page sends a visitor without a session to sign-in; a viewer reads the list and a
conversation but cannot reply or hand back (403, nothing sent or changed); a reply without its CSRF token is
refused (400). Operating: learners ask for a person over signed webhooks; the list shows them oldest first
(masked, with reason, age, answered or not, how a reply would go); an editor's reply is stored and queued
exactly as `bottega inbox reply`'s (the production wiring: the send queue on the test Redis, the outboxes
drained to the fake Graph API); a form sent twice sends once; after 24 hours a WhatsApp reply is refused;
the hand-back closes the handover; every reply and hand-back is in the audit log.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import replace

import pytest

from bot.channels.signature import sign
from bot.console import audit
from bot.console.users import Users
from bot.delivery import outbox
from bot.delivery.graph import GraphClient
from bot.handover.command import run as inbox_command
from bot.model.privacy import learner_ref
from bot.storage import clock
from bot.storage.keys import LearnerPart, learner_key
from bot.tutor.progress import Progress
from tests.test_console import PASSWORD, ROLES, SECRET, browser, form_token, signed_in
from webhooks import create_app

PHONE, OTHER = "393331112222", "393334445555"
LID, OTHER_LID = f"wa:{PHONE}", f"wa:{OTHER}"
TEXT = "Ciao, sono Ezio del team: ti aiuto io con gli orari."
HOUR_MS = 3_600_000


@pytest.fixture
def app(settings, redis_client, fake):
    """The production wiring (the send queue on the test Redis; no worker) and the fake Graph API."""
    console_settings = replace(settings, console_secret_key="a-test-console-secret-of-enough-length-123",
                               graph_api_url=fake.url, quiet_hours="")
    application = create_app(console_settings, redis_client=redis_client)
    users = Users(redis_client)
    for name, role in ROLES.items():
        users.add(name, role, PASSWORD)
    return application


def write_in(app, phone: str, message: dict) -> None:
    body = {"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{"field": "messages",
            "value": {"messaging_product": "whatsapp",
                      "metadata": {"display_phone_number": "390200000000", "phone_number_id": "100000000000001"},
                      "contacts": [{"profile": {"name": "Lucia"}, "wa_id": phone}],
                      "messages": [{"from": phone, "id": f"wamid.{time.time_ns()}", "timestamp": str(int(time.time())),
                                    **message}]}}]}]}
    raw = json.dumps(body).encode()
    answer = app.test_client().post("/webhook", data=raw, headers={"Content-Type": "application/json",
                                                                  "X-Hub-Signature-256": sign(SECRET, raw)})
    assert answer.status_code == 200


def text(body: str) -> dict:
    return {"type": "text", "text": {"body": body}}


def tap(option_id: str) -> dict:
    return {"type": "interactive", "interactive": {"type": "button_reply",
                                                   "button_reply": {"id": option_id, "title": option_id}}}


def ask_for_a_person(app, phone: str, question: str = "Come metto gli orari su Google?") -> None:
    """A WhatsApp learner onboarded, in module 1, who asks for a person, accepts and writes a question."""
    for message in (text("ciao"), tap("sys:lang:it"), tap("sys:biz:bakery"), tap("sys:module:m1_contatto"),
                    text("operatore"), tap("sys:handover:yes"), text(question)):
        write_in(app, phone, message)


def stored(redis_client, lid: str) -> Progress:
    progress = Progress.from_hash(redis_client.hgetall(learner_key(lid, LearnerPart.PROGRESS)))
    assert progress is not None
    return progress


def queued(redis_client, lid: str) -> list[dict]:
    return [json.loads(raw)["body"] for raw in redis_client.lrange(learner_key(lid, LearnerPart.OUTBOX), 0, -1)]


def drain(app, redis_client, *lids: str) -> None:
    """What the worker's deliver jobs do: each learner's outbox to the fake Graph API."""
    settings = app.extensions["bottega"]["settings"]
    graph = GraphClient(settings)
    for lid in lids:
        for _ in range(20):
            if outbox.drain(redis_client, graph, lid, settings).again_in_seconds is None:
                break


def conversation_path(client, lid: str) -> str:
    """The conversation page's address, as the list links it (the learner encrypted in it)."""
    page = client.get("/admin/inbox").get_data(as_text=True)
    found = re.search(rf'href="(/admin/inbox/[^"]+)">Lucia</a> <small>[^<]*{learner_ref(lid)}', page)
    assert found, page
    return found.group(1)


# -- security ---------------------------------------------------------------------------------------------
def test_every_inbox_page_sends_a_visitor_without_a_session_to_sign_in(app, redis_client):
    ask_for_a_person(app, PHONE)
    key = learner_ref(LID)
    paths = [("GET", "/admin/inbox"), ("GET", f"/admin/inbox/{key}"), ("POST", f"/admin/inbox/{key}/reply"),
             ("POST", f"/admin/inbox/{key}/back")]
    inbox_rules = {rule.rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/admin/inbox")}
    assert len(inbox_rules) == len(paths)  # every route of the pages is in this list
    for method, path in paths:
        answer = browser(app).open(path, method=method, data={"text": TEXT})
        assert answer.status_code == 303 and answer.location.startswith("/admin/login"), (method, path)
    assert TEXT not in json.dumps(queued(redis_client, LID))
    assert stored(redis_client, LID).handover.open


def test_a_viewer_reads_but_cannot_reply_or_hand_back_and_a_forged_form_is_refused(app, redis_client):
    ask_for_a_person(app, PHONE)
    before = queued(redis_client, LID)
    vera, ezio = signed_in(app, "vera"), signed_in(app, "ezio")
    path = conversation_path(vera, LID)
    page = vera.get(path)
    assert page.status_code == 200 and "Come metto gli orari su Google?" in page.get_data(as_text=True)
    assert "/reply" not in page.get_data(as_text=True) and "Hand back" not in page.get_data(as_text=True)
    csrf = form_token(vera, path)
    assert vera.post(f"{path}/reply", data={"text": TEXT, "csrf_token": csrf}).status_code == 403
    assert vera.post(f"{path}/back", data={"csrf_token": csrf}).status_code == 403
    for forged in ({}, {"csrf_token": "forged"}, {"csrf_token": csrf}):  # none, made up, another session's
        assert ezio.post(f"{path}/reply", data={"text": TEXT, **forged}).status_code == 400
        assert ezio.post(f"{path}/back", data=forged).status_code == 400
    learner = stored(redis_client, LID)
    assert learner.handover.open and not learner.handover.answered_ms
    assert [m.who for m in learner.handover.messages] == ["bot", "learner"]
    assert queued(redis_client, LID) == before
    assert not [e for e in audit.recent(redis_client) if e.action.startswith("handover.")]


# -- operating --------------------------------------------------------------------------------------------
def test_open_handovers_are_listed_oldest_first_masked_and_in_the_menu(app, redis_client):
    ask_for_a_person(app, PHONE)
    clock.advance(redis_client, 5 * 60_000)
    ask_for_a_person(app, OTHER, "Posso parlare con qualcuno?")
    vera = signed_in(app, "vera")
    page = vera.get("/admin/inbox").get_data(as_text=True)
    assert 'href="/admin/inbox"' in vera.get("/admin/").get_data(as_text=True)  # the menu's entry
    assert PHONE not in page and OTHER not in page
    assert page.index(learner_ref(LID)) < page.index(learner_ref(OTHER_LID))  # the longer waiting first
    assert "39••••••••22" in page and "whatsapp" in page and "asked for a person" in page
    assert "<strong>not answered</strong> · 1 new" in page and "window open: a normal message" in page
    assert re.search(r'<td class="num">5 min</td>', page) and "Posso parlare con qualcuno?" in page
    assert "<script" not in page and "style=" not in page


def test_an_editors_reply_is_stored_and_sent_as_the_clis_and_a_second_send_of_the_form_is_a_no_op(
        app, redis_client, fake):
    ask_for_a_person(app, PHONE)
    ask_for_a_person(app, OTHER)
    drain(app, redis_client, LID, OTHER_LID)
    fake.reset()
    ezio = signed_in(app, "ezio")
    path = conversation_path(ezio, LID)
    page = ezio.get(path).get_data(as_text=True)
    form = {"text": TEXT, "csrf_token": form_token(ezio, path),
            "request_id": re.search(r'name="request_id" value="([0-9a-f]{32})"', page).group(1)}
    sent = ezio.post(f"{path}/reply", data=form, follow_redirects=True)
    assert sent.status_code == 200 and "Reply sent (inside the window)" in sent.get_data(as_text=True)
    again = ezio.post(f"{path}/reply", data=form, follow_redirects=True)  # a double click, a reload
    assert "already sent" in again.get_data(as_text=True)
    # the CLI's reply to the other learner, on the same settings: `bottega inbox reply OTHER TEXT --as ezio`
    assert inbox_command(app.extensions["bottega"]["settings"], "reply", OTHER_LID, TEXT, admin="ezio") == 0

    console_body, cli_body = queued(redis_client, LID), queued(redis_client, OTHER_LID)
    assert console_body == [{"messaging_product": "whatsapp", "recipient_type": "individual", "to": f"+{PHONE}",
                             "type": "text", "text": {"body": TEXT, "preview_url": False}}]
    assert cli_body == [{**console_body[0], "to": f"+{OTHER}"}]  # the same message, to the other learner
    mine, theirs = stored(redis_client, LID).handover, stored(redis_client, OTHER_LID).handover
    assert mine.open and mine.answered_ms and theirs.answered_ms
    assert [(m.who, m.by, m.text, m.tag) for m in mine.messages][2:] == [("admin", "ezio", TEXT, "")]
    assert [(m.who, m.by, m.text, m.tag) for m in theirs.messages][2:] == [("admin", "ezio", TEXT, "")]

    drain(app, redis_client, LID, OTHER_LID)
    bodies = [call["body"] for call in fake.calls()]
    assert [b["to"].lstrip("+") for b in bodies if b.get("text", {}).get("body") == TEXT] == [PHONE, OTHER]
    shown = ezio.get(path).get_data(as_text=True)
    assert TEXT in shown and "admin ezio" in shown
    assert "answered" in ezio.get("/admin/inbox").get_data(as_text=True)
    entries = [e for e in audit.recent(redis_client) if e.action == "handover.reply"]
    assert [(e.who, e.target, e.detail) for e in entries] == [("ezio", learner_ref(LID), "inside the window")]
    assert TEXT not in json.dumps([e.detail for e in audit.recent(redis_client)])


def test_after_24_hours_a_whatsapp_reply_is_refused_and_nothing_is_sent(app, redis_client):
    ask_for_a_person(app, PHONE)
    before = queued(redis_client, LID)
    clock.advance(redis_client, 25 * HOUR_MS)
    ezio = signed_in(app, "ezio")
    assert "no reply possible until the learner writes" in ezio.get("/admin/inbox").get_data(as_text=True)
    path = conversation_path(ezio, LID)
    page = ezio.get(path).get_data(as_text=True)
    assert "/reply" not in page and "Hand back to Bottega" in page
    refused = ezio.post(f"{path}/reply", data={"text": TEXT, "csrf_token": form_token(ezio, path)},
                        follow_redirects=True)
    assert "Not sent" in refused.get_data(as_text=True) and "24-hour window has closed" in \
        refused.get_data(as_text=True)
    assert queued(redis_client, LID) == before
    assert not [e for e in audit.recent(redis_client) if e.action == "handover.reply"]


def test_hand_back_closes_the_handover_and_is_audited(app, redis_client):
    ask_for_a_person(app, PHONE)
    ezio = signed_in(app, "ezio")
    path = conversation_path(ezio, LID)
    answer = ezio.post(f"{path}/back", data={"csrf_token": form_token(ezio, path)})
    assert answer.status_code == 303 and answer.location == "/admin/inbox"
    learner = stored(redis_client, LID)
    assert not learner.handover.open and learner.handover.closed_by == "admin"
    assert learner.flow == "m1_contatto"
    assert "chiuso la conversazione" in json.dumps(queued(redis_client, LID)[-1], ensure_ascii=False)
    assert "No open handovers" in ezio.get("/admin/inbox").get_data(as_text=True)
    closed = ezio.get(path).get_data(as_text=True)
    assert "closed: Bottega answers this learner" in closed and "Hand back" not in closed
    again = ezio.post(f"{path}/back", data={"csrf_token": form_token(ezio, path)}, follow_redirects=True)
    assert "Nothing handed back" in again.get_data(as_text=True)
    entries = [e for e in audit.recent(redis_client) if e.action == "handover.hand_back"]
    assert [(e.who, e.target) for e in entries] == [("ezio", learner_ref(LID))]
