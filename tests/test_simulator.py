"""The simulator's parts without a browser: each channel's bubbles and taps, the phone's screen, the golden
transcript it writes, the 24-hour window, the dev test clock, and its pages on a real server on loopback
(where they exist, what they refuse, that the learner's side goes through the real signed /webhook).
The browser walks are in test_simulator_browser.py."""

from __future__ import annotations

import dataclasses
import io
import shutil
import time
from pathlib import Path

import pytest
import requests

from bot import channels, composition
from bot.channels.bubbles import BubbleKind, ChoiceStyle
from bot.delivery import timers
from bot.dev.chat import Chat
from bot.dev.transcripts import read_transcript
from bot.model.events import EventKind
from bot.model.replies import Media, MediaKind, Option, Reply
from bot.simulator import golden
from bot.simulator.phones import phone_view
from bot.simulator.session import Action, Entry, SessionLog, learner_id, learner_user
from bot.simulator.window import SERVICE_WINDOW_MS, next_proactive
from bot.storage import clock as test_clock
from bot.storage.keys import LearnerPart, learner_key
from bot.storage.releases import FixedRegistry
from bot.tutor.engine import Engine
from bot.tutor.progress import Progress
from config.settings import PROJECT_ROOT, Settings
from tests import loopback
from webhooks import create_app

EVERY = channels.every()
SESSION = "12345678"


def options(count: int) -> tuple[Option, ...]:
    return tuple(Option(id=f"c:m:s:{n}", title=f"Option {n}", description=f"row {n}") for n in range(1, count + 1))


def sent(parts, reply: Reply, session: str = SESSION) -> list[dict]:
    """The calls the fake Graph API would list for this reply to the session's learner."""
    user = learner_user(parts, session)
    phone = parts.dev.phone_of(user)
    return [{"body": body} for body in parts.render(reply, user_id=user, phone=phone)]


# --- each channel's bubbles, and taps that come back as the choice shown --------------------------------


@pytest.mark.parametrize("parts", EVERY, ids=lambda parts: parts.channel.name)
@pytest.mark.parametrize("count", [2, 6])
def test_every_choice_a_phone_shows_taps_back_as_that_choice(parts, count):
    bubbles = [parts.bubble(call["body"]) for call in sent(parts, Reply(text="Which one?", options=options(count)))]
    shown = [bubble for bubble in bubbles if bubble.choices]
    assert len(shown) == 1 and shown[0].style is not ChoiceStyle.NONE
    assert [(c.id, c.title) for c in shown[0].choices] == [(o.id, o.title) for o in options(count)]
    for choice in shown[0].choices:
        payload = parts.dev.tap_choice(choice, "393330000777", "1", at_ms=1_789_000_000_000)
        events, skipped = parts.parse(payload)
        assert skipped == [] and len(events) == 1
        assert (events[0].kind, events[0].payload, events[0].timestamp_ms) == (EventKind.CHOICE, choice.id,
                                                                                 1_789_000_000_000)


def test_whatsapp_shows_buttons_then_a_list_behind_its_button_and_documents_by_name():
    whatsapp = channels.parts_for("whatsapp")
    (buttons,) = [whatsapp.bubble(c["body"]) for c in sent(whatsapp, Reply(text="?", options=options(3)))]
    (listed,) = [whatsapp.bubble(c["body"]) for c in sent(whatsapp, Reply(text="?", options=options(4),
                                                                          choose_label="Scegli"))]
    assert (buttons.style, listed.style, listed.list_label) == (ChoiceStyle.BUTTONS, ChoiceStyle.LIST, "Scegli")
    assert listed.choices[0].description == "row 1" and {c.tap for c in listed.choices} == {"list_reply"}
    document = Reply(media=Media(kind=MediaKind.DOCUMENT, url="https://x.example/certificates/t.pdf",
                                 filename="attestato-bottega.pdf"))
    (shown,) = [whatsapp.bubble(c["body"]) for c in sent(whatsapp, document)]
    assert (shown.kind, shown.filename, shown.url) == (BubbleKind.DOCUMENT, "attestato-bottega.pdf",
                                                        "https://x.example/certificates/t.pdf")
    receipt = whatsapp.bubble(whatsapp.read_receipt("wamid.dev1"))
    assert (receipt.kind, receipt.read_message_id, receipt.visible) == (BubbleKind.RECEIPT, "wamid.dev1", False)
    template = whatsapp.bubble({"messaging_product": "whatsapp", "to": "+393330000777", "type": "template",
                                "template": {"name": "lesson_reminder", "language": {"code": "it"}, "components": [
                                    {"type": "body", "parameters": [{"type": "text", "text": "Marta"}]},
                                    {"type": "button", "sub_type": "quick_reply", "index": "0",
                                     "parameters": [{"type": "payload", "payload": "sys:resume"}]}]}})
    assert (template.kind, template.template, template.text) == (BubbleKind.TEMPLATE, "lesson_reminder/it", "Marta")
    events, _ = whatsapp.parse(whatsapp.dev.tap_choice(template.choices[0], "393330000777", "100000000000001"))
    assert (events[0].kind, events[0].payload) == (EventKind.CHOICE, "sys:resume")


def test_messenger_button_templates_tap_back_as_postbacks_and_links_stay_links():
    messenger = channels.parts_for("messenger")
    bubble = messenger.bubble({"recipient": {"id": "7001"}, "messaging_type": "RESPONSE", "message": {"attachment": {
        "type": "template", "payload": {"template_type": "button", "text": "Your certificate", "buttons": [
            {"type": "web_url", "url": "https://x.example/verify/BTG-1", "title": "Verify"},
            {"type": "postback", "payload": "sys:menu", "title": "Menu"}]}}}})
    assert bubble.style is ChoiceStyle.BUTTON_TEMPLATE and bubble.text == "Your certificate"
    link, postback = bubble.choices
    assert (link.tap, link.url) == ("", "https://x.example/verify/BTG-1") and postback.tap == "postback"
    events, _ = messenger.parse(messenger.dev.tap_choice(postback, "7001", "200000000000002"))
    assert (events[0].kind, events[0].payload) == (EventKind.CHOICE, "sys:menu")
    assert messenger.bubble({"recipient": {"id": "7001"}, "sender_action": "typing_on"}).kind is BubbleKind.ACTION


# --- a phone's screen --------------------------------------------------------------------------------------


def test_a_phone_interleaves_the_learner_and_bottega_in_arrival_order_and_marks_read():
    whatsapp, messenger = channels.parts_for("whatsapp"), channels.parts_for("messenger")
    calls = sent(whatsapp, Reply(text="Ciao!", options=options(2)))  # calls 0, 1 would be to another learner
    calls = [*sent(whatsapp, Reply(text="someone else"), session="99999999"), *calls]
    calls += [{"body": whatsapp.read_receipt("wamid.second")}, *sent(whatsapp, Reply(text="Bene."))]
    calls += sent(messenger, Reply(text="Scegli", options=options(2)))
    entries = [Entry(action=Action.SEND, channel="whatsapp", text="ciao", message_ids=("wamid.first",), calls_before=1),
               Entry(action=Action.TAP, channel="whatsapp", text="Option 1", option_id="c:m:s:1",
                     message_ids=("wamid.second",), calls_before=2),
               Entry(action=Action.CLOCK, seconds=60, calls_before=4)]
    view = phone_view(whatsapp, SESSION, entries, calls)
    assert [(line.side, line.entry.text if line.entry else line.bubble.text) for line in view.lines] == [
        ("learner", "ciao"), ("bot", "Ciao!"), ("learner", "Option 1"), ("bot", "Bene."), ("clock", "")]
    assert [line.read for line in view.lines if line.side == "learner"] == [True, True]  # the later one's receipt
    assert view.latest_choices_number == 1
    chat = phone_view(messenger, SESSION, entries, calls)
    assert [line.side for line in chat.lines] == ["clock", "bot"]
    assert [c.title for c in chat.quick_replies] == ["Option 1", "Option 2"]  # live: the newest message's
    later = phone_view(messenger, SESSION, [*entries, Entry(action=Action.SEND, channel="messenger", text="x",
                                                            calls_before=len(calls))], calls)
    assert later.quick_replies == ()  # the learner wrote: the chips are gone, the buttons' message stays


# --- golden conversations ------------------------------------------------------------------------------


def test_the_golden_transcript_says_what_the_replay_will_check(tmp_path):
    whatsapp = channels.parts_for("whatsapp")
    calls = [*sent(whatsapp, Reply(text="Sono Bottega.\nSecond line", options=options(2))),
             *sent(whatsapp, Reply(text="Giusto!", options=options(4)))]
    entries = [Entry(action=Action.SEND, channel="whatsapp", text="ciao", calls_before=0),
               Entry(action=Action.TAP, channel="whatsapp", text="Option 2", option_id="c:m:s:2", calls_before=1),
               Entry(action=Action.CLOCK, seconds=600, calls_before=2, settled=False),
               Entry(action=Action.TAP, channel="whatsapp", text="Option 1", option_id="c:m:s:1", latest=False,
                     calls_before=2)]
    recorded = golden.transcript(phone_view(whatsapp, SESSION, entries, calls), name="Ciao e risposta",
                                 session=SESSION)
    path = golden.file_name("Ciao e risposta", tmp_path)
    path.write_text(recorded.text)
    assert path.name == "ciao_e_risposta.yaml"
    assert golden.file_name("Ciao e risposta", tmp_path).name == "ciao_e_risposta_2.yaml"
    transcript = read_transcript(path)
    assert [(turn.action, turn.value) for turn in transcript.turns] == [
        ("send", "ciao"), ("tap", "Option 2"), ("wait", "600"), ("tap_old", "Option 1")]
    first, second, wait, _ = transcript.turns
    assert first.expect.contains == ("Sono Bottega.",) and first.expect.choices == ("Option 1", "Option 2")
    assert second.expect == type(second.expect)()  # the clock moved before its replies had all gone: unchecked
    assert wait.expect.contains == () and "Turns 2" in recorded.text
    assert [channel.name for channel in transcript.channels] == ["whatsapp"]
    with pytest.raises(ValueError, match="did nothing"):
        golden.transcript(phone_view(whatsapp, "87654321", [], calls), name="x", session="87654321")


# --- the 24-hour window -----------------------------------------------------------------------------------


@pytest.mark.parametrize("parts", EVERY, ids=lambda parts: parts.channel.name)
def test_the_next_proactive_message_follows_consent_the_window_and_the_channel(parts):
    wrote = 1_789_000_000_000
    learner = Progress(learner_id=f"{parts.channel.prefix}:1", channel=parts.channel.name, user_id="1",
                       last_inbound_at_ms=wrote)
    assert next_proactive(learner, wrote + SERVICE_WINDOW_MS - 1).how == "free-form"
    after = next_proactive(learner, wrote + SERVICE_WINDOW_MS).how
    assert after == ("template" if parts.outside_window.value == "template" else "nothing")
    assert next_proactive(learner.with_changes(opted_out=True), wrote + 1).how == "nothing"


# --- the dev test clock -------------------------------------------------------------------------------


def test_the_test_clock_moves_dev_turns_and_timers_forward_and_production_never_reads_it(redis_client, course,
                                                                                           settings):
    production = Settings.from_env({"BOTTEGA_ENV": "production", "REDIS_URL": settings.redis_url},
                                   require_secrets=False)
    assert isinstance(composition.clock(production, redis_client), test_clock.SystemClock)
    with pytest.raises(ValueError, match="forward"):
        test_clock.advance(redis_client, -1)
    chat = Chat(client=redis_client, course=course, settings=settings, channel=EVERY[0].channel,
                user_id="393330000901", out=io.StringIO())  # its own clock: the real one here
    chat.send_line("ciao")
    for option_id in ("sys:lang:it", "sys:biz:bakery", "sys:checkup", "sys:checkup:start"):
        chat.send(kind=EventKind.CHOICE, payload=option_id)
    key = learner_key(f"{chat.channel.prefix}:{chat.user_id}", LearnerPart.TIMERS)
    pending = redis_client.zcard(key)
    assert pending >= 2
    dev = Settings.from_env({"BOTTEGA_ENV": "dev", "REDIS_URL": settings.redis_url})
    dispatcher = composition.dispatcher(dev, redis_client, FixedRegistry(Engine(course)), notify=lambda lid: None)
    sweeper = timers.Sweeper(redis_client, lambda: dispatcher)
    sweeper.start()
    try:
        assert timers.sweep(redis_client, dispatcher, dispatcher.clock()) == 0  # nothing is due yet
        first_due = int(redis_client.zrange(key, 0, 0, withscores=True)[0][1])
        test_clock.advance(redis_client, first_due - test_clock.system_ms() + 1000)  # just past the first warning
        deadline = time.monotonic() + 10
        while redis_client.zcard(key) == pending and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        sweeper.stop()
    assert redis_client.zcard(key) == pending - 1  # the worker's sweeper fired exactly the one now due
    assert dispatcher.clock() >= first_due  # dev turns run on the moved clock too
    real = composition.dispatcher(production, redis_client, FixedRegistry(Engine(course)), notify=lambda lid: None)
    assert abs(real.clock() - test_clock.system_ms()) < 60_000  # production: the real clock, whatever the offset


# --- the pages, on a real server --------------------------------------------------------------------------


@pytest.fixture
def served(redis_client, redis_url, fake, tmp_path):
    """The dev app on a real server on loopback, on a copy of the flows folder and the fake Graph API."""
    flows = tmp_path / "flows"
    shutil.copytree(PROJECT_ROOT / "flows", flows)
    settings = Settings.from_env({"BOTTEGA_ENV": "dev", "REDIS_URL": redis_url, "GRAPH_API_URL": fake.url,
                                  "META_APP_SECRET": "sim-secret-42", "BOTTEGA_FLOWS_DIR": str(flows)})
    app = create_app(settings, redis_client=redis_client, notify=lambda lid: None)
    with loopback.served(app) as url:
        yield url, settings


def test_production_has_no_simulator_until_the_console_signs_admins_in(redis_client, settings):
    production = dataclasses.replace(settings, env="production")
    app = create_app(production, redis_client=redis_client, notify=lambda lid: None)
    assert app.test_client().get("/simulator").status_code == 404
    assert app.test_client().get(f"/simulator/{SESSION}").status_code == 404


def test_the_learner_side_posts_signed_webhooks_and_the_secret_stays_on_the_server(served, redis_client, fake):
    url, settings = served
    start = requests.get(f"{url}/simulator", allow_redirects=False, timeout=10)
    assert start.status_code == 303
    page = requests.get(f"{url}{start.headers['Location']}", timeout=10)
    session = start.headers["Location"].rsplit("/", 1)[-1]
    assert page.status_code == 200 and "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert "<script>" not in page.text and " style=" not in page.text and "<script src=" in page.text
    whatsapp = EVERY[0]
    answer = requests.post(f"{url}/simulator/{session}/send", data={"channel": whatsapp.channel.name, "text": "ciao"},
                           headers={"Accept": "application/json", "Origin": url}, timeout=10)
    assert answer.status_code == 200, answer.text
    record = Progress.from_hash(redis_client.hgetall(learner_key(learner_id(whatsapp, session), LearnerPart.PROGRESS)))
    assert record is not None and record.last_inbound_at_ms > 0  # the real /webhook took it: signed, parsed, handled
    (entry,) = SessionLog(redis_client, session).entries()
    assert entry.text == "ciao" and entry.message_ids and entry.settled
    panels = requests.get(f"{url}/simulator/{session}/panels", timeout=10)
    assert set(panels.json()) >= {f"screen-{parts.channel.name}" for parts in EVERY} | {"clock-state", "graph-state"}
    for text in (page.text, panels.text):
        assert "sim-secret-42" not in text and settings.whatsapp_app_secret not in text

    refused = requests.post(f"{url}/simulator/{session}/send", data={"channel": whatsapp.channel.name, "text": "x"},
                            headers={"Origin": "https://elsewhere.example"}, timeout=10)
    assert refused.status_code == 403 and len(SessionLog(redis_client, session).entries()) == 1
    assert requests.post(f"{url}/simulator/{session}/graph", data={"code": "131047"}, timeout=10,
                         allow_redirects=False).status_code == 303
    assert fake.server.state.config["permanent_code"] == 131047
    assert requests.get(f"{url}/simulator/not-a-session", timeout=10).status_code == 404


def test_a_golden_conversation_is_saved_beside_the_course_and_never_over_another(served, redis_client):
    url, settings = served
    whatsapp = EVERY[0]
    SessionLog(redis_client, SESSION).append(Entry(action=Action.SEND, channel=whatsapp.channel.name, text="ciao"))
    saved = []
    for _ in range(2):
        answer = requests.post(f"{url}/simulator/{SESSION}/golden", timeout=10, headers={"Accept": "application/json"},
                               data={"channel": whatsapp.channel.name, "name": "Primo saluto"})
        assert answer.status_code == 200, answer.text
        saved.append(Path(answer.json()["path"]))
    assert [path.name for path in saved] == ["primo_saluto.yaml", "primo_saluto_2.yaml"]
    assert all(path.parent == settings.flows_dir / "tests" for path in saved)
    assert read_transcript(saved[0]).name == "Primo saluto"
    empty = requests.post(f"{url}/simulator/87654321/golden", data={"channel": whatsapp.channel.name}, timeout=10)
    assert empty.status_code == 400 and "did nothing" in empty.text



def test_in_production_the_console_opens_it_through_its_sign_in_check(redis_client, settings, fake):
    """The seam the admin console fills: a guard (its sign-in check) and a source of what was sent."""
    from flask import Flask, Response

    from bot import simulator
    from bot.simulator.outbound import FakeGraph

    def signed_in_admins_only(view):
        def guarded(**kwargs):
            return Response("sign in", 401) if "admin" not in requests_of_the_test else view(**kwargs)
        guarded.__name__ = view.__name__
        return guarded

    settings = dataclasses.replace(settings, env="production")
    requests_of_the_test: set[str] = set()
    app = Flask(__name__)
    assert not simulator.install(app, settings=settings, client=redis_client, guard=signed_in_admins_only)
    assert simulator.install(app, settings=settings, client=redis_client, guard=signed_in_admins_only,
                             outbound=lambda session: FakeGraph(fake.url))
    client = app.test_client()
    assert client.get(f"/simulator/{SESSION}").status_code == 401
    requests_of_the_test.add("admin")
    page = client.get(f"/simulator/{SESSION}")
    assert page.status_code == 200 and b"It cannot be moved here" in page.data  # the wall clock, no control
    assert client.post(f"/simulator/{SESSION}/clock", data={"seconds": "60"}).status_code == 404


def test_the_phones_draw_documents_templates_and_button_templates_from_what_was_sent(served, fake):
    """What the worker sent (recorded by the fake Graph API) as the page draws it: the certificate opens."""
    url, _ = served
    whatsapp, messenger = channels.parts_for("whatsapp"), channels.parts_for("messenger")
    certificate = Reply(media=Media(kind=MediaKind.DOCUMENT, url=f"{url}/certificates/abc.pdf",
                                    filename="attestato-bottega.pdf", caption="Il tuo attestato"))
    bodies = [call["body"] for call in sent(whatsapp, certificate)]
    bodies.append({"messaging_product": "whatsapp", "recipient_type": "individual",
                   "to": f"+{learner_user(whatsapp, SESSION)}", "type": "template", "template": {
                       "name": "lesson_reminder", "language": {"code": "it"}, "components": [
                           {"type": "button", "sub_type": "quick_reply", "index": "0",
                            "parameters": [{"type": "payload", "payload": "sys:resume"}]}]}})
    bodies.append({"recipient": {"id": learner_user(messenger, SESSION)}, "messaging_type": "RESPONSE",
                   "message": {"attachment": {"type": "template", "payload": {
                       "template_type": "button", "text": "Il tuo attestato è pronto", "buttons": [
                           {"type": "web_url", "url": f"{url}/verify/BTG-1", "title": "Verifica"},
                           {"type": "postback", "payload": "sys:menu", "title": "Menu"}]}}}})
    with fake.server.state.lock:  # as if the worker had sent them
        fake.server.state.calls.extend({"body": body, "message_id": ""} for body in bodies)
    panels = requests.get(f"{url}/simulator/{SESSION}/panels", timeout=10).json()
    screen = panels[f"screen-{whatsapp.channel.name}"]
    assert f'href="{url}/certificates/abc.pdf"' in screen and "attestato-bottega.pdf" in screen
    assert 'data-role="document"' in screen and "Il tuo attestato" in screen
    assert "lesson_reminder/it" in screen and 'data-option-id="sys:resume"' in screen
    chat = panels[f"screen-{messenger.channel.name}"]
    assert 'data-style="button_template"' in chat and f'href="{url}/verify/BTG-1"' in chat
    assert 'data-option-id="sys:menu"' in chat and 'value="postback"' in chat
