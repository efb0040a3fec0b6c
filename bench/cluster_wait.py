"""What a commit costs on a Redis Cluster, and what waiting for a replica (REDIS_WAIT_REPLICAS=1) adds.

Starts a local cluster (3 primaries + 3 replicas, tests/cluster.py), then commits the same turn shape
(the progress hash, a dedup id, two outbox items) for many learners through ``bot.storage.store.Store``:
on a single redis-server (the baseline, same run), on the cluster without WAIT, and on the cluster with
WAIT 1. Prints commit latency p50/p99 and commits per second (one client thread, so the rate is 1/latency).

    .venv/bin/python bench/cluster_wait.py [--commits 2000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.channels.whatsapp import WHATSAPP  # noqa: E402
from bot.dev import embedded_redis  # noqa: E402
from bot.model.events import EventKind, InboundEvent  # noqa: E402
from bot.storage.outbox_item import OutboxItem  # noqa: E402
from bot.storage.store import Store  # noqa: E402
from bot.tutor.progress import Progress  # noqa: E402
from tests.cluster import LocalCluster  # noqa: E402
from tests.service import free_port  # noqa: E402


def commits(store: Store, count: int, tag: str) -> list[float]:
    """Seconds per commit, for ``count`` new learners."""
    took = []
    for n in range(count):
        event = InboundEvent(channel=WHATSAPP, kind=EventKind.TEXT, user_id=f"3933{tag}{n:06d}",
                             reply_from="100000000000001", message_id=f"wamid.{tag}.{n}", text="ciao",
                             timestamp_ms=1_700_000_000_000)
        progress = Progress.new(event, 1_700_000_000_000)
        items = [OutboxItem.new(channel="whatsapp", sender_id="100000000000001",
                                body={"messaging_product": "whatsapp", "to": event.user_id, "type": "text",
                                      "text": {"body": "x" * 200}}, created_ms=1_700_000_000_000)
                 for _ in range(2)]
        started = time.perf_counter()
        store.commit(progress, expected_rev=0, message_id=event.message_id, now_ms=1_700_000_000_000,
                     outbox_items=items)
        took.append(time.perf_counter() - started)
    return took


def row(name: str, took: list[float]) -> str:
    ordered = sorted(took)
    p50, p99 = statistics.median(ordered), ordered[int(len(ordered) * 0.99) - 1]
    return f"| {name} | {p50 * 1000:.3f} | {p99 * 1000:.3f} | {1 / statistics.mean(ordered):,.0f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=2000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bottega-cluster-wait-"))
    single = embedded_redis.start(work / "single", port=free_port(), persist=False)
    cluster = LocalCluster(work / "cluster")
    try:
        plain = redis.Redis.from_url(single.url)
        on_cluster = cluster.client()
        options = {"dedup_ttl_seconds": 8 * 86400, "dedup_max_ids": 2000}
        lines = ["| where | commit p50, ms | commit p99, ms | commits/s (1 thread) |", "|---|---|---|---|"]
        lines.append(row("one redis-server (baseline)", commits(Store(plain, **options), args.commits, "10")))
        lines.append(row("cluster, no WAIT", commits(Store(on_cluster, **options), args.commits, "20")))  # type: ignore[arg-type]
        waiting = Store(on_cluster, wait_replicas=1, wait_timeout_ms=1000, **options)  # type: ignore[arg-type]
        lines.append(row("cluster, WAIT 1 replica", commits(waiting, args.commits, "30")))
        print(f"{args.commits} commits each, new learners, 2 outbox items per turn, loopback, 2 cores shared")
        print("\n".join(lines))
    finally:
        cluster.stop()
        single.stop()


if __name__ == "__main__":
    main()
