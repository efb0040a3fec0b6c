"""The console's pages under ``/admin``: sign-in, home, releases, learners, admins, audit log.

Server-rendered Jinja, one stylesheet, no script: every action is a plain form POST carrying its CSRF
token, answered by a redirect (303) or a page. URLs name a learner by ``learner_ref`` (never an id or
phone: URLs reach access logs); a search is a POST for the same reason.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import redis
from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from bot import privacy
from bot.console import audit, guard, learner_page, release_page
from bot.console.learner_links import LearnerLinks
from bot.console.users import Role, UserError, Users
from bot.delivery.broker import JobQueue
from bot.flows.loader import course_files
from bot.flows.problems import FlowError
from bot.flows.spec import Course
from bot.model.privacy import learner_ref
from bot.storage import releases
from bot.storage.store import Store
from config.settings import Settings

log = logging.getLogger("bottega.console")
LEARNER_REF_CHARS = 12  # bot.model.privacy.learner_ref


@dataclass(frozen=True, kw_only=True, slots=True)
class NavItem:
    label: str
    endpoint: str  # "" = a slot for a page still to come (shown, not linked)
    role: Role = Role.VIEWER
    note: str = ""


@dataclass(kw_only=True)
class Console:
    """What the pages work with; built by ``bot.console.install``."""

    settings: Settings
    client: redis.Redis
    users: Users
    store: Store
    course: Callable[[], Course]  # the live course (the app's registry follows releases)
    census: release_page.Census
    limiter: guard.LoginLimiter
    links: LearnerLinks
    queue: JobQueue | None = None  # the worker's: the long actions (dry runs, sends, announces) run there
    nav: list[NavItem] = field(default_factory=list)

    def require(self, role: Role) -> Callable[[guard.View], guard.View]:
        """The view decorator other pages (analytics, simulator) use: signed in, CSRF on POST, at least ``role``."""
        return guard.require(self.users, role)

    def now_ms(self) -> int:
        return int(time.time() * 1000)


def blueprint(console: Console) -> Blueprint:
    pages = Blueprint("console", __name__, url_prefix="/admin", template_folder="templates",
                      static_folder="static", static_url_path="/static")
    viewer, editor, owner = (console.require(role) for role in (Role.VIEWER, Role.EDITOR, Role.OWNER))
    pages.after_request(guard.add_headers)

    @pages.context_processor
    def chrome() -> dict[str, object]:
        user = guard.current_user(console.users)
        return {"me": user, "nav": [item for item in console.nav if user is not None and user.may(item.role)],
                "Role": Role}

    @pages.errorhandler(HTTPException)
    def refused(error: HTTPException) -> ResponseReturnValue:
        return render_template("console/error.html", error=error), error.code or 500

    # -- signing in ------------------------------------------------------------------------------------
    @pages.get("/login")
    def login() -> ResponseReturnValue:
        return render_template("console/login.html", next=_safe_next(request.args.get("next", "")))

    @pages.post("/login")
    def login_post() -> ResponseReturnValue:
        name = request.form.get("name", "").strip().lower()
        target = _safe_next(request.form.get("next", ""))
        if not guard.csrf_valid():
            abort(400, description="The sign-in form expired: reload the page and sign in again.")
        if console.limiter.refused(name):
            log.warning("console sign-in refused: too many wrong passwords in a minute")
            return render_template("console/login.html", next=target, refused=True), 429
        user = console.users.authenticate(name, request.form.get("password", ""))
        if user is None:
            console.limiter.failed(name)
            log.info("console sign-in failed")
            return render_template("console/login.html", next=target, wrong=True, name=name), 401
        guard.sign_in(user)
        audit.record(console.client, user.name, "sign_in")
        return redirect(target or url_for("console.home"), 303)

    @pages.post("/logout")
    @viewer
    def logout() -> ResponseReturnValue:
        guard.sign_out()
        return redirect(url_for("console.login"), 303)

    @pages.get("/")
    @viewer
    def home() -> ResponseReturnValue:
        return render_template("console/home.html", live=releases.live_release(console.client))

    # -- releases --------------------------------------------------------------------------------------
    @pages.get("/releases")
    @viewer
    def releases_page() -> ResponseReturnValue:
        page = release_page.read(console.client, console.course(), console.census,
                                 wait=request.args.get("count") == "now")
        return render_template("console/releases.html", page=page, folder=str(console.settings.flows_dir))

    @pages.get("/releases/diff")
    @viewer
    def release_diff() -> ResponseReturnValue:
        folder = console.settings.flows_dir
        try:
            learners, _ = console.census.counts()  # a recent count, if any: no second scan of every learner
            preview = releases.preview(console.client, course_files(folder), folder=str(folder), learners=learners)
        except FlowError as error:
            return render_template("console/diff.html", problems=[str(p) for p in error.problems],
                                   folder=str(folder), preview=None)
        return render_template("console/diff.html", preview=preview, problems=[], folder=str(folder))

    @pages.post("/releases/publish")
    @editor
    def release_publish() -> ResponseReturnValue:
        folder = console.settings.flows_dir
        try:
            published = releases.publish(console.client, course_files(folder), folder=str(folder))
        except FlowError as error:
            for problem in error.problems:
                flash(str(problem), "error")
            flash(f"{len(error.problems)} problem(s): nothing was published.", "error")
            return redirect(url_for("console.release_diff"), 303)
        if published.unchanged:
            flash(f"Nothing to publish: release {published.release} is already this folder.", "info")
        else:
            audit.record(console.client, _me(), "publish", published.release, published.summary)
            console.census.forget()
            flash(f"Published release {published.release} — {published.summary}.", "ok")
        return redirect(url_for("console.releases_page"), 303)

    # -- learners --------------------------------------------------------------------------------------
    @pages.get("/learners")
    @viewer
    def learners() -> ResponseReturnValue:
        return render_template("console/learners.html", matches=None)

    @pages.post("/learners")
    @viewer
    def learner_search() -> ResponseReturnValue:
        found = privacy.find(console.client, request.form.get("q", ""))
        if len(found) == 1:
            return redirect(url_for("console.learner", key=console.links.link(found[0])), 303)
        matches = [(console.links.link(lid), learner_ref(lid), learner_page.mask(lid)) for lid in found]
        return render_template("console/learners.html", matches=matches), 200 if found else 404

    @pages.get("/learners/<key>")
    @viewer
    def learner(key: str) -> ResponseReturnValue:
        return render_template("console/learner.html", page=_page(key), revealed=False)

    @pages.post("/learners/<key>/phone")
    @owner
    def learner_phone(key: str) -> ResponseReturnValue:
        page = _page(key, reveal=True)
        audit.record(console.client, _me(), "learner.show_phone", page.ref)
        return render_template("console/learner.html", page=page, revealed=True)

    @pages.post("/learners/<key>/reset")
    @editor
    def learner_reset(key: str) -> ResponseReturnValue:
        learner_id, module = _learner(key), request.form.get("module", "")
        ref = learner_ref(learner_id)
        if module not in console.course().flows:
            abort(400, description=f"No module {module!r} in the live course.")
        if learner_page.reset(console.store, learner_id, module, console.now_ms()):
            audit.record(console.client, _me(), "learner.reset_module", ref, module)
            flash(f"Module {module} reset: its answers and score are gone; it is no longer completed.", "ok")
        else:
            flash("The learner kept changing (or is gone): nothing was reset. Try again.", "error")
        return redirect(url_for("console.learner", key=console.links.link(learner_id)), 303)

    @pages.post("/learners/<key>/export")
    @owner
    def learner_export(key: str) -> ResponseReturnValue:
        learner_id = _learner(key)
        ref = learner_ref(learner_id)
        document = privacy.export_learner(console.client, learner_id)
        audit.record(console.client, _me(), "learner.export", ref)
        body = json.dumps(document, ensure_ascii=False, indent=2)
        return Response(body, 200, mimetype="application/json",
                        headers={"Content-Disposition": f'attachment; filename="learner-{ref}.json"'})

    @pages.get("/learners/<key>/erase")
    @owner
    def learner_erase_confirm(key: str) -> ResponseReturnValue:
        return render_template("console/erase.html", page=_page(key))

    @pages.post("/learners/<key>/erase")
    @owner
    def learner_erase(key: str) -> ResponseReturnValue:
        learner_id = _learner(key)
        ref = learner_ref(learner_id)
        if request.form.get("confirm", "").strip() != ref:
            flash("Type the learner's reference exactly to confirm; nothing was erased.", "error")
            return redirect(url_for("console.learner_erase_confirm", key=console.links.link(learner_id)), 303)
        erased = privacy.erase_learner(console.client, learner_id)
        audit.record(console.client, _me(), "learner.erase", ref, f"{erased.total} keys or entries removed")
        flash(f"Learner {ref} erased: {erased.total} keys or entries removed; their certificates now show as "
              "revoked.", "ok")
        return redirect(url_for("console.learners"), 303)

    # -- admins and the audit log ------------------------------------------------------------------------
    @pages.get("/users")
    @owner
    def users() -> ResponseReturnValue:
        return render_template("console/users.html", users=console.users.every(), roles=list(Role))

    @pages.post("/users")
    @owner
    def user_add() -> ResponseReturnValue:
        name = request.form.get("name", "").strip().lower()
        try:
            console.users.add(name, Role.named(request.form.get("role", "")), request.form.get("password", ""))
        except UserError as error:
            flash(str(error), "error")
        else:
            audit.record(console.client, _me(), "admin.add", name, request.form.get("role", ""))
            flash(f"Admin {name} added.", "ok")
        return redirect(url_for("console.users"), 303)

    @pages.post("/users/<name>/role")
    @owner
    def user_role(name: str) -> ResponseReturnValue:
        try:
            role = Role.named(request.form.get("role", ""))
            _keep_an_owner(name, role)
            console.users.set_role(name, role)
        except UserError as error:
            flash(str(error), "error")
        else:
            audit.record(console.client, _me(), "admin.role", name, role.label)
            flash(f"{name} is now {role.label}.", "ok")
        return redirect(url_for("console.users"), 303)

    @pages.post("/users/<name>/remove")
    @owner
    def user_remove(name: str) -> ResponseReturnValue:
        try:
            _keep_an_owner(name, None)
        except UserError as error:
            flash(str(error), "error")
            return redirect(url_for("console.users"), 303)
        if console.users.remove(name):
            audit.record(console.client, _me(), "admin.remove", name)
            flash(f"Admin {name} removed; their sessions ended.", "ok")
        return redirect(url_for("console.users"), 303)

    @pages.get("/audit")
    @owner
    def audit_log() -> ResponseReturnValue:
        return render_template("console/audit.html", entries=audit.recent(console.client))

    def _me() -> str:
        return me(console)

    def _learner(key: str) -> str:
        return learner_of(console, key)

    def _page(key: str, *, reveal: bool = False) -> learner_page.LearnerPage:
        learner_id = _learner(key)
        return learner_page.read(console.client, learner_id, reveal=reveal, link=console.links.link(learner_id))

    def _keep_an_owner(name: str, role: Role | None) -> None:
        user = console.users.get(name)
        if user is None:
            raise UserError(f"no admin named {name!r}")
        if user.role is Role.OWNER and role is not Role.OWNER and console.users.owners() <= 1:
            raise UserError("the console needs at least one owner: make another admin owner first")

    return pages


def job_queue(console: Console) -> JobQueue:
    """The worker's queue, for the pages whose action reads every learner (``bot.console.jobs``)."""
    if console.queue is None:
        abort(503, description="This action runs in the worker: the console needs the send queue (REDIS_URL).")
    return console.queue


def me(console: Console) -> str:
    """The signed-in admin's name (for the audit log)."""
    user = guard.current_user(console.users)
    return user.name if user else "?"


def learner_of(console: Console, key: str) -> str:
    """The learner a page's link names: an encrypted link (``learner_links``) or a ``learner_ref``; else 404."""
    learner_id = console.links.learner(key) if len(key) > LEARNER_REF_CHARS else None
    if learner_id is not None and privacy.find(console.client, learner_id) == [learner_id]:
        return learner_id
    found = privacy.find_by_ref(console.client, key) if len(key) == LEARNER_REF_CHARS else []
    if len(found) != 1:
        abort(404, description="No learner here: erased, or the link is old or mistyped.")
    return found[0]


def _safe_next(target: str) -> str:
    """Only a path of the console itself (no open redirect)."""
    return target if target.startswith("/admin") and "//" not in target and "\\" not in target else ""
