"""The Broadcasts pages: the list, the audience form and its dry run, the send, a broadcast's live
progress and report, pause / resume / cancel — all through ``bot.broadcasts.service.Broadcasts``, the
object ``bottega broadcast`` drives, and the form is read into a ``Query`` by the CLI's own
``query_of`` (the same fields as the flags), so the console and the terminal cannot disagree.

Sending is two steps: the dry run (recipients by channel and window state, the cost estimate) and a
confirmed send of that audience; if the audience changed between the two (someone opted out), the send
shows the new dry run instead of starting (409). Both read every learner, so both run in the worker
(``bot.console.jobs``): the POST checks the form, enqueues the job and redirects to its page, which counts
the learners read until the plan (or the started broadcast) is there. A running broadcast's page and a job's
refresh themselves with a ``<meta http-equiv="refresh">`` (no script: the console's policy allows none).
Every change is audited.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import MultiDict

from bot.broadcasts import console as broadcast_cli
from bot.broadcasts.audience import Query
from bot.broadcasts.plan import WINDOW_STATES, Plan
from bot.broadcasts.service import BroadcastError, BroadcastProgress, Broadcasts
from bot.console import audit
from bot.console.jobs import ConsoleJob, JobKind, Jobs, JobStatus, SendOutcome
from bot.console.pages import Console, job_queue, me
from bot.console.users import Role

REFRESH_SECONDS = 2  # a running broadcast's page reloads this often
BROADCAST_ID = re.compile(r"^[0-9]{8}-[0-9]{6}-[0-9a-f]{6}$")  # Broadcasts.start's ids
LIST_FIELDS = ("channel", "lang", "business", "done", "not_done", "checkup_level")
CHANNELS = ("whatsapp", "messenger", "instagram")
LANGUAGES = ("it", "en")


@dataclass(frozen=True, kw_only=True, slots=True)
class Pace:
    """What the progress page shows beyond the counts: the average rate since the start and the ETA."""

    percent: int
    rate: float  # settled recipients per second since the start
    eta: str


def add_routes(pages: Blueprint, console: Console, broadcasts: Broadcasts) -> None:
    """``/admin/broadcasts`` and ``/admin/broadcasts/<id>`` (viewer); dry run, send, their job pages, pause,
    resume, cancel (editor)."""
    read, act = console.require(Role.VIEWER), console.require(Role.EDITOR)

    @pages.get("/broadcasts")
    @read
    def broadcasts_list() -> ResponseReturnValue:
        return _form_page(console, broadcasts, MultiDict(), plan=None)

    @pages.post("/broadcasts/dry-run")
    @act
    def broadcast_dry_run() -> ResponseReturnValue:
        return _enqueue(console, broadcasts, JobKind.BROADCAST_DRY_RUN)

    @pages.post("/broadcasts/send")
    @act
    def broadcast_send() -> ResponseReturnValue:
        return _enqueue(console, broadcasts, JobKind.BROADCAST_SEND)

    @pages.get("/broadcasts/jobs/<job_id>")
    @act
    def broadcast_job(job_id: str) -> ResponseReturnValue:
        job = Jobs(console.client).get(job_id)
        if job is None or job.kind not in (JobKind.BROADCAST_DRY_RUN, JobKind.BROADCAST_SEND):
            abort(404, description="No such dry run or send (its record is kept a day).")
        return _job_page(console, broadcasts, job)

    @pages.get("/broadcasts/<broadcast_id>")
    @read
    def broadcast(broadcast_id: str) -> ResponseReturnValue:
        report = broadcasts.report(_known(broadcasts, broadcast_id))
        progress = report.progress
        return render_template("console/broadcast.html", progress=progress, report=report,
                               pace=pace(progress, broadcasts.clock()), plan=report.plan,
                               refresh=0 if progress.finished or progress.status == "paused" else REFRESH_SECONDS)

    def change(action: str, broadcast_id: str) -> ResponseReturnValue:
        broadcast_id = _known(broadcasts, broadcast_id)
        changed = {"pause": broadcasts.pause, "resume": broadcasts.resume, "cancel": broadcasts.cancel}[action](
            broadcast_id)
        status = broadcasts.progress(broadcast_id).status
        if changed:
            audit.record(console.client, me(console), f"broadcast.{action}", broadcast_id, status)
            flash(f"Broadcast {broadcast_id}: {status}.", "ok")
        else:
            flash(f"Broadcast {broadcast_id} is {status}: it cannot {action} now.", "error")
        return redirect(url_for("console.broadcast", broadcast_id=broadcast_id), 303)

    @pages.post("/broadcasts/<broadcast_id>/pause")
    @act
    def broadcast_pause(broadcast_id: str) -> ResponseReturnValue:
        return change("pause", broadcast_id)

    @pages.post("/broadcasts/<broadcast_id>/resume")
    @act
    def broadcast_resume(broadcast_id: str) -> ResponseReturnValue:
        return change("resume", broadcast_id)

    @pages.post("/broadcasts/<broadcast_id>/cancel")
    @act
    def broadcast_cancel(broadcast_id: str) -> ResponseReturnValue:
        return change("cancel", broadcast_id)


def pace(progress: BroadcastProgress, now_ms: int) -> Pace:
    total = max(progress.total, 1)
    elapsed = max(now_ms - progress.created_ms, 1) / 1000 if progress.created_ms else 0.0
    rate = progress.settled / elapsed if elapsed else 0.0
    left = progress.total - progress.settled
    eta = "-"
    if progress.finished:
        eta = "finished"
    elif rate > 0 and left > 0:
        eta = f"{int(left / rate) // 60}m{int(left / rate) % 60:02d}s"
    return Pace(percent=100 * progress.settled // total, rate=rate, eta=eta)


def _enqueue(console: Console, broadcasts: Broadcasts, kind: JobKind) -> ResponseReturnValue:
    """Check the form, hand the job to the worker and send the admin to its page."""
    queue = job_queue(console)
    form = request.form
    try:
        query, message = _query(form), _message(form)
        if console.course().broadcast(message) is None:
            raise BroadcastError(f"No broadcast message {message!r} in the live course (flows/broadcasts.yaml, "
                                 "then publish).")
        expected = form.get("expected", "")
        if kind is JobKind.BROADCAST_SEND and not expected.isdigit():
            raise BroadcastError("Send from a dry run: it says how many learners you confirm.")
    except BroadcastError as error:
        flash(str(error), "error")
        return _form_page(console, broadcasts, form, plan=None), 400
    jobs = Jobs(console.client)
    job_id = jobs.create(kind, who=me(console), target=message, query=query.to_json(), form=_echo(form),
                         expected=int(expected or 0))
    if kind is JobKind.BROADCAST_SEND:  # accepted now; the worker records the outcome
        audit.record(console.client, me(console), "broadcast.send", f"job {job_id}",
                     f"asked: message {message} to {expected} learner(s), query {query.describe()}; the worker "
                     "checks the audience, then starts")
    jobs.hand_over(job_id, queue.console_job)
    return redirect(url_for("console.broadcast_job", job_id=job_id), 303)


def _job_page(console: Console, broadcasts: Broadcasts, job: ConsoleJob) -> ResponseReturnValue:
    """Counting (the page reloads itself), then the plan — or, for a send, the broadcast it started."""
    form = MultiDict(job.form)
    if not job.finished:
        what = "Dry run" if job.kind is JobKind.BROADCAST_DRY_RUN else "Send"
        return render_template("console/counting.html", job=job, what=f"{what}: message {job.target}",
                               refresh=REFRESH_SECONDS, back=url_for("console.broadcasts_list"))
    if job.status is JobStatus.FAILED:
        flash(job.error, "error")
        return _form_page(console, broadcasts, form, plan=None), 400
    summary = json.loads(job.result)
    plan, reached = Plan.from_summary(summary), int(summary["recipients"])
    if job.outcome == SendOutcome.STARTED.value:
        flash(f"Broadcast {job.broadcast_id} started: the workers send it.", "ok")
        return redirect(url_for("console.broadcast", broadcast_id=job.broadcast_id), 303)
    if job.outcome == SendOutcome.EMPTY.value:
        flash("Nobody to send it to: nothing started.", "error")
        return _form_page(console, broadcasts, form, plan=plan, reached=reached), 400
    if job.outcome == SendOutcome.CHANGED.value:
        flash(f"The audience changed since the dry run: {reached} learner(s) now. "
              "Check the new dry run, then send.", "error")
        return _form_page(console, broadcasts, form, plan=plan, reached=reached), 409
    return _form_page(console, broadcasts, form, plan=plan, reached=reached)


def _known(broadcasts: Broadcasts, broadcast_id: str) -> str:
    if not BROADCAST_ID.match(broadcast_id):
        abort(404, description="No such broadcast.")
    try:
        broadcasts.progress(broadcast_id)
    except BroadcastError as error:
        abort(404, description=str(error))
    return broadcast_id


def _message(form: MultiDict[str, str]) -> str:
    message = form.get("message", "").strip()
    if not message:
        raise BroadcastError("Choose the message (an id of flows/broadcasts.yaml).")
    return message


def _days(form: MultiDict[str, str], name: str) -> int | None:
    raw = form.get(name, "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise BroadcastError(f"{name.replace('_', ' ')}: a whole number of days, or empty")
    return int(raw)


def _query(form: MultiDict[str, str]) -> Query:
    """The form as the flags of ``bottega broadcast``, read by the CLI's ``query_of``."""
    lists = {name: [value.strip() for raw in form.getlist(name) for value in raw.split(",") if value.strip()]
             for name in LIST_FIELDS}
    reminders = form.get("reminders", "")
    args = argparse.Namespace(**lists, active_within=_days(form, "active_within"),
                              inactive_for=_days(form, "inactive_for"), rsvp=form.get("rsvp", "").strip(),
                              reminders=reminders if reminders in ("on", "off") else None)
    return broadcast_cli.query_of(args)


def _form_page(console: Console, broadcasts: Broadcasts, form: MultiDict[str, str], *, plan: Plan | None,
               reached: int = 0) -> str:
    """The form (as ``form`` filled it), the dry run's ``plan`` reaching ``reached`` learners, the broadcasts."""
    course = console.course()
    chosen = {name: set(form.getlist(name)) for name in (*LIST_FIELDS, "message")}
    every = list(reversed(broadcasts.every()))
    return render_template("console/broadcasts.html", every=every, plan=plan, reached=reached,
                           form=form, chosen=chosen, messages=[m.id for m in course.broadcasts],
                           channels=CHANNELS, languages=LANGUAGES,
                           businesses=[b.id for b in course.business_types], modules=list(course.modules),
                           states=WINDOW_STATES, echo=_echo(form))


def _echo(form: MultiDict[str, str]) -> list[tuple[str, str]]:
    """The form's fields (not its token) as hidden inputs: the send repeats the dry run's audience."""
    return [(name, value) for name, value in form.items(multi=True) if name not in ("csrf_token", "expected")]
