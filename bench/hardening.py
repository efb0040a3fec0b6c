"""Two findings of the adversarial run, measured end to end on the real Procfile processes.

Run: ``.venv/bin/python bench/hardening.py`` (about three minutes on 2 cores). It starts gunicorn web +
Dramatiq worker against an embedded Redis and the fake Graph API (``tests/service.py``), and prints:

1. **A big batch.** One signed WhatsApp body with 10,000 messages (1,000 learners × 10) is posted:
   the time until the webhook answers, and until every message was handled (each learner's ``rev``
   reaches 10). Baseline in the same run: the old behaviour, every event inside the request
   (``INLINE_EVENTS_MAX`` set past the batch size), measured on a 1,000-message batch — a 10,000 one
   would outlive gunicorn's 30-second worker timeout — and its per-event cost scaled to 10,000.
2. **A reply flood.** One learner in a lesson sends 50 unrecognised messages a second for 10 seconds
   while the fake Graph API enforces WhatsApp's pair limit (3 at once, then one per 6 s): replies
   and read receipts sent to that learner, pair-limit refusals, ``deliver`` jobs run for them (the
   worker's per-job log line), and how long after the flood the outbox was empty.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from bot.channels.signature import sign  # noqa: E402
from bot.channels.whatsapp import WHATSAPP  # noqa: E402
from bot.channels.whatsapp.dev import text_payload as whatsapp_text_payload  # noqa: E402
from bot.model.privacy import learner_ref  # noqa: E402
from bot.storage.keys import LearnerPart, learner_key  # noqa: E402
from tests.service import PHONE_NUMBER_ID, Phone, Service  # noqa: E402

BATCH_LEARNERS, BATCH_TURNS = 1_000, 10
BASELINE_LEARNERS = 100
FLOOD_RATE, FLOOD_SECONDS = 50, 10


def batch_body(learners: list[str], turns: int) -> bytes:
    now = int(time.time())
    messages = [{"from": phone, "id": f"wamid.bench.{phone}.{turn}", "timestamp": str(now), "type": "text",
                 "text": {"body": "ciao" if turn == 0 else "aiuto"}}
                for turn in range(turns) for phone in learners]
    payload = whatsapp_text_payload("x", learners[0], PHONE_NUMBER_ID)
    value = payload["entry"][0]["changes"][0]["value"]
    value["messages"] = messages
    value["contacts"] = [{"profile": {"name": "Bench"}, "wa_id": phone} for phone in learners]
    return json.dumps(payload).encode()


def run_batch(workdir: Path, learners: int, turns: int, inline_max: int) -> tuple[float, float]:
    """Seconds until the webhook answered, and until every event was handled."""
    service = Service(workdir)
    service.env["INLINE_EVENTS_MAX"] = str(inline_max)
    try:
        service.start()
        phones = [f"3933{n:08d}" for n in range(learners)]
        raw = batch_body(phones, turns)
        client = redis.Redis.from_url(service.redis.url)
        started = time.monotonic()
        answer = service.session.post(f"{service.url}/webhook", data=raw, timeout=300, headers={
            "Content-Type": "application/json",
            "X-Hub-Signature-256": sign("e2e-app-secret", raw)})
        acked = time.monotonic() - started
        assert answer.status_code == 200, answer.status_code
        while True:
            pipe = client.pipeline(transaction=False)
            for phone in phones:
                pipe.hget(learner_key(f"wa:{phone}", LearnerPart.PROGRESS), "rev")
            if all(int(rev or 0) == turns for rev in pipe.execute()):
                return acked, time.monotonic() - started
            time.sleep(0.2)
    finally:
        service.close()


def run_flood(workdir: Path) -> dict[str, float]:
    service = Service(workdir)
    for name in ("LEARNER_MESSAGE_INTERVAL_SECONDS", "RECEIPT_INTERVAL_SECONDS"):
        service.env.pop(name, None)  # production pacing
    service.env["LOG_LEVEL"] = "DEBUG"  # the worker's per-job line counts deliver jobs
    try:
        service.start()
        service.graph.configure(pair_burst=3, pair_per_seconds=6.0)
        phone = Phone(service, WHATSAPP, "393330000901")
        phone.send("ciao")
        phone.wait_turn()
        for title in ("Italiano", "Panificio", "Contatto clienti"):
            time.sleep(6.5)
            phone.tap(title)
            phone.wait_turn(timeout=30)
        time.sleep(3)
        lid = f"wa:{phone.user}"
        before_calls, before_refusals = len(phone.calls()), len(service.graph.rejected())
        log = workdir / "worker.log"
        before_jobs = log.read_text(errors="replace").count(f"deliver learner={learner_ref(lid)}")
        client = redis.Redis.from_url(service.redis.url)
        started = time.monotonic()
        total = FLOOD_RATE * FLOOD_SECONDS
        for n in range(total):
            phone.send(f"asdf {n}")
            time.sleep(max(0.0, started + (n + 1) / FLOOD_RATE - time.monotonic()))
        ended = time.monotonic()
        outbox, receipt = learner_key(lid, LearnerPart.OUTBOX), learner_key(lid, LearnerPart.RECEIPT)
        while client.exists(outbox, receipt) and time.monotonic() - ended < 120:
            time.sleep(0.1)
        drained = time.monotonic() - ended
        time.sleep(3)
        calls = phone.calls()[before_calls:]
        return {"sent": total, "replies": sum(c["body"].get("status") != "read" for c in calls),
                "receipts": sum(c["body"].get("status") == "read" for c in calls),
                "refusals": len(service.graph.rejected()) - before_refusals,
                "jobs": log.read_text(errors="replace").count(f"deliver learner={learner_ref(lid)}") - before_jobs,
                "drained_s": drained}
    finally:
        service.close()


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bottega-bench-") as folder:
        work = Path(folder)
        print(f"1. A batch of {BATCH_LEARNERS * BATCH_TURNS:,} messages ({BATCH_LEARNERS:,} learners x {BATCH_TURNS})")
        (work / "base").mkdir()
        base_events = BASELINE_LEARNERS * BATCH_TURNS
        base_ack, base_done = run_batch(work / "base", BASELINE_LEARNERS, BATCH_TURNS, inline_max=10**9)
        per_event_ms = base_ack / base_events * 1000
        print(f"   before (all inline), {base_events:,} messages: answered in {base_ack:.2f} s "
              f"({per_event_ms:.1f} ms per message; 10,000 would take ~{per_event_ms * 10:.0f} s, "
              "past gunicorn's 30 s timeout)")
        (work / "now").mkdir()
        ack, done = run_batch(work / "now", BATCH_LEARNERS, BATCH_TURNS, inline_max=50)
        print(f"   now (50 inline, the rest to the worker), 10,000 messages: answered in {ack:.2f} s; "
              f"every message handled {done:.1f} s after the post")
        print(f"\n2. A flood: {FLOOD_RATE} messages/s for {FLOOD_SECONDS} s from one learner, pair limit 3 then 1/6 s")
        (work / "flood").mkdir()
        flood = run_flood(work / "flood")
        print(f"   {flood['sent']} messages in -> {flood['replies']} replies and {flood['receipts']} read receipts "
              f"out; {flood['refusals']} pair-limit refusals; {flood['jobs']} deliver jobs for that learner; "
              f"outbox empty {flood['drained_s']:.1f} s after the flood")
        print("   (the adversarial run, before: 1,000 replies + 500 receipts, an outbox of 1,507 items, "
              "3,911 deliver jobs)")


if __name__ == "__main__":
    main()
