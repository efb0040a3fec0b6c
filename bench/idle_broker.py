"""A Redis stall the throughput figures cannot show: reaping an idle web process's broker id.

Every Dramatiq command - the webhook's enqueue too - ZADDs the sending broker's id to
``<namespace>:__heartbeats__``, so each gunicorn worker is listed there like a Dramatiq worker.
``bot.delivery.broker`` runs maintenance on every command (``MAINTENANCE_CHANCE = MAINTENANCE_SCALE``) and calls
a broker dead after ``HEARTBEAT_TIMEOUT_MS`` of silence; reaping a dead id runs ``KEYS <acks prefix>*``
inside the Lua script, which scans the whole database while Redis serves no one else. A web
process that receives no message for that long is "dead" and reaped, and listed again by its next
enqueue. We time an enqueue that reaps one such id, with a database of learner-shaped keys.
"""

from __future__ import annotations

import statistics
import time

import redis

KEYS_IN_DATABASE = 200_000  # ~50,000 learners at 4 keys each
SAMPLES = 5
MSET_BATCH = 2_000


def measure(keys: int = KEYS_IN_DATABASE) -> dict:
    """Enqueue times with and without an idle id to reap; uses (and empties) the send queue's and learners' databases.

    The learner-shaped keys go where learners live (``REDIS_URL``); the send queue has a database of
    its own (``config.settings.broker_url``), which is the one Dramatiq's KEYS scans.
    """
    from bot import composition
    from bot.delivery.broker import HEARTBEAT_TIMEOUT_MS
    from config.settings import Settings

    settings = Settings.from_env()
    queue = composition.job_queue(settings)
    client: redis.Redis = queue.broker.client
    data: redis.Redis = composition.redis_client(settings)
    client.flushdb()
    data.flushdb()
    for start in range(0, keys, MSET_BATCH):
        data.mset({f"bottega:{{wa:39{n:010d}}}:progress": b"x" for n in range(start, min(keys, start + MSET_BATCH))})
    heartbeats = f"{queue.broker.namespace}:__heartbeats__"
    queue.deliver("wa:393330000000")  # scripts loaded, our own id listed

    def enqueue_ms() -> float:
        started = time.perf_counter()
        queue.deliver("wa:393330000000")
        return (time.perf_counter() - started) * 1000

    normal = [enqueue_ms() for _ in range(SAMPLES * 4)]
    reaping = []
    for index in range(SAMPLES):
        silent_since = int(time.time() * 1000) - HEARTBEAT_TIMEOUT_MS - 1_000
        client.zadd(heartbeats, {f"bench-idle-web-process-{index}": silent_since})
        reaping.append(enqueue_ms())
    left = client.zcard(heartbeats)
    client.flushdb()
    data.flushdb()
    return {"keys": keys, "normal_ms": statistics.median(normal), "reaping_ms": statistics.median(reaping),
            "heartbeat_timeout_s": HEARTBEAT_TIMEOUT_MS / 1000, "ids_left": left}
