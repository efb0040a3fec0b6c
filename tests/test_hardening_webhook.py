"""Findings of the adversarial run (issue 7), each as signed bodies through the real Flask app on real Redis.

Opt-out kept (a template's Stop button, a referral that must not undo it, a written riprendi that does);
identity changes (phone <-> BSUID, user_changed_number, user_changed_user_id); odd input that used to
crash a learner's every turn or go unanswered; replays older than the dedup window.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace

import pytest

from bot.channels.messenger.dev import text_payload as messenger_text_payload
from bot.channels.signature import sign
from bot.storage.keys import LearnerPart, learner_key
from bot.tutor.progress import Progress
from webhooks import create_app

SECRET = "test-app-secret"
NUMBER_ID = "100000000000001"
PAGE_ID = "200000000000002"
PHONE, BSUID = "393331112222", "IT.77001122334455667788"
NEW_PHONE, NEW_BSUID = "393339998888", "IT.99001122334455667788"


@pytest.fixture
def client(settings, redis_client, notified):
    return create_app(settings, redis_client=redis_client, notify=notified).test_client()


def post(client, payload: dict | bytes):
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return client.post("/webhook", data=raw, headers={"Content-Type": "application/json",
                                                      "X-Hub-Signature-256": sign(SECRET, raw)})


def wa_message(message: dict, *, phone: str | None = PHONE, bsuid: str = "", name: str = "Lucia") -> dict:
    """A WhatsApp webhook body carrying ``message`` from a user with this phone and/or BSUID."""
    contact: dict = {"profile": {"name": name}}
    sender: dict = {"id": f"wamid.{time.time_ns()}", "timestamp": str(int(time.time()))}
    if phone:
        contact["wa_id"] = phone
        sender["from"] = phone
    if bsuid:
        contact["user_id"] = bsuid
        sender["from_user_id"] = bsuid
    return {"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "390200000000",
                                                      "phone_number_id": NUMBER_ID},
        "contacts": [contact], "messages": [{**sender, **message}]}}]}]}


def text(body: str, **who) -> dict:
    return wa_message({"type": "text", "text": {"body": body}}, **who)


def tap(payload: str, title: str = "", **who) -> dict:
    return wa_message({"type": "interactive", "interactive": {"type": "button_reply",
                                                              "button_reply": {"id": payload, "title": title}}}, **who)


def progress(redis_client, lid: str) -> Progress | None:
    return Progress.from_hash(redis_client.hgetall(learner_key(lid, LearnerPart.PROGRESS)))


def outbox_texts(redis_client, lid: str) -> str:
    items = [json.loads(raw) for raw in redis_client.lrange(learner_key(lid, LearnerPart.OUTBOX), 0, -1)]
    return "\n".join(json.dumps(item["body"], ensure_ascii=False) for item in items)


def clear_outbox(redis_client, lid: str) -> None:
    redis_client.delete(learner_key(lid, LearnerPart.OUTBOX))


def onboard(client, **who) -> None:
    """A learner who chose Italian and their business: at the menu."""
    post(client, text("ciao", **who))
    post(client, tap("sys:lang:it", "Italiano", **who))
    post(client, tap("sys:biz:bakery", "Panificio", **who))


# -- 1. the opt-out is kept -------------------------------------------------------------------------------
def test_a_template_stop_button_opts_out_at_once_and_is_recorded(client, redis_client, course):
    lid = f"wa:{PHONE}"
    onboard(client, phone=PHONE)
    post(client, tap("sys:module:m1_contatto", "Contatto clienti"))
    clear_outbox(redis_client, lid)
    stop_button = wa_message({"type": "button", "button": {"payload": "Stop", "text": "Stop"}})
    assert post(client, stop_button).status_code == 200
    stored = progress(redis_client, lid)
    assert stored.opted_out and stored.consent[-1].state == "opted_out"
    assert stored.consent[-1].how == "tapped template_button"
    assert course.texts["stopped"].get("it").split(":")[0] in outbox_texts(redis_client, lid)


@pytest.mark.parametrize("payload", ["GET_STARTED", "corso-facebook", "RESUME_COURSE"])
def test_a_tap_or_referral_never_undoes_the_opt_out_but_a_written_riprendi_does(client, redis_client, payload):
    lid = f"wa:{PHONE}"
    onboard(client, phone=PHONE)
    post(client, text("stop"))
    post(client, tap("sys:yes", "Sì"))
    assert progress(redis_client, lid).opted_out
    post(client, wa_message({"type": "button", "button": {"payload": payload, "text": "Riprendi"}}))
    assert progress(redis_client, lid).opted_out  # a tap (here labelled Riprendi) answers, but does not re-open
    post(client, text("menu"))
    assert progress(redis_client, lid).opted_out  # writing anything else is answered, and changes nothing
    post(client, text("Riprendi!"))
    stored = progress(redis_client, lid)
    assert not stored.opted_out
    assert [entry.state for entry in stored.consent] == ["opted_out", "opted_in"]
    assert stored.consent[-1].how == "typed riprendi"


def test_an_opt_out_mid_checkup_cancels_its_clock_in_the_same_commit(client, redis_client, course):
    lid = f"wa:{PHONE}"
    onboard(client, phone=PHONE)
    post(client, tap("sys:checkup", "Check-up digitale"))
    post(client, tap("sys:checkup:start", "Inizia il check-up"))
    timers = learner_key(lid, LearnerPart.TIMERS)
    assert redis_client.zcard(timers) == len(course.checkup.warnings_seconds) + 1
    post(client, text("basta"))
    post(client, tap("sys:yes", "Sì"))
    stored = progress(redis_client, lid)
    assert stored.opted_out and not stored.checkup.running
    assert redis_client.exists(timers) == 0
    assert course.texts["checkup_abandoned"].get("it")[:30] in outbox_texts(redis_client, lid)


# -- 4. identity changes keep one learner -------------------------------------------------------------------
def test_a_learner_known_by_phone_who_arrives_with_a_bsuid_keeps_their_progress(client, redis_client):
    onboard(client, phone=PHONE)  # an older payload: phone only
    post(client, tap("sys:module:m1_contatto", "Contatto clienti"))
    before = progress(redis_client, f"wa:{PHONE}")
    assert before.flow == "m1_contatto"
    post(client, text("progressi", phone=PHONE, bsuid=BSUID))  # today's payload: BSUID and phone
    moved = progress(redis_client, f"wa:{BSUID}")
    assert moved is not None and (moved.flow, moved.step, moved.business) == (before.flow, before.step, "bakery")
    assert moved.learner_id == f"wa:{BSUID}" and moved.phone == PHONE and moved.bsuid == BSUID
    assert progress(redis_client, f"wa:{PHONE}") is None  # one record, not two
    assert redis_client.get(learner_key(f"wa:{PHONE}", LearnerPart.ALIAS)) == f"wa:{BSUID}".encode()
    post(client, text("menu", phone=PHONE))  # a phone-only payload still finds them
    assert progress(redis_client, f"wa:{PHONE}") is None
    assert progress(redis_client, f"wa:{BSUID}").rev == moved.rev + 1


def test_a_new_learner_with_both_ids_gets_an_alias_in_the_same_commit(client, redis_client):
    post(client, text("ciao", phone=PHONE, bsuid=BSUID))
    assert progress(redis_client, f"wa:{BSUID}") is not None
    assert redis_client.get(learner_key(f"wa:{PHONE}", LearnerPart.ALIAS)) == f"wa:{BSUID}".encode()
    post(client, tap("sys:lang:en", "English", phone=PHONE))  # later, a phone-only payload (a username user)
    assert progress(redis_client, f"wa:{BSUID}").lang == "en"


def system(change: dict, *, phone: str = PHONE, bsuid: str = BSUID) -> dict:
    message = {"from": phone, "id": f"wamid.{time.time_ns()}", "timestamp": str(int(time.time())), "type": "system",
               "system": change}
    if bsuid:
        message["from_user_id"] = bsuid
    return {"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "390200000000",
                                                      "phone_number_id": NUMBER_ID},
        "messages": [message]}}]}]}


def test_user_changed_number_moves_the_learner_and_their_old_number_starts_afresh(client, redis_client):
    onboard(client, phone=PHONE, bsuid=BSUID)
    post(client, tap("sys:module:m1_contatto", "Contatto clienti", phone=PHONE, bsuid=BSUID))
    before = progress(redis_client, f"wa:{BSUID}")
    change = {"body": f"User Lucia changed from {PHONE} to {NEW_PHONE}", "wa_id": NEW_PHONE,
              "type": "user_changed_number", "user_id": NEW_BSUID, "previous_user_id": BSUID}
    assert post(client, system(change)).status_code == 200
    moved = progress(redis_client, f"wa:{NEW_BSUID}")
    assert moved is not None and (moved.flow, moved.step) == (before.flow, before.step)
    assert (moved.phone, moved.bsuid, moved.learner_id) == (NEW_PHONE, NEW_BSUID, f"wa:{NEW_BSUID}")
    assert progress(redis_client, f"wa:{BSUID}") is None
    post(client, text("menu", phone=NEW_PHONE, bsuid=NEW_BSUID))  # their next message, from the new number
    assert progress(redis_client, f"wa:{NEW_BSUID}").rev == moved.rev + 1
    assert redis_client.get(learner_key(f"wa:{PHONE}", LearnerPart.ALIAS)) is None
    post(client, text("ciao", phone=PHONE, bsuid="IT.55550000111122223333"))  # someone else gets the old number
    stranger = progress(redis_client, "wa:IT.55550000111122223333")
    assert stranger is not None and stranger.flow == "" and stranger.rev == 1
    assert post(client, system(change)).status_code == 200  # redelivered: nothing moves twice
    assert progress(redis_client, f"wa:{NEW_BSUID}").flow == "m1_contatto"


def test_user_changed_user_id_moves_the_learner_to_their_new_bsuid(client, redis_client):
    onboard(client, phone=None, bsuid=BSUID)  # a username user: no phone at all
    before = progress(redis_client, f"wa:{BSUID}")
    change = {"type": "user_changed_user_id", "user_id": NEW_BSUID, "previous_user_id": BSUID}
    assert post(client, system(change, phone="", bsuid=BSUID)).status_code == 200
    post(client, text("progressi", phone=None, bsuid=NEW_BSUID))
    moved = progress(redis_client, f"wa:{NEW_BSUID}")
    assert moved.business == before.business == "bakery" and moved.rev == before.rev + 1
    assert progress(redis_client, f"wa:{BSUID}") is None
    post(client, text("menu", phone=None, bsuid=BSUID))  # a late message under the old BSUID still finds them
    assert progress(redis_client, f"wa:{BSUID}") is None


# -- 5. odd input is answered, never crashes a learner ---------------------------------------------------------
def test_a_profile_name_with_a_lone_surrogate_no_longer_silences_the_learner(client, redis_client):
    raw = json.dumps(text("ciao", name="Lu\ud800cia")).encode()  # json.dumps writes the escape "\ud800"
    assert b"\\ud800" in raw
    assert post(client, raw).status_code == 200
    assert post(client, text("ciao", name="Lu\ud800cia")).status_code == 200
    stored = progress(redis_client, f"wa:{PHONE}")
    assert stored is not None and stored.rev == 2 and stored.name == "Lu\ufffdcia"


@pytest.mark.parametrize("typed", ["፩", "٣", "9" * 5000, "𝟘"])
def test_digits_that_int_cannot_read_get_a_polite_answer(client, redis_client, typed, course):
    onboard(client)
    clear_outbox(redis_client, f"wa:{PHONE}")
    before = progress(redis_client, f"wa:{PHONE}")
    assert post(client, text(typed)).status_code == 200
    after = progress(redis_client, f"wa:{PHONE}")
    assert after.rev == before.rev + 1 and after.flow == before.flow
    assert "non ho capito" in outbox_texts(redis_client, f"wa:{PHONE}")


@pytest.mark.parametrize(("message", "expected_key"), [
    ({"type": "order", "order": {"catalog_id": "1", "product_items": [{"product_retailer_id": "x"}]}}, "order_reply"),
    ({"type": "interactive", "interactive": {"type": "nfm_reply", "nfm_reply": {
        "name": "flow", "body": "Sent", "response_json": "{\"flow_token\": \"x\"}"}}}, "unreadable_reply"),
    ({"type": "unsupported", "unsupported": {"type": "poll_creation"}}, "unreadable_reply"),
    ({"type": "unsupported", "unsupported": {"type": "edit"}}, "edit_reply"),
    ({"type": "edit", "edit": {}}, "edit_reply"),
])
def test_what_bottega_cannot_read_gets_an_answer_and_the_question_again(client, redis_client, course, message,
                                                                       expected_key):
    onboard(client)
    clear_outbox(redis_client, f"wa:{PHONE}")
    assert post(client, wa_message(message)).status_code == 200
    said = outbox_texts(redis_client, f"wa:{PHONE}")
    assert course.texts[expected_key].get("it")[:25] in said
    assert course.texts["menu_intro"].get("it")[:20] in said  # where they are, again


def test_request_welcome_welcomes_a_new_learner_and_is_quiet_for_a_known_one(client, redis_client, course):
    assert post(client, wa_message({"type": "request_welcome"})).status_code == 200
    assert "Sono Bottega" in outbox_texts(redis_client, f"wa:{PHONE}")
    clear_outbox(redis_client, f"wa:{PHONE}")
    post(client, wa_message({"type": "request_welcome"}))
    assert outbox_texts(redis_client, f"wa:{PHONE}") == ""


def test_a_messenger_edit_is_answered_and_a_user_ref_guest_is_welcomed(client, redis_client, course):
    psid = "7400000000000009"
    post(client, messenger_text_payload("ciao", psid, PAGE_ID))
    clear_outbox(redis_client, f"ms:{psid}")
    now = int(time.time() * 1000)
    edit = {"object": "page", "entry": [{"id": PAGE_ID, "time": now, "messaging": [{
        "sender": {"id": psid}, "recipient": {"id": PAGE_ID}, "timestamp": now,
        "message_edit": {"mid": "m_abc", "text": "ciao ciao", "num_edit": 1}}]}]}
    assert post(client, edit).status_code == 200
    assert course.texts["edit_reply"].get("it")[:25] in outbox_texts(redis_client, f"ms:{psid}")
    guest = {"object": "page", "entry": [{"id": PAGE_ID, "time": now, "messaging": [{
        "sender": {"user_ref": "guest-4711"}, "recipient": {"id": PAGE_ID}, "timestamp": now,
        "postback": {"mid": "m_guest", "title": "Inizia", "payload": "GET_STARTED"}}]}]}
    assert post(client, guest).status_code == 200
    outbox = learner_key("ms:ref.guest-4711", LearnerPart.OUTBOX)
    items = [json.loads(raw) for raw in redis_client.lrange(outbox, 0, -1)]
    assert items and all(item["body"]["recipient"] == {"user_ref": "guest-4711"} for item in items)


# -- 6. replays --------------------------------------------------------------------------------------------------
def test_a_signed_body_replayed_after_the_dedup_window_is_not_handled(client, redis_client, settings):
    old = text("ciao")
    message = old["entry"][0]["changes"][0]["value"]["messages"][0]
    message["timestamp"] = str(int(time.time()) - settings.dedup_ttl_seconds - 3600)
    assert post(client, old).status_code == 200
    assert list(redis_client.scan_iter(match="bottega:{*}:*")) == []


def test_a_replay_of_an_id_a_full_dedup_set_forgot_is_refused(settings, redis_client, notified):
    small = replace(settings, dedup_max_ids_per_learner=3)
    client = create_app(small, redis_client=redis_client, notify=notified).test_client()
    first = text("ciao")
    first["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = str(int(time.time()) - 5)
    post(client, first)
    for word in ("aiuto", "menu", "progressi"):
        post(client, text(word))  # the cap of 3 ids now forgets the first one
    seen = learner_key(f"wa:{PHONE}", LearnerPart.SEEN)
    first_id = first["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    assert redis_client.zscore(seen, first_id) is None
    rev = progress(redis_client, f"wa:{PHONE}").rev
    post(client, first)
    assert progress(redis_client, f"wa:{PHONE}").rev == rev
