"""The worker's part of the console: the ``console_job`` actor (``bot.console.jobs``, ``bot.console.job_runner``).

``bot.worker`` imports this module after setting the broker (the actor binds to it), then calls ``configure``
with this process's ``WorkerSide``.
"""

from __future__ import annotations

import dramatiq

from bot.console import job_runner
from bot.delivery.broker import BULK_PRIORITY, BULK_QUEUE, CONSOLE_JOB

# a dry run of 100,000 learners took 53 s on a loaded box (bench/README.md); a job cut short says so on its page
JOB_TIME_LIMIT_MS = 30 * 60_000

_side: list[job_runner.WorkerSide] = []


def configure(side: job_runner.WorkerSide) -> None:
    _side[:] = [side]


# No retries: a dry run that failed is asked again from its page, and a send must never start twice.
@dramatiq.actor(actor_name=CONSOLE_JOB, queue_name=BULK_QUEUE, priority=BULK_PRIORITY, time_limit=JOB_TIME_LIMIT_MS,
                max_retries=0)
def console_job(job_id: str) -> None:
    """Run the console's job ``job_id`` (its record says what) and record the result."""
    if not _side:
        raise RuntimeError("the console's actor runs without its resources: start the worker with "
                           "`dramatiq bot.worker`")
    job_runner.run(_side[0], job_id)
