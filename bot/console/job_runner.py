"""What the worker does with a console job (``bot.console.jobs``): the code the CLI runs, with a counter.

* ``broadcast.dry_run``: ``Broadcasts.dry_run``; the result is the plan's summary (counts and costs, no ids).
* ``broadcast.send``: the dry run again, then — only if it reaches as many learners as the dry run the admin
  was shown (``expected``, the console's guarantee since the send moved here) — ``Broadcasts.start`` with that
  plan. Otherwise nothing starts and the outcome says why (the console answers 409 or 400 with the new plan).
* ``open_day.dry_run`` / ``open_day.announce``: ``bot.delivery.open_days.announce``, as ``bottega events
  announce [--dry-run]``.

The audit log gets the outcome of a send or an announce under the name of the admin who asked (the request
recorded its acceptance). A send is never started twice: a send job found already running (its worker died
and the broker redelivered it) fails with a note instead of counting again; the others simply run again (a
dry run changes nothing, an announce schedules nobody twice).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

import redis

from bot.broadcasts.audience import PROGRESS_EVERY_LEARNERS, Query
from bot.broadcasts.service import BroadcastError, Broadcasts
from bot.console import audit
from bot.console.jobs import ConsoleJob, JobKind, Jobs, JobStatus, SendOutcome
from bot.delivery.open_days import announce
from bot.dispatch import Dispatcher
from bot.storage.releases import live_release

log = logging.getLogger("bottega.console.jobs")
INTERRUPTED = ("The send was interrupted (the worker stopped) before it said whether it started: check the list "
               "below before sending again.")
WORKER_FAILED = "The worker failed on this job (its log says why): try again."


@dataclass(frozen=True, kw_only=True)
class WorkerSide:
    """What a job needs in the worker: Redis, this process's broadcasts service and dispatcher (built on first
    use), and how often to count (every that many learners read)."""

    client: redis.Redis
    broadcasts: Callable[[], Broadcasts]
    dispatcher: Callable[[], Dispatcher]
    progress_every: int = PROGRESS_EVERY_LEARNERS


def run(side: WorkerSide, job_id: str) -> None:
    """Run the job ``job_id`` and record its result (an expired or finished job: nothing to do)."""
    jobs = Jobs(side.client)
    job = jobs.get(job_id)
    if job is None or job.finished:
        return
    if job.status is JobStatus.RUNNING and job.kind is JobKind.BROADCAST_SEND:
        jobs.fail(job_id, INTERRUPTED)
        return
    jobs.running(job_id)
    try:
        if job.kind in (JobKind.BROADCAST_DRY_RUN, JobKind.BROADCAST_SEND):
            _broadcast(side, jobs, job)
        else:
            _open_day(side, jobs, job)
    except BroadcastError as error:
        jobs.fail(job_id, str(error))
    except BaseException:
        log.exception("console job %s (%s) failed", job_id, job.kind.value)
        jobs.fail(job_id, WORKER_FAILED)
        raise


def _counter(jobs: Jobs, job_id: str) -> Callable[[int], None]:
    return lambda read: jobs.count(job_id, read)


def _broadcast(side: WorkerSide, jobs: Jobs, job: ConsoleJob) -> None:
    broadcasts = side.broadcasts()
    query = Query.from_json(job.query)
    plan = broadcasts.dry_run(query, job.target, on_progress=_counter(jobs, job.job_id),
                              progress_every=side.progress_every)
    summary = json.dumps(plan.summary(), sort_keys=True)
    if job.kind is JobKind.BROADCAST_DRY_RUN:
        jobs.finish(job.job_id, result=summary)
        return
    reached = len(plan.recipients)
    if not reached or reached != job.expected:
        outcome = SendOutcome.EMPTY if not reached else SendOutcome.CHANGED
        jobs.finish(job.job_id, result=summary, outcome=outcome.value)
        audit.record(side.client, job.who, "broadcast.send", f"job {job.job_id}",
                     f"not started: {reached} learner(s) now, {job.expected} in the dry run shown")
        return
    broadcast_id = broadcasts.start(query, job.target, plan=plan)
    jobs.finish(job.job_id, result=summary, outcome=SendOutcome.STARTED.value, broadcast_id=broadcast_id)
    audit.record(side.client, job.who, "broadcast.send", broadcast_id,
                 f"message {job.target} to {reached} learner(s), query {query.describe()}, "
                 f"estimated {plan.cost:.2f} {plan.currency or 'USD'}")


def _open_day(side: WorkerSide, jobs: Jobs, job: ConsoleJob) -> None:
    dispatcher = side.dispatcher()
    engine = dispatcher.engines.engine_for(live_release(side.client))
    event = engine.course.open_day(job.target)
    if event is None:
        jobs.fail(job.job_id, f"No Open Day '{job.target}' in the live course (events.yaml, then publish).")
        return
    dry_run = job.kind is JobKind.OPEN_DAY_DRY_RUN
    found = announce(side.client, dispatcher.store, engine.course, engine.policy, event, now_ms=dispatcher.clock(),
                     dry_run=dry_run, on_progress=_counter(jobs, job.job_id), progress_every=side.progress_every)
    jobs.finish(job.job_id, result=found.to_json())
    if not dry_run:
        audit.record(side.client, job.who, "open_day.announce", event.id, f"{found.scheduled} invited")
