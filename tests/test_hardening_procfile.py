"""Findings of the adversarial run (issue 7) that need the real Procfile processes (gunicorn web + Dramatiq
worker) and the fake Graph API: a reply flood behind Meta's pair limit, an opt-out during a running
check-up, and a batch far bigger than one request should handle.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
import redis as redis_lib

from bot.channels import describe
from bot.channels.whatsapp import WHATSAPP
from bot.channels.whatsapp.dev import text_payload as whatsapp_text_payload
from bot.storage.keys import LearnerPart, learner_key
from bot.tutor.progress import Progress
from config.settings import PROJECT_ROOT
from tests.service import PHONE_NUMBER_ID, Phone, Service

pytestmark = pytest.mark.procfile


def production_pacing(service: Service) -> None:
    """Undo the test harness's fast pacing: these tests are about what a real learner's pace allows."""
    for name in ("LEARNER_MESSAGE_INTERVAL_SECONDS", "RECEIPT_INTERVAL_SECONDS"):
        service.env.pop(name, None)


def replies(phone: Phone, since: int) -> list[dict]:
    """Messages (not read receipts) the phone received after call number ``since``."""
    return [call["body"] for call in phone.calls()[since:] if call["body"].get("status") != "read"]


def receipts(phone: Phone, since: int) -> int:
    return sum(call["body"].get("status") == "read" for call in phone.calls()[since:])


def drained(client: redis_lib.Redis, lid: str) -> bool:
    return not client.exists(learner_key(lid, LearnerPart.OUTBOX), learner_key(lid, LearnerPart.RECEIPT))


def test_a_flood_from_one_learner_gets_a_handful_of_replies_and_the_outbox_drains_within_a_minute(tmp_path):
    service = Service(tmp_path)
    production_pacing(service)
    try:
        service.start()
        service.graph.configure(pair_burst=3, pair_per_seconds=6.0)  # Meta's pair limit, strict
        phone = Phone(service, WHATSAPP, "393330000201")
        phone.send("ciao")
        phone.wait_turn()
        for title in ("Italiano", "Panificio", "Contatto clienti"):
            time.sleep(6.5)  # a person's pace: the pair limit is not what this part tests
            phone.tap(title)
            phone.wait_turn(timeout=30)
        time.sleep(3)
        before = len(phone.calls())
        client = redis_lib.Redis.from_url(service.redis.url)
        lid = f"wa:{phone.user}"

        started = time.monotonic()
        for n in range(500):  # 50 messages a second for 10 seconds, none of them an answer
            phone.send(f"asdf {n}")
            time.sleep(max(0.0, started + (n + 1) / 50 - time.monotonic()))
        flood_end = time.monotonic()
        deadline = flood_end + 60
        while time.monotonic() < deadline and not drained(client, lid):
            time.sleep(0.5)
        assert drained(client, lid), "the outbox was not drained within a minute of the flood"
        drained_after = time.monotonic() - flood_end
        time.sleep(2)

        sent = replies(phone, before)
        assert 1 <= len(sent) <= 5, [describe(WHATSAPP, body).text[:40] for body in sent]
        assert receipts(phone, before) <= 10  # one per receipt interval, the latest message's
        last = describe(WHATSAPP, sent[-1])
        # the third unreadable text in a row offers a person (issue 12 §2), once; the flood adds no more prompts
        assert [title for _, title in last.options] == ["Sì, una persona", "No, continuo qui"]
        offers = [body for body in sent if "Sì, una persona" in [t for _, t in describe(WHATSAPP, body).options]]
        assert len(offers) <= 2  # the offer, and at most its one re-prompt after the pause of "non ho capito"
        stored = Progress.from_hash(client.hgetall(learner_key(lid, LearnerPart.PROGRESS)))
        assert stored.rev >= 504  # every message was handled (4 onboarding turns + 500), none lost
        print(f"flood: {len(sent)} replies, {receipts(phone, before)} receipts, "
              f"{len(service.graph.rejected())} pair-limit refusals, drained {drained_after:.1f} s after")
    finally:
        service.close()


def short_checkup(tmp_path: Path, seconds: int, warnings: tuple[int, int]) -> Path:
    flows = tmp_path / "flows_short_checkup"
    shutil.copytree(PROJECT_ROOT / "flows", flows)
    text = (flows / "checkup.yaml").read_text()
    text = text.replace("time_limit_seconds: 1800", f"time_limit_seconds: {seconds}")
    text = text.replace("warnings_seconds: [600, 300]", f"warnings_seconds: [{warnings[0]}, {warnings[1]}]")
    (flows / "checkup.yaml").write_text(text)
    return flows


def settled(client: redis_lib.Redis, lid: str, timeout: float = 20.0) -> None:
    """Wait until the learner's outbox is empty and no sender holds their lock: nothing more is on its way."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not client.exists(learner_key(lid, LearnerPart.OUTBOX), learner_key(lid, LearnerPart.SEND_LOCK)):
            return
        time.sleep(0.05)
    raise AssertionError(f"the outbox did not settle within {timeout}s")


def test_after_stop_a_running_checkup_sends_no_warning_timeout_score_or_plan(tmp_path):
    service = Service(tmp_path, flows_dir=short_checkup(tmp_path, 12, (8, 4)))
    try:
        service.start()
        phone = Phone(service, WHATSAPP, "393330000202")
        phone.send("ciao")
        phone.wait_turn()
        for title in ("Italiano", "Ferramenta", "Check-up digitale", "Inizia il check-up"):
            phone.tap(title)
            phone.wait_turn()
        phone.send("stop")
        phone.wait_turn()
        phone.tap("Sì")
        phone.wait_for("non ti scrivo più per primo")
        client = redis_lib.Redis.from_url(service.redis.url)
        settled(client, f"wa:{phone.user}")  # every reply of the stop turn is out: the snapshot starts after them
        stopped_at = len(phone.calls())
        time.sleep(16)  # past the check-up's deadline: its two warnings and the submission were due
        after = [describe(WHATSAPP, body).text for body in replies(phone, stopped_at)]
        assert after == []
        assert phone.count("⏳") == 0 and phone.count("⏰") == 0 and phone.count("Il tuo risultato") == 0
        assert client.exists(learner_key(f"wa:{phone.user}", LearnerPart.TIMERS)) == 0
    finally:
        service.close()


def test_a_batch_of_a_thousand_events_is_acknowledged_at_once_and_every_event_is_handled(tmp_path):
    service = Service(tmp_path)
    try:
        service.start()
        learners = [f"39333100{n:04d}" for n in range(100)]
        messages, contacts = [], []
        now = int(time.time())
        for turn in range(10):
            for phone in learners:
                body = "ciao" if turn == 0 else "aiuto"
                messages.append({"from": phone, "id": f"wamid.batch.{phone}.{turn}", "timestamp": str(now),
                                 "type": "text", "text": {"body": body}})
        contacts = [{"profile": {"name": "Batch"}, "wa_id": phone} for phone in learners]
        payload = whatsapp_text_payload("x", learners[0], PHONE_NUMBER_ID)
        value = payload["entry"][0]["changes"][0]["value"]
        value["messages"], value["contacts"] = messages, contacts
        raw = json.dumps(payload).encode()
        answered = service.post(raw)
        assert answered.status_code == 200
        client = redis_lib.Redis.from_url(service.redis.url)
        deadline = time.monotonic() + 120
        revs: list[int] = []

        def rev_of(phone: str) -> int:
            return int(client.hget(learner_key(f"wa:{phone}", LearnerPart.PROGRESS), "rev") or 0)

        while time.monotonic() < deadline:
            revs = [rev_of(phone) for phone in learners]
            if revs == [10] * len(learners):
                break
            time.sleep(0.5)
        assert revs == [10] * len(learners)  # every event handled once, in order (ciao first: rev 1 = welcome)
        assert service.post(raw).status_code == 200  # redelivered whole: all duplicates
        time.sleep(3)
        assert [rev_of(phone) for phone in learners] == revs
    finally:
        service.close()
