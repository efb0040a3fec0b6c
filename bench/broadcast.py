"""A broadcast to many generated learners, end to end on the real Procfile processes (issue 10 §4, issue 13 §2).

Run: ``.venv/bin/python bench/broadcast.py [--learners 100000] [--enforced 50000]`` (``make bench`` runs it).
It starts gunicorn web + Dramatiq worker (``tests/service.py``) on a redis-server, the fake Graph API in
its own process, writes ``--learners`` WhatsApp learners straight into Redis (window open, so every one is
a free-form recipient), and measures, in one run:

1. **Webhook ack without a broadcast**: learners chatting (signed webhooks, a few distinct learners a
   second from 4 threads) for ``--phase-seconds``: ack p50/p99 — the baseline.
2. **The broadcast at the configured rate** (``WHATSAPP_MESSAGES_PER_SECOND=80``): sustained sends/s
   (recipients settled per second, from the broadcast's counts) with the same chat load running: its
   ack p50/p99 next to the baseline's.
3. **Unthrottled**: the worker restarted with the number's limit lifted (``100000``/s); the broadcast
   goes on from its cursor (the restart is also a resume): the highest sustained sends/s this box
   reaches, until all recipients are done. Exactly once: the most broadcast messages one recipient
   got at the fake. Redis memory per recipient: the broadcast's own keys (``MEMORY USAGE``) and the
   growth of ``used_memory`` from before the start to the end (the learners' dedup ids, delivery
   records and pace keys included), each divided by the recipients.
4. **Issue 13 §2**: a second broadcast to ``--enforced`` learners with the fake enforcing the number's
   throughput (130429) at ``--enforced-rate`` and the pair rate (131056: 10 at once, then one per 6 s),
   the worker's bucket set to the same rate, chat load running: refusals counted at the fake (the
   target is zero), and sends/s.

Numbers are printed as a table; nothing is asserted (bench/README.md keeps the figures).
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import tempfile
import threading
import time
import zoneinfo
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
import requests  # noqa: E402

from bench.processes import Processes  # noqa: E402
from bot import composition  # noqa: E402
from bot.broadcasts.audience import Query  # noqa: E402
from bot.broadcasts.service import Broadcasts  # noqa: E402
from bot.channels.signature import sign  # noqa: E402
from bot.channels.whatsapp.dev import text_payload  # noqa: E402
from bot.delivery.broker import JobQueue, build_broker  # noqa: E402
from bot.storage import broadcast_store  # noqa: E402
from bot.storage.keys import LearnerPart, learner_key  # noqa: E402
from bot.storage.releases import Registry  # noqa: E402
from bot.tutor.progress import Progress  # noqa: E402
from tests.service import PHONE_NUMBER_ID, SECRET, Service  # noqa: E402

ROME = zoneinfo.ZoneInfo("Europe/Rome")
CHAT_THREADS, CHAT_PER_THREAD_PER_SECOND = 2, 2  # 4 new learners a second: ~12 replies/s of the number's budget
ENFORCED_BUSINESS, OTHER_BUSINESS = "bakery", "other"


def phone_of(n: int) -> str:
    return f"3934{n:08d}"


def chat_phone(n: int) -> str:
    return f"3935{n:08d}"  # the chatters: never broadcast recipients


def generate(client: redis.Redis, count: int, enforced: int, now_ms: int) -> None:
    """``count`` WhatsApp learners who wrote a minute ago; the first ``enforced`` run a bakery."""
    pipe = client.pipeline(transaction=False)
    for n in range(count):
        phone = phone_of(n)
        progress = Progress(learner_id=f"wa:{phone}", channel="whatsapp", user_id=phone, phone=phone, lang="it",
                            lang_chosen=True, business=ENFORCED_BUSINESS if n < enforced else OTHER_BUSINESS,
                            reply_from=PHONE_NUMBER_ID, created_at_ms=now_ms - 60_000, updated_at_ms=now_ms - 60_000,
                            last_inbound_at_ms=now_ms - 60_000, seen_ms=now_ms - 60_000, rev=1)
        pipe.hset(learner_key(progress.learner_id, LearnerPart.PROGRESS), mapping=progress.to_hash())
        if n % 2000 == 1999:
            pipe.execute()
    pipe.execute()


class Chat:
    """Learners chatting: signed webhooks from distinct learners at a steady rate; each POST's latency."""

    def __init__(self, url: str, first: int, now_ms: callable) -> None:
        self.url, self.next, self.now_ms = url, first, now_ms
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.errors = 0
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        self.stop.clear()
        self.latencies = []
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(CHAT_THREADS)]
        for thread in self.threads:
            thread.start()

    def finish(self) -> dict[str, float]:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)
        values = sorted(self.latencies)
        if not values:
            return {"n": 0, "p50": 0.0, "p99": 0.0}
        return {"n": len(values), "p50": statistics.median(values) * 1000,
                "p99": values[min(len(values) - 1, int(len(values) * 0.99))] * 1000}

    def _run(self) -> None:
        session = requests.Session()
        interval = 1 / CHAT_PER_THREAD_PER_SECOND
        due = time.monotonic()
        while not self.stop.is_set():
            with self.lock:
                learner = self.next
                self.next += 1
            raw = json.dumps(text_payload("aiuto", chat_phone(learner), PHONE_NUMBER_ID, at_ms=self.now_ms())).encode()
            started = time.monotonic()
            try:
                answer = session.post(f"{self.url}/webhook", data=raw, timeout=30, headers={
                    "Content-Type": "application/json", "X-Hub-Signature-256": sign(SECRET, raw)})
                ok = answer.status_code == 200
            except requests.RequestException:
                ok = False
            with self.lock:
                if ok:
                    self.latencies.append(time.monotonic() - started)
                else:
                    self.errors += 1
            due += interval
            time.sleep(max(due - time.monotonic(), 0))
        session.close()


def fake_graph(procs: Processes, workdir: Path) -> str:
    process = procs.start([sys.executable, "-m", "bot.dev.fake_graph", "--port", "0", "--print-url"],
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}, cwd=ROOT, capture=True)
    assert process.stdout is not None
    url = process.stdout.readline().decode().strip()
    requests.post(f"{url}/_fake/config", json={"record_calls": False}, timeout=10).raise_for_status()
    return url


def learner_memory(client: redis.Redis, learner_ids: list[str]) -> dict[str, int]:
    """Bytes (MEMORY USAGE) of each part of these learners' keys, summed over them."""
    total: dict[str, int] = {}
    for part in LearnerPart:
        total[part.value] = sum(int(client.memory_usage(learner_key(lid, part)) or 0) for lid in learner_ids)
    return total


def fake_stats(url: str, prefix: str = "") -> dict:
    return requests.get(f"{url}/_fake/stats?prefix={prefix}", timeout=30).json()


def sends_per_second(admin: Broadcasts, broadcast_id: str, seconds: float, *, until_done: bool = False,
                     deadline_s: float = 3600) -> tuple[float, int, float]:
    """Recipients settled per second over ``seconds`` (or until done, after a 5 s warm-up)."""
    start_progress = admin.progress(broadcast_id)
    started = time.monotonic()
    first = (started, start_progress.settled)
    while True:
        time.sleep(0.5)
        progress = admin.progress(broadcast_id)
        now = time.monotonic()
        if not until_done and now - started >= seconds:
            break
        if until_done and (progress.finished or now - started > deadline_s):
            break
        if until_done and now - started < 5:
            first = (now, progress.settled)
    elapsed = max(now - first[0], 1e-6)
    return (progress.settled - first[1]) / elapsed, progress.settled, now - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=100_000)
    parser.add_argument("--enforced", type=int, default=50_000)
    parser.add_argument("--enforced-rate", type=float, default=80.0, help="the number's limit the fake enforces "
                        "(Meta's default: 80 msg/s)")
    parser.add_argument("--phase-seconds", type=float, default=30.0)
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bench-broadcast-"))
    procs = Processes()
    graph_url = fake_graph(procs, workdir)
    service = Service(workdir, env="test", extra_env={
        "GRAPH_API_URL": graph_url, "WHATSAPP_MESSAGES_PER_SECOND": "80", "PROACTIVE_MAX_PER_DAY": "5",
        "LOG_LEVEL": "WARNING"})
    results: dict[str, object] = {"learners": args.learners}
    try:
        service.start()
        day = (datetime.now(ROME) + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
        service.set_clock(int(day.timestamp() * 1000))
        client = service.redis_client()
        started = time.monotonic()
        generate(client, args.learners, args.enforced, service.now_ms())
        results["generate_s"] = round(time.monotonic() - started, 1)
        admin = Broadcasts.build(service.settings, client, Registry.serving_live(
            client, policy=composition.proactive_policy(service.settings)),
            queue=JobQueue(build_broker(service.settings, service.redis.url), service.settings))
        chat = Chat(service.url, 0, service.now_ms)

        # 1. the webhook without a broadcast
        chat.start()
        time.sleep(args.phase_seconds)
        results["ack_idle"] = chat.finish()

        # 2. the broadcast at the configured rate, chat load running
        memory_before = int(client.info("memory")["used_memory"])
        sample = [f"wa:{phone_of(n)}" for n in range(0, args.learners, max(args.learners // 200, 1))]
        sample_before = learner_memory(client, sample)
        started = time.monotonic()
        everyone = Query(business=(ENFORCED_BUSINESS, OTHER_BUSINESS))  # the generated ones, not the chatters
        plan = admin.dry_run(everyone, "news")
        results["plan_s"] = round(time.monotonic() - started, 1)
        results["plan_recipients"] = len(plan.recipients)
        broadcast_id = admin.start(everyone, "news", plan=plan)
        chat.start()
        time.sleep(3)  # the first steps admit and the first sends go
        accepted_before, at_before = fake_stats(graph_url)["accepted"], time.monotonic()
        rate, _, _ = sends_per_second(admin, broadcast_id, args.phase_seconds)
        number_rate = (fake_stats(graph_url)["accepted"] - accepted_before) / (time.monotonic() - at_before)
        results["ack_during"] = chat.finish()
        results["rate_configured"] = round(rate, 1)
        results["number_rate_configured"] = round(number_rate, 1)

        # 3. unthrottled: restart the worker (a resume from the cursor) with the number's limit lifted
        service.stop("worker", sig=signal.SIGTERM)
        service.env["WHATSAPP_MESSAGES_PER_SECOND"] = "100000"
        service.env["BROADCAST_LOOKAHEAD_SECONDS"] = "0.01"  # admit in chunks, not 1,000 s ahead
        service.start("worker")
        time.sleep(5)  # the worker boots and the recovery hands the broadcast to a new chain
        rate, _, _ = sends_per_second(admin, broadcast_id, args.phase_seconds)
        results["rate_unthrottled"] = round(rate, 1)
        _, _, took = sends_per_second(admin, broadcast_id, 0, until_done=True)
        progress = admin.progress(broadcast_id)
        stats = fake_stats(graph_url, prefix="3934")
        results["broadcast_1"] = {"status": progress.status, "sent": progress.sent, "failed": progress.failed,
                                  "skipped": progress.skipped, "recipients_at_fake": stats["recipients"],
                                  "messages_per_recipient": stats["histogram"], "took_s": round(took, 1)}
        keys_bytes = sum(int(client.memory_usage(key) or 0)
                         for key in broadcast_store.memory_keys(client, broadcast_id))
        memory_after = int(client.info("memory")["used_memory"])
        sample_after = learner_memory(client, sample)
        results["memory_per_recipient_bytes"] = {
            "broadcast_keys": round(keys_bytes / max(progress.total, 1), 1),
            "used_memory_growth": round((memory_after - memory_before) / max(progress.total, 1), 1),
            "learner_keys_growth": {part: round((sample_after[part] - sample_before[part]) / len(sample), 1)
                                    for part in sample_after}}

        # 4. issue 13 §2: the fake enforces 130429 and 131056; the bucket runs at the enforced rate
        enforced_rate = args.enforced_rate
        requests.post(f"{graph_url}/_fake/reset", timeout=10).raise_for_status()
        requests.post(f"{graph_url}/_fake/config", json={
            "record_calls": False, "throughput_per_second": enforced_rate, "throughput_burst_seconds": 1.0,
            "pair_burst": 10, "pair_per_seconds": 6.0}, timeout=10).raise_for_status()
        service.stop("worker", sig=signal.SIGTERM)
        service.env["WHATSAPP_MESSAGES_PER_SECOND"] = str(enforced_rate)
        service.env["BROADCAST_LOOKAHEAD_SECONDS"] = "2"
        service.start("worker")
        query = Query(business=(ENFORCED_BUSINESS,))
        second = admin.start(query, "news")
        chat.start()
        rate, _, took = sends_per_second(admin, second, 0, until_done=True)
        chat_result = chat.finish()
        progress = admin.progress(second)
        stats = fake_stats(graph_url)
        results["enforced"] = {"rate_limit": enforced_rate, "recipients": progress.total, "sent": progress.sent,
                               "failed": progress.failed, "rate": round(rate, 1), "took_s": round(took, 1),
                               "rejected_at_fake": stats["rejected"], "chat_acks": chat_result["n"]}
    finally:
        service.close()
        procs.stop_all()
    print(json.dumps(results, indent=2))
    print(table(results))
    return 0


def table(r: dict) -> str:
    idle, during = r["ack_idle"], r["ack_during"]
    b1, enf, mem = r["broadcast_1"], r["enforced"], r["memory_per_recipient_bytes"]
    lines = [
        f"Broadcast benchmark: {r['learners']:,} generated WhatsApp learners, web + worker (Procfile), redis-server, "
        "fake Graph API in its own process, 2 cores shared",
        "| figure | value |", "|---|---|",
        f"| dry run over {r['learners']:,} learners | {r['plan_s']} s ({r['plan_recipients']:,} recipients) |",
        f"| sustained sends/s at the configured 80 msg/s (broadcast / all the number sent, chat replies too) | "
        f"{r['rate_configured']} / {r['number_rate_configured']} |",
        f"| highest sends/s unthrottled (one box) | {r['rate_unthrottled']} |",
        f"| webhook ack p50 / p99 without a broadcast | {idle['p50']:.1f} / {idle['p99']:.1f} ms ({idle['n']} acks) |",
        f"| webhook ack p50 / p99 during the broadcast | {during['p50']:.1f} / {during['p99']:.1f} ms "
        f"({during['n']} acks) |",
        f"| broadcast 1 | {b1['status']}, sent {b1['sent']:,}, failed {b1['failed']}, at the fake "
        f"{b1['recipients_at_fake']:,} recipients, by messages each got: {b1['messages_per_recipient']} |",
        f"| Redis memory per recipient: the broadcast's keys / used_memory growth | {mem['broadcast_keys']} / "
        f"{mem['used_memory_growth']} bytes |",
        f"| growth of each recipient's own keys, by part (bytes) | "
        f"{', '.join(f'{k} {v}' for k, v in mem['learner_keys_growth'].items() if v)} |",
        f"| issue 13 §2: {enf['recipients']:,} learners at an enforced {enf['rate_limit']:.0f} msg/s + pair rate | "
        f"sent {enf['sent']:,} at {enf['rate']}/s, refusals at the fake: {enf['rejected_at_fake'] or 'none'} |",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
