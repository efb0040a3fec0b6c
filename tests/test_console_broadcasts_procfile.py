"""A broadcast sent from the admin console through the real Procfile processes (gunicorn web + Dramatiq
worker) to the fake Graph API: an editor signs in over HTTP, dry-runs and sends (each run by the worker: its job's
page until it is done), and reads the broadcast's page until it says done — every learner messaged once, the one
who wrote ``stop`` never.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests

from bot.console.users import Role, Users
from tests.broadcast_harness import learners_with_one_stopped, messages_per_user, running_tomorrow_at_ten
from tests.cluster import ENGINES, engine_cluster
from tests.service import Service
from tests.test_console_broadcasts import send_form

pytestmark = pytest.mark.procfile

LEARNERS = 4
PASSWORD = "correct horse battery"
COOKIE = "bottega_admin"
BROADCAST_TEXT = "modulo nuovo"


@pytest.fixture(params=ENGINES)
def service(request, tmp_path) -> Iterator[Service]:
    """On both engines: one Redis server with Dramatiq's Redis broker, a Redis Cluster with RabbitMQ."""
    svc = Service(tmp_path, env="test", cluster=engine_cluster(request),
                  extra_env={"CONSOLE_SECRET_KEY": "a-procfile-console-secret-of-enough-length"})
    with running_tomorrow_at_ten(svc):
        yield svc


class Admin:
    """An admin's browser over plain HTTP: the session cookie is ``Secure``, so it is carried by hand."""

    def __init__(self, service: Service):
        self.url, self.cookie = service.url, ""

    def open(self, method: str, path: str, data: dict[str, list[str]] | dict[str, str] | None = None
             ) -> requests.Response:
        answer = requests.request(method, self.url + path, data=data, allow_redirects=False, timeout=30,
                                  headers={"Cookie": f"{COOKIE}={self.cookie}"} if self.cookie else {})
        self.cookie = answer.cookies.get(COOKIE) or self.cookie
        return answer

    def token(self, path: str) -> str:
        found = re.search(r'name="csrf_token" value="([^"]+)"', self.open("GET", path).text)
        assert found, path
        return found.group(1)


def counted(admin: Admin, asked: requests.Response) -> requests.Response:
    """A dry run or send runs in the worker: follow the POST's redirect to the job's page until it has counted."""
    assert asked.status_code == 303, asked.text
    job_page = urlsplit(asked.headers["Location"]).path
    deadline = time.monotonic() + 60
    while True:
        answer = admin.open("GET", job_page)
        if "Counting…" not in answer.text or time.monotonic() > deadline:
            return answer
        assert 'http-equiv="refresh"' in answer.text  # the job's page reloads itself
        time.sleep(0.2)


def test_an_editor_sends_a_broadcast_from_the_console_and_watches_it_finish(service: Service):
    # the last one's confirmed stop is answered with nothing to tap, no turn to wait for: the dry run waits
    phones = learners_with_one_stopped(service, "39333300", LEARNERS)
    client = service.redis_client()
    try:
        Users(client).add("ezio", Role.EDITOR, PASSWORD)
    finally:
        client.close()

    admin = Admin(service)
    signed = admin.open("POST", "/admin/login", {"name": "ezio", "password": PASSWORD,
                                                 "csrf_token": admin.token("/admin/login")})
    assert signed.status_code == 303, signed.text
    deadline = time.monotonic() + 60
    while True:  # the stop's commit may trail its reply by a moment
        plan = counted(admin, admin.open("POST", "/admin/broadcasts/dry-run", {
            "message": "news", "csrf_token": admin.token("/admin/broadcasts")}))
        assert plan.status_code == 200, plan.text
        if f"<strong>{LEARNERS - 1}</strong> would be sent it now" in plan.text or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert f"<strong>{LEARNERS}</strong> learner(s) match, <strong>{LEARNERS - 1}</strong> would be sent" in plan.text
    started = counted(admin, admin.open("POST", "/admin/broadcasts/send", {
        **send_form(plan.text), "csrf_token": admin.token("/admin/broadcasts")}))
    assert started.status_code == 303, started.text
    page = urlsplit(started.headers["Location"]).path

    deadline = time.monotonic() + 120
    text = ""
    while time.monotonic() < deadline:
        text = admin.open("GET", page).text
        if "<small>done</small>" in text:
            break
        assert 'http-equiv="refresh"' in text  # a running broadcast's page reloads itself
        time.sleep(0.2)
    assert "<small>done</small>" in text, text
    assert f"{LEARNERS - 1}/{LEARNERS - 1} settled · sent {LEARNERS - 1} · failed 0" in text
    counts = messages_per_user(service, BROADCAST_TEXT)
    assert counts == {phone.user: 1 for phone in phones[:-1]}  # each once; the one who said stop, never
