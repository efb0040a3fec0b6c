"""Export and erase one learner (issue 11 §2, issue 12 §3): real webhooks, real Redis, the whole keyspace scanned.

A learner known by phone and BSUID walks in through signed webhooks (onboarding, a module, the timed
check-up: dedup ids, outbox, clock events, the timer index, an alias), gets a delivery failure status
and a certificate; another learner must come through untouched. After the erase no key name and no
stored byte anywhere in Redis (the learners' database and the send queue's) names them, and /verify
says "revoked".
"""

from __future__ import annotations

import json
import time

import pytest
import redis

from bot import composition, privacy
from bot.certificates.model import Certificate, new_code, new_token
from bot.channels.signature import sign
from bot.cli import main as cli
from bot.console import audit
from bot.delivery.broker import CLUSTER_SCHEMES
from bot.model.privacy import learner_ref
from bot.storage import broadcast_store, certificate_store
from bot.storage.key_values import raw_text
from bot.storage.keys import LearnerPart, learner_handover_index_key, learner_key, learner_timer_index_key
from bot.storage.open_day_ledger import OpenDayLedger
from config.settings import broker_url
from webhooks import create_app

SECRET = "test-app-secret"
NUMBER_ID = "100000000000001"
PHONE, BSUID = "393331112222", "IT.77001122334455667788"
OTHER_PHONE = "393335556666"
EVENT = "od_2027_01"
BROADCAST = "20261130-090000-abcdef"
LID = f"wa:{BSUID}"  # today's payloads carry both: the record is keyed on the BSUID, the phone is an alias


@pytest.fixture
def client(settings, redis_client):
    return create_app(settings, redis_client=redis_client, notify=lambda learner_id: None).test_client()


def post(client, payload: dict):
    raw = json.dumps(payload).encode()
    answer = client.post("/webhook", data=raw, headers={"Content-Type": "application/json",
                                                         "X-Hub-Signature-256": sign(SECRET, raw)})
    assert answer.status_code == 200
    return answer


def wa_value(value: dict) -> dict:
    return {"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": {"display_phone_number": "390200000000",
                                                      "phone_number_id": NUMBER_ID}, **value}}]}]}


def wa_message(message: dict, *, phone: str, bsuid: str = "", name: str = "Lucia Ferri") -> dict:
    contact: dict = {"profile": {"name": name}, "wa_id": phone}
    sender: dict = {"id": f"wamid.{time.time_ns()}", "timestamp": str(int(time.time())), "from": phone}
    if bsuid:
        contact["user_id"] = bsuid
        sender["from_user_id"] = bsuid
    return wa_value({"contacts": [contact], "messages": [{**sender, **message}]})


def tap(payload: str, **who) -> dict:
    reply = {"id": payload, "title": payload}
    return wa_message({"type": "interactive", "interactive": {"type": "button_reply", "button_reply": reply}}, **who)


def walk_in(client, **who) -> None:
    """Onboarding, a module opened, and the timed check-up started (clock events and the timer index)."""
    post(client, wa_message({"type": "text", "text": {"body": "ciao"}}, **who))
    post(client, tap("sys:lang:it", **who))
    post(client, tap("sys:biz:bakery", **who))
    post(client, tap("sys:module:m1_contatto", **who))
    post(client, tap("sys:checkup", **who))
    post(client, tap("sys:checkup:start", **who))


def failed_status(phone: str, bsuid: str) -> dict:
    return wa_value({"statuses": [{"id": f"wamid.{time.time_ns()}", "status": "failed",
                                   "timestamp": str(int(time.time())), "recipient_id": phone,
                                   "recipient_user_id": bsuid,
                                   "errors": [{"code": 131047, "title": "Re-engagement message"}]}]})


@pytest.fixture
def lucia(client, redis_client) -> Certificate:
    """Lucia with everything a learner can have stored, and Marco beside her; returns Lucia's certificate."""
    walk_in(client, phone=PHONE, bsuid=BSUID)
    post(client, wa_message({"type": "text", "text": {"body": "operatore"}}, phone=PHONE, bsuid=BSUID))
    post(client, tap("sys:handover:yes", phone=PHONE, bsuid=BSUID))  # waiting for a person: in the inbox's list
    post(client, failed_status(PHONE, BSUID))
    walk_in(client, phone=OTHER_PHONE, name="Marco Neri")
    cert = Certificate(code=new_code(), token=new_token(), learner_id=LID, name="Lucia Ferri",
                       business_name="Forno Ferri", issued_ms=1_795_777_200_000, score_percent=90, lang="it")
    certificate_store.save(redis_client, cert)
    broadcast_store.create(redis_client, BROADCAST, {"message": "news"}, [LID, f"wa:{OTHER_PHONE}"], created_ms=1)
    broadcast_store.settle(redis_client, BROADCAST, LID, "sent")  # a broadcast reached her; Marco's turn is next
    ledger = OpenDayLedger(redis_client)  # the last seat of an Open Day is hers; Marco waits for it
    assert ledger.rsvp(EVENT, LID, coming=True, capacity=1, now_ms=1).state.value == "seated"
    assert ledger.rsvp(EVENT, f"wa:{OTHER_PHONE}", coming=True, capacity=1, now_ms=2).state.value == "waiting"
    for part in (LearnerPart.PROGRESS, LearnerPart.SEEN, LearnerPart.OUTBOX, LearnerPart.TIMERS, LearnerPart.DELIVERY):
        assert redis_client.exists(learner_key(LID, part)), part
    assert redis_client.get(learner_key(f"wa:{PHONE}", LearnerPart.ALIAS)) == LID.encode()
    assert redis_client.zscore(learner_timer_index_key(LID), LID) is not None
    assert redis_client.zscore(learner_handover_index_key(LID), LID) is not None
    return cert


def everything_stored(redis_url: str) -> dict[str, str]:
    """Every key of the learners' database and of the send queue's, with every byte stored under it (on a Redis
    Cluster, ``tests/test_cluster_privacy.py``: every primary's keys; the queue is elsewhere there)."""
    if redis_url.startswith(CLUSTER_SCHEMES):
        databases = [composition.cluster_client(redis_url)]
    else:
        databases = [redis.Redis.from_url(url) for url in (redis_url, broker_url(redis_url))]
    found = {}
    for db in databases:
        try:
            for key in db.scan_iter(count=1000):
                found[key.decode()] = raw_text(db, key)
        finally:
            db.close()
    return found


def test_a_learner_is_found_by_every_reference_an_admin_may_type(lucia, redis_client):
    for ref in (LID, f"wa:{PHONE}", learner_ref(LID), learner_ref(f"wa:{PHONE}"), "+39 333 111 2222", PHONE, BSUID):
        assert privacy.find(redis_client, ref) == [LID], ref
    assert privacy.find(redis_client, "+39 333 000 0000") == []
    assert privacy.find(redis_client, "{wa:1}") == []


def scans(client) -> int:
    return int(client.info("commandstats").get("cmdstat_scan", {}).get("calls", 0))


def test_an_export_and_an_erase_walk_the_keyspace_once(lucia, redis_client):
    from bot.privacy.person import SCAN_COUNT

    pipe = redis_client.pipeline(transaction=False)
    for n in range(12_000):  # other learners' keys: a pass over them takes several SCAN steps
        pipe.set(learner_key(f"wa:39300{n:07d}", LearnerPart.RECEIPT), "x")
    pipe.execute()
    before = scans(redis_client)
    one_pass = sum(1 for _ in redis_client.scan_iter(count=SCAN_COUNT))
    assert one_pass > 12_000
    per_pass = scans(redis_client) - before
    before = scans(redis_client)
    document = privacy.export_learner(redis_client, LID)
    assert scans(redis_client) - before == per_pass  # identify's one pass; no holder scans on its own
    assert document["data"]["keys"][LID]["progress"]["name"] == "Lucia Ferri"
    before = scans(redis_client)
    privacy.erase_learner(redis_client, LID)
    assert scans(redis_client) - before == per_pass
    assert not redis_client.exists(learner_key(LID, LearnerPart.PROGRESS))


def test_the_export_holds_everything_stored_about_the_learner_and_nobody_else(lucia, redis_client):
    document = privacy.export_learner(redis_client, LID)
    assert document["learner_id"] == LID and document["other_ids"] == [f"wa:{PHONE}"]
    keys = document["data"]["keys"]
    progress = keys[LID]["progress"]
    assert progress["name"] == "Lucia Ferri" and progress["phone"] == PHONE and progress["business"] == "bakery"
    assert {"seen", "outbox", "timers", "delivery"} <= set(keys[LID])
    assert keys[LID]["delivery"]["last_status_error_code"] == "131047"
    assert keys[f"wa:{PHONE}"] == {"alias": LID}
    assert document["data"]["timer_index"]["earliest_due_ms"][LID] > 0
    assert document["data"]["handover_index"]["open_since_ms"][LID] > 0
    assert [c["code"] for c in document["data"]["certificates"]] == [lucia.code]
    assert document["data"]["open_days"][EVENT] == {LID: "seated"}
    assert document["data"]["broadcasts"] == {BROADCAST: {LID: "sent"}}
    text = json.dumps(document, ensure_ascii=False)
    assert OTHER_PHONE not in text and "Marco" not in text
    json.loads(text)  # the whole document is plain JSON


def test_after_erase_no_key_or_value_anywhere_names_the_learner(lucia, client, redis_client, redis_url):
    before = everything_stored(redis_url)
    marco = {key: value for key, value in before.items() if OTHER_PHONE in key}
    secrets_of_lucia = (BSUID, PHONE, "Lucia", "Ferri", lucia.token)
    assert any(BSUID in key for key in before) and any(PHONE in value for value in before.values())

    erased = privacy.erase_learner(redis_client, LID)
    assert erased.ref == learner_ref(LID) and erased.removed["certificates"] == 1 and erased.total >= 8

    after = everything_stored(redis_url)
    for key, value in after.items():
        for secret in secrets_of_lucia:
            assert secret not in key and secret not in value, (key, secret)
    assert {key: value for key, value in after.items() if OTHER_PHONE in key} == marco  # Marco untouched
    assert redis_client.zscore(learner_timer_index_key(f"wa:{OTHER_PHONE}"), f"wa:{OTHER_PHONE}") is not None
    attendees = OpenDayLedger(redis_client).attendees(EVENT)  # her seat is free: Marco gets it at the next RSVP
    assert attendees.seated == () and attendees.waiting == (f"wa:{OTHER_PHONE}",) and attendees.declined == ()
    assert broadcast_store.counts(redis_client, BROADCAST) == {}  # her "sent" is gone; Marco keeps his place
    assert broadcast_store.audience_slice(redis_client, BROADCAST, 0, 2) == ["", f"wa:{OTHER_PHONE}"]

    page = client.get(f"/verify/{lucia.code}")
    assert page.status_code == 410 and "Attestato revocato" in page.get_data(as_text=True)
    assert "Lucia" not in page.get_data(as_text=True)
    assert client.get(f"/certificates/{lucia.token}.pdf").status_code == 404
    assert privacy.find(redis_client, PHONE) == []
    again = privacy.erase_learner(redis_client, LID)  # idempotent: nothing left to remove
    assert again.total == 0


def test_an_erase_cut_short_after_the_certificates_can_be_run_again(lucia, redis_client, redis_url):
    holders = privacy.DEFAULT_HOLDERS[:2]  # the timer index and the certificates, then "a crash"
    privacy.erase_learner(redis_client, LID, holders=holders)
    assert privacy.find(redis_client, PHONE) == [LID]  # the record is still there: erase finds them again
    privacy.erase_learner(redis_client, LID)
    assert not any(BSUID in key or BSUID in value for key, value in everything_stored(redis_url).items())


def test_the_cli_exports_and_erases_by_any_reference(lucia, redis_client, redis_url, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("REDIS_URL", redis_url)
    out = tmp_path / "lucia.json"
    assert cli(["learner", "export", learner_ref(LID), "--output", str(out)]) == 0
    assert json.loads(out.read_text())["data"]["keys"][LID]["progress"]["bsuid"] == BSUID
    assert cli(["learner", "export", "+39 000"]) == 1
    monkeypatch.setattr("builtins.input", lambda prompt: "no")
    assert cli(["learner", "erase", PHONE]) == 1
    assert redis_client.exists(learner_key(LID, LearnerPart.PROGRESS))
    capsys.readouterr()
    assert cli(["learner", "erase", PHONE, "--yes"]) == 0
    said = capsys.readouterr().out
    assert said.startswith(f"Erased learner {learner_ref(LID)}") and PHONE not in said and BSUID not in said
    assert not redis_client.exists(learner_key(LID, LearnerPart.PROGRESS))
    assert certificate_store.lookup(redis_client, lucia.code) is not None
    logged = [(entry.who, entry.action, entry.target) for entry in audit.recent(redis_client)]
    assert logged == [("cli", "learner.erase", learner_ref(LID)), ("cli", "learner.export", learner_ref(LID))]
