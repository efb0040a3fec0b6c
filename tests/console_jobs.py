"""The worker's side of the console's jobs, in the test's process: each ``console_job`` message the console put on
the real broker (the bulk queue on the test Redis) is taken off it and run by ``bot.console.job_runner`` — what
the worker's ``console_job`` actor does with it.
"""

from __future__ import annotations

import dramatiq
import redis

from bot import composition
from bot.broadcasts.service import Broadcasts
from bot.console import job_runner
from bot.delivery.broker import BULK_QUEUE, CONSOLE_JOB

NAMESPACE = "dramatiq"  # Dramatiq's RedisBroker keeps a queue's ids in <namespace>:<queue>, its messages beside


def queued_jobs(broker_client: redis.Redis) -> list[str]:
    """The ids of the console jobs waiting on the bulk queue, in order."""
    return [message.args[0] for _, message in _messages(broker_client)]


def run_console_jobs(app, broker_client: redis.Redis, *, progress_every: int = 2) -> list[str]:
    """Take every waiting console job off the broker and run it as the worker does; their ids."""
    wiring = app.extensions["bottega"]
    settings, client = wiring["settings"], wiring["redis"]
    side = job_runner.WorkerSide(
        client=client, dispatcher=lambda: wiring["dispatcher"], progress_every=progress_every,
        broadcasts=lambda: Broadcasts.build(settings, client, wiring["registry"],
                                            queue=composition.job_queue(settings)))
    ran = []
    for raw_id, message in _messages(broker_client):
        broker_client.lrem(f"{NAMESPACE}:{BULK_QUEUE}", 1, raw_id)
        broker_client.hdel(f"{NAMESPACE}:{BULK_QUEUE}.msgs", raw_id)
        job_runner.run(side, *message.args)
        ran.append(message.args[0])
    return ran


def _messages(broker_client: redis.Redis) -> list[tuple[bytes, dramatiq.Message]]:
    found = []
    for raw_id in broker_client.lrange(f"{NAMESPACE}:{BULK_QUEUE}", 0, -1):
        data = broker_client.hget(f"{NAMESPACE}:{BULK_QUEUE}.msgs", raw_id)
        message = dramatiq.Message.decode(data)
        if message.actor_name == CONSOLE_JOB:
            found.append((raw_id, message))
    return found
