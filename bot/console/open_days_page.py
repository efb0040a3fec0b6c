"""The Business Open Days pages: the live course's events with their seats, who is coming, and announcing
one — a dry run first — through ``bot.delivery.open_days.announce``, the code ``bottega events announce``
runs. Both read every learner, so they run in the worker (``bot.console.jobs``): the POST enqueues the job and
redirects to its page, which counts the learners read until the result is there. Attendees are shown by name
and ``learner_ref`` (a link to their page), never by id or phone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue

from bot.console import audit
from bot.console.jobs import ConsoleJob, JobKind, Jobs, JobStatus
from bot.console.pages import Console, job_queue, me
from bot.console.users import Role
from bot.delivery.open_days import Announcement
from bot.flows.spec import OpenDay
from bot.model.privacy import learner_ref
from bot.storage.keys import LearnerPart, learner_key
from bot.storage.open_day_ledger import OpenDayLedger
from bot.tutor.progress import Progress

SHOWN_PER_LIST = 200  # attendees listed per state on the page (counts are always whole)
REFRESH_SECONDS = 2  # a job's page reloads this often while the worker counts


@dataclass(frozen=True, kw_only=True, slots=True)
class EventRow:
    event: OpenDay
    when: str
    seated: int
    waiting: int
    declined: int


@dataclass(frozen=True, kw_only=True, slots=True)
class Attendee:
    ref: str
    link: str
    name: str


def add_routes(pages: Blueprint, console: Console) -> None:
    """``/admin/open-days`` and ``/admin/open-days/<event>`` (viewer); dry run, announce, their job pages (editor)."""
    read, act = console.require(Role.VIEWER), console.require(Role.EDITOR)

    @pages.get("/open-days")
    @read
    def open_days() -> ResponseReturnValue:
        ledger = OpenDayLedger(console.client)
        rows = []
        for event in console.course().open_days:
            seats = ledger.attendees(event.id)
            rows.append(EventRow(event=event, when=_when(event), seated=len(seats.seated), waiting=len(seats.waiting),
                                 declined=len(seats.declined)))
        return render_template("console/open_days.html", rows=rows)

    @pages.get("/open-days/<event_id>")
    @read
    def open_day(event_id: str) -> ResponseReturnValue:
        event = _event(console, event_id)
        seats = OpenDayLedger(console.client).attendees(event.id)
        lists = {state: _attendees(console, ids[:SHOWN_PER_LIST]) for state, ids in
                 (("seated", seats.seated), ("waiting", seats.waiting), ("declined", seats.declined))}
        counts = {"seated": len(seats.seated), "waiting": len(seats.waiting), "declined": len(seats.declined)}
        return render_template("console/open_day.html", event=event, when=_when(event), lists=lists, counts=counts,
                               found=None)

    @pages.post("/open-days/<event_id>/dry-run")
    @act
    def open_day_dry_run(event_id: str) -> ResponseReturnValue:
        return _enqueue(console, event_id, JobKind.OPEN_DAY_DRY_RUN)

    @pages.post("/open-days/<event_id>/announce")
    @act
    def open_day_announce(event_id: str) -> ResponseReturnValue:
        return _enqueue(console, event_id, JobKind.OPEN_DAY_ANNOUNCE)

    @pages.get("/open-days/<event_id>/jobs/<job_id>")
    @act
    def open_day_job(event_id: str, job_id: str) -> ResponseReturnValue:
        event = _event(console, event_id)
        job = Jobs(console.client).get(job_id)
        if job is None or job.target != event.id or job.kind not in (JobKind.OPEN_DAY_DRY_RUN,
                                                                     JobKind.OPEN_DAY_ANNOUNCE):
            abort(404, description="No such dry run or announcement (its record is kept a day).")
        return _job_page(console, event, job)


def _enqueue(console: Console, event_id: str, kind: JobKind) -> ResponseReturnValue:
    """Hand the dry run or the announcement to the worker and send the admin to its page."""
    queue = job_queue(console)
    event = _event(console, event_id)
    jobs = Jobs(console.client)
    job_id = jobs.create(kind, who=me(console), target=event.id)
    if kind is JobKind.OPEN_DAY_ANNOUNCE:  # accepted now; the worker records the outcome
        audit.record(console.client, me(console), "open_day.announce", event.id,
                     f"asked: the worker invites the audience (job {job_id})")
    jobs.hand_over(job_id, queue.console_job)
    return redirect(url_for("console.open_day_job", event_id=event.id, job_id=job_id), 303)


def _job_page(console: Console, event: OpenDay, job: ConsoleJob) -> ResponseReturnValue:
    """Counting (the page reloads itself), then the dry run's counts, or the announcement's on the event's page."""
    if not job.finished:
        what = "Dry run" if job.kind is JobKind.OPEN_DAY_DRY_RUN else "Announcing"
        return render_template("console/counting.html", job=job, what=f"{what}: {event.id}",
                               refresh=REFRESH_SECONDS, back=url_for("console.open_day", event_id=event.id))
    if job.status is JobStatus.FAILED:
        flash(job.error, "error")
        return redirect(url_for("console.open_day", event_id=event.id), 303)
    found = Announcement.from_json(job.result)
    if job.kind is JobKind.OPEN_DAY_ANNOUNCE:
        flash(" · ".join(found.lines()), "ok")
        return redirect(url_for("console.open_day", event_id=event.id), 303)
    seats = OpenDayLedger(console.client).attendees(event.id)
    counts = {"seated": len(seats.seated), "waiting": len(seats.waiting), "declined": len(seats.declined)}
    return render_template("console/open_day.html", event=event, when=_when(event), lists=None, counts=counts,
                           found=found)


def _event(console: Console, event_id: str) -> OpenDay:
    event = console.course().open_day(event_id)
    if event is None:
        abort(404, description=f"No Open Day '{event_id}' in the live course (events.yaml, then publish).")
    return event


def _when(event: OpenDay) -> str:
    return f"{datetime.fromtimestamp(event.start_ms / 1000, tz=ZoneInfo(event.time_zone)):%Y-%m-%d %H:%M %Z}"


def _attendees(console: Console, learner_ids: tuple[str, ...]) -> list[Attendee]:
    pipe = console.client.pipeline(transaction=False)
    for learner_id in learner_ids:
        pipe.hgetall(learner_key(learner_id, LearnerPart.PROGRESS))
    shown = []
    for learner_id, raw in zip(learner_ids, pipe.execute(), strict=True):
        progress = Progress.from_hash(raw)
        shown.append(Attendee(ref=learner_ref(learner_id), link=console.links.link(learner_id),
                              name=progress.name if progress else "(erased)"))
    return shown
