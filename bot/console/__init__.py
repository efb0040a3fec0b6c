"""The admin console (issue 11 §2, §4): a small server-rendered Flask Blueprint at ``/admin``.

* ``users``: admins (argon2id hashes, roles viewer < editor < owner) in Redis; ``bottega admin add-user``.
* ``guard``: signed session cookies (Secure, HttpOnly, SameSite=Strict), CSRF tokens on every form,
  sign-in rate limiting, role checks, the security headers (CSP without inline script or style).
* ``audit``: every changing action, who and when (learners named by ``learner_ref`` only).
* ``pages``: sign-in, releases (diff and publish: ``bot.storage.releases``, as the CLI), learners
  (look-up, reset a module, export, erase: ``bot.privacy``), admins, the audit log.
* ``open_days_page``: Business Open Days — seats, attendees, announce (dry run first), as ``bottega events``.
* ``inbox_page``: the Inbox — open handovers to a person, a conversation, reply and hand back, through
  ``bot.handover.Inbox`` as ``bottega inbox``.
* ``broadcasts_page``: broadcasts — audience form, dry run, send, live progress, report, pause/resume/cancel,
  through ``bot.broadcasts`` as ``bottega broadcast``.
* ``jobs``, ``job_runner``, ``actors``: the dry runs, sends and announces, which read every learner, run in the
  worker (the request enqueues them); their pages count the learners read until the result is there.

``install(app, ...)`` mounts it when CONSOLE_SECRET_KEY is set (dev mode has a default) and returns the
``Console``, whose ``require(role)`` guards other pages (the analytics Blueprint, the simulator in
production); ``nav`` takes their menu entries.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import redis
from flask import Flask

from bot.broadcasts.service import Broadcasts
from bot.console import broadcasts_page, guard, inbox_page, open_days_page
from bot.console.learner_links import LearnerLinks
from bot.console.pages import Console, NavItem, blueprint
from bot.console.release_page import Census
from bot.console.users import Role, Users
from bot.delivery.broker import JobQueue
from bot.flows.spec import Course
from bot.handover import Inbox
from bot.storage.store import Store
from config.settings import Settings

__all__ = ["Console", "NavItem", "Role", "add_nav", "install"]

SESSION_COOKIE = "bottega_admin"


def install(app: Flask, *, settings: Settings, client: redis.Redis, course: Callable[[], Course],
            broadcasts: Broadcasts | None = None, inbox: Inbox | None = None,
            queue: JobQueue | None = None) -> Console | None:
    """Mount the console on ``app`` (None, and nothing mounted, without CONSOLE_SECRET_KEY)."""
    if not settings.console_secret_key:
        return None
    app.secret_key = settings.console_secret_key
    app.config.update(SESSION_COOKIE_NAME=SESSION_COOKIE, SESSION_COOKIE_SECURE=True, SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Strict",
                      PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.console_session_hours))
    app.jinja_env.globals["csrf_token"] = guard.csrf_token  # every form, the simulator's too
    console = Console(settings=settings, client=client, users=Users(client), course=course,
                      store=Store(client, dedup_ttl_seconds=settings.dedup_ttl_seconds,
                                  dedup_max_ids=settings.dedup_max_ids_per_learner,
                                  outbox_max_items=settings.outbox_max_items),
                      census=Census(client),
                      limiter=guard.LoginLimiter(client, settings.console_login_failures_per_minute),
                      links=LearnerLinks(settings.console_secret_key), queue=queue,
                      nav=[NavItem(label="Releases", endpoint="console.releases_page"),
                           NavItem(label="Learners", endpoint="console.learners"),
                           *([NavItem(label="Inbox", endpoint="console.inbox_list")] if inbox else []),
                           NavItem(label="Open Days", endpoint="console.open_days"),
                           *([NavItem(label="Broadcasts", endpoint="console.broadcasts_list")] if broadcasts else []),
                           NavItem(label="Admins", endpoint="console.users", role=Role.OWNER),
                           NavItem(label="Audit log", endpoint="console.audit_log", role=Role.OWNER)])
    pages = blueprint(console)
    open_days_page.add_routes(pages, console)
    if inbox is not None:
        inbox_page.add_routes(pages, console, inbox)
    if broadcasts is not None:
        broadcasts_page.add_routes(pages, console, broadcasts)
    app.register_blueprint(pages)
    return console


def add_nav(console: Console, item: NavItem) -> None:
    """A menu entry for another Blueprint's page (after the console's first two)."""
    console.nav.insert(2, item)
