"""Issue 12 §1 and §3 through the real Procfile processes (gunicorn web + Dramatiq worker) and the fake Graph API:
linking Messenger and WhatsApp with a code, a racing duplicate and a crashed merge, a BSUID and a changed
number on the linked channel, and "delete my data" scanned over the whole keyspace, /verify then revoked.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import redis as redis_lib

from bot.certificates.model import Certificate, new_code, new_token
from bot.channels import describe
from bot.channels.messenger import MESSENGER
from bot.channels.whatsapp import WHATSAPP
from bot.storage import certificate_store
from bot.storage.key_values import read_value
from bot.storage.keys import LearnerPart, learner_key
from bot.storage.links import Journal
from bot.tutor import conversations
from bot.tutor.progress import Progress
from bot.tutor.progress_parts import ChannelConversation
from tests.service import PHONE_NUMBER_ID, Phone, Service
from tests.test_procfile import finish, steps_of_module_1

pytestmark = pytest.mark.procfile

CODE = re.compile(r"\*([A-Z0-9]{4}-[A-Z0-9]{4})\*")


@pytest.fixture
def service(tmp_path) -> Iterator[Service]:
    with Service(tmp_path) as svc:
        yield svc


def wait_until(check, timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout}s: {what}")


def texts(phone: Phone) -> list[str]:
    return [describe(phone.channel, call["body"]).text for call in phone.calls()]


def code_from(phone: Phone) -> str:
    phone.send("collega")
    phone.wait_for("mandami questo codice")
    for text in reversed(texts(phone)):
        if match := CODE.search(text):
            return match.group(1)
    raise AssertionError("no code shown")


def record(client: redis_lib.Redis, learner_id: str) -> Progress | None:
    return Progress.from_hash(client.hgetall(learner_key(learner_id, LearnerPart.PROGRESS)))


def whatsapp_body(message: dict, *, contact: dict) -> dict:
    return {"object": "whatsapp_business_account", "entry": [{"id": "WABA_ID", "changes": [{
        "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "390200000000", "phone_number_id": PHONE_NUMBER_ID},
            "contacts": [contact], "messages": [message]}}]}]}


def test_a_messenger_learner_with_module_1_done_links_whatsapp_and_keeps_it_across_bsuid_and_number(service,
                                                                                                       course):
    client = service.redis_client()
    ms = Phone(service, MESSENGER, "7000000000000701")
    wa = Phone(service, WHATSAPP, "393330000701")
    finish(steps_of_module_1(ms, course, "it"))
    code = code_from(ms)
    wa.send(f"collega {code}")
    wa.wait_for("sono collegati")
    ms.wait_for("sono collegati")  # confirmed in both chats
    wa.send("progressi")
    wa.wait_for("Moduli completati: 1 su")  # module 1 done, seen from WhatsApp
    assert client.get(learner_key(wa.learner_id if hasattr(wa, "learner_id") else f"wa:{wa.user}",
                                  LearnerPart.ALIAS)) == f"ms:{ms.user}".encode()

    # WhatsApp now names the person by a BSUID, the phone still in the payload: the same learner
    bsuid = "IT.7000000000000701"
    now = str(service.now_ms() // 1000)
    service.post(whatsapp_body({"from": wa.user, "from_user_id": bsuid, "id": f"wamid.{uuid.uuid4().hex}",
                                "timestamp": now, "type": "text", "text": {"body": "progressi"}},
                               contact={"profile": {"name": "Dev"}, "wa_id": wa.user, "user_id": bsuid}))
    wait_until(lambda: client.get(learner_key(f"wa:{bsuid}", LearnerPart.ALIAS)) == f"ms:{ms.user}".encode(),
               what="the BSUID points at the learner")
    assert record(client, f"wa:{bsuid}") is None and record(client, f"ms:{ms.user}").modules_done == ["m1_contatto"]

    # they change their number: the WhatsApp conversation follows, the old number is free again
    service.post(whatsapp_body({"from": wa.user, "id": f"wamid.{uuid.uuid4().hex}", "timestamp": now,
                                "type": "system", "system": {"body": "changed", "wa_id": "393330000799",
                                                             "type": "user_changed_number"}},
                               contact={"profile": {"name": "Dev"}, "wa_id": "393330000799"}))
    wait_until(lambda: client.get(learner_key("wa:393330000799", LearnerPart.ALIAS)) == f"ms:{ms.user}".encode(),
               what="the new number points at the learner")
    assert client.get(learner_key(f"wa:{wa.user}", LearnerPart.ALIAS)) is None
    moved = Phone(service, WHATSAPP, "393330000799")
    moved.send("progressi")
    moved.wait_for("Moduli completati: 1 su")
    assert not client.keys("bottega:*:merge")


def test_a_racing_duplicate_and_a_crashed_merge_leave_consistent_state(service):
    client = service.redis_client()
    ms = Phone(service, MESSENGER, "7000000000000702")
    first, second = Phone(service, WHATSAPP, "393330000702"), Phone(service, WHATSAPP, "393330000703")
    for phone in (ms, first, second):
        phone.send("ciao")
        phone.wait_turn()
    code = code_from(ms)
    posts = [threading.Thread(target=phone.send, args=(f"collega {code}",)) for phone in (first, second, first)]
    for post in posts:
        post.start()
    for post in posts:
        post.join()
    owner = f"ms:{ms.user}".encode()
    wait_until(lambda: sum(client.get(learner_key(f"wa:{p.user}", LearnerPart.ALIAS)) == owner
                           for p in (first, second)) == 1 and not client.keys("bottega:*:merge"),
               what="exactly one of the two linked")
    time.sleep(1)
    linked = [p for p in (first, second) if client.get(learner_key(f"wa:{p.user}", LearnerPart.ALIAS)) == owner]
    assert len(linked) == 1 and record(client, f"wa:{linked[0].user}") is None
    other = second if linked[0] is first else first
    assert record(client, f"wa:{other.user}") is not None  # the loser kept their own record, untouched
    kept = record(client, f"ms:{ms.user}")
    assert [c.learner_id for c in conversations.every(kept) if c.channel == "whatsapp"] == [f"wa:{linked[0].user}"]

    # a merger that died after reserving both learners (step 2 of bot.storage.links): the next message finishes it
    ig_like = Phone(service, MESSENGER, "7000000000000704")
    ig_like.send("ciao")
    ig_like.wait_turn()
    now = service.now_ms()
    journal = Journal(id="crashed", kind="link", into=f"wa:{other.user}", other=f"ms:{ig_like.user}",
                      channel="messenger", at_ms=now,
                      conversation=ChannelConversation(channel="messenger", learner_id=f"ms:{ig_like.user}",
                                                       user_id=ig_like.user).to_json())
    client.set(learner_key(f"ms:{ig_like.user}", LearnerPart.MERGE), journal.to_json())
    client.set(learner_key(f"wa:{other.user}", LearnerPart.MERGE), journal.to_json())
    ig_like.send("menu")
    wait_until(lambda: not client.keys("bottega:*:merge"), what="the journal finished")
    assert client.get(learner_key(f"ms:{ig_like.user}", LearnerPart.ALIAS)) == f"wa:{other.user}".encode()
    assert record(client, f"ms:{ig_like.user}") is None  # both merged: one record, the alias leads to it
    ig_like.wait_for("Ecco i moduli")  # and the message that found the journal was answered after it
    # a journal left by a merger that died before step 2 (only the joining learner reserved), long ago: apart
    lone = Journal(id="old", kind="link", into=f"ms:{ms.user}", other=f"wa:{other.user}", channel="whatsapp",
                   at_ms=now - 60_000, conversation={})
    client.set(learner_key(f"wa:{other.user}", LearnerPart.MERGE), lone.to_json())
    other.send("menu")
    wait_until(lambda: not client.keys("bottega:*:merge"), what="the old journal rolled back")
    assert client.get(learner_key(f"wa:{other.user}", LearnerPart.ALIAS)) is None


def keys_naming(client: redis_lib.Redis, needles: tuple[str, ...]) -> list[str]:
    found = []
    for key in client.scan_iter(count=1000):
        name = key.decode()
        value = json.dumps(read_value(client, key), default=str, ensure_ascii=False)
        if any(needle in name or needle in value for needle in needles):
            found.append(name)
    return found


def test_delete_my_data_leaves_no_key_naming_the_learner_and_verify_says_revoked(service, course):
    client = service.redis_client()
    ms = Phone(service, MESSENGER, "7000000000000705")
    wa = Phone(service, WHATSAPP, "393330000705")
    ms.send("ciao")
    ms.wait_turn()
    wa.send(f"collega {code_from(ms)}")
    wa.wait_for("sono collegati")
    certificate = Certificate(code=new_code(), token=new_token(), learner_id=f"ms:{ms.user}", name="Anna",
                              business_name="Forno Anna", issued_ms=service.now_ms(), score_percent=90)
    certificate_store.save(client, certificate)
    assert service.session.get(f"{service.url}/verify/{certificate.code}").status_code == 200
    wa.send("i miei dati")
    wa.wait_for("tutto quello che ho salvato")
    document = next(call["body"] for call in wa.calls() if call["body"].get("type") == "document")
    exported = service.session.get(document["document"]["link"])
    assert exported.status_code == 200 and json.loads(exported.text)["learner_id"] == f"ms:{ms.user}"
    wa.send("cancella i miei dati")
    wa.wait_for("Vuoi che cancelli")
    wa.options = next(shown.options for shown in (describe(WHATSAPP, c["body"]) for c in reversed(wa.calls()))
                      if "Vuoi che cancelli" in shown.text)
    wa.tap("Sì")
    wa.wait_for("cancello tutti i tuoi dati", timeout=120)  # the goodbye goes first
    needles = (ms.user, wa.user)
    wait_until(lambda: keys_naming(client, needles) == [], timeout=60, what="every key naming them erased")
    time.sleep(1)  # nothing comes back afterwards (a late send job writes nothing for an empty outbox)
    assert keys_naming(client, needles) == []
    answer = service.session.get(f"{service.url}/verify/{certificate.code}")
    assert answer.status_code == 410 and "revocato" in answer.text.lower()
