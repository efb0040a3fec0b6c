"""A harness for the real Procfile processes: gunicorn web + Dramatiq worker, a restartable embedded
Redis (or a local Redis Cluster with RabbitMQ: ``tests/cluster.py``), and the fake Graph API on loopback —
plus a learner who talks to them like a phone would."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis
import requests

from bot import channels
from bot.channels import check_limits, describe
from bot.channels.body_checks import Shown
from bot.channels.signature import sign
from bot.dev import clock_tool, embedded_redis, fake_graph
from bot.dev.devserver import procfile_commands
from bot.model.events import Channel
from bot.storage import clock
from bot.storage.keys import LearnerPart, learner_key
from config.settings import PROJECT_ROOT, Settings
from tests.cluster import RABBITMQ_URL, LocalCluster

SECRET = "e2e-app-secret"
PHONE_NUMBER_ID = "100000000000001"
PAGE_ID = "200000000000002"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Service:
    """Redis, the fake Graph API, and each Procfile line as its own process group."""

    def __init__(self, workdir: Path, *, flows_dir: Path | None = None, env: str = "production",
                 extra_env: dict[str, str] | None = None, cluster: LocalCluster | None = None):
        self.workdir = workdir
        self.cluster = cluster
        backend: dict[str, str] = {}
        if cluster is None:
            self.redis_port = free_port()
            self.redis = embedded_redis.start(workdir / "redis", port=self.redis_port)
            backend["REDIS_URL"] = self.redis.url
        else:  # state on the Redis Cluster, the send queue on RabbitMQ
            backend.update(REDIS_URL=cluster.url, BROKER_URL=RABBITMQ_URL)
        self.graph = fake_graph.serve_in_thread(0)
        self.port = free_port()
        self.commands = procfile_commands(PROJECT_ROOT / "Procfile")
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, object] = {}
        self.env = {**os.environ, "META_APP_SECRET": SECRET, "META_VERIFY_TOKEN": "e2e-verify",
                    "WHATSAPP_TOKEN": "e2e-wa-token", "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
                    "MESSENGER_PAGE_TOKEN": "e2e-page-token", "GRAPH_API_URL": self.graph.url,
                    **backend, "PORT": str(self.port), "BIND_HOST": "127.0.0.1",
                    "BOTTEGA_ENV": env, "BOTTEGA_VAR_DIR": str(workdir / "var"),
                    "BOTTEGA_FLOWS_DIR": str(flows_dir or PROJECT_ROOT / "flows"),
                    # a test learner taps faster than a person reads: pace them like a fast person
                    "LEARNER_MESSAGE_INTERVAL_SECONDS": "0.05", "RECEIPT_INTERVAL_SECONDS": "0.05",
                    "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
                    **(extra_env or {})}
        self.url = f"http://127.0.0.1:{self.port}"
        self.settings = Settings.from_env(self.env)
        self.session = requests.Session()

    def __enter__(self) -> Service:
        """Every Procfile process started (all closed again if one fails to): ``with Service(tmp) as svc:``."""
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self, *names: str) -> None:
        for name in names or tuple(self.commands):
            self.start_as(name, name)
        if "web" in (names or self.commands):
            self.wait_web()

    def start_as(self, name: str, line: str, **env: str) -> None:
        """Run the Procfile's ``line`` as process ``name`` (its log: ``<name>.log``) with ``env`` added: a second
        web on another address, a worker of another box."""
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - closed in stop()
        self.logs[name] = log
        self.processes[name] = subprocess.Popen(
            ["sh", "-c", f"exec {self.commands[line]}"], cwd=PROJECT_ROOT, env={**self.env, **env},
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_web(self, timeout: float = 30.0, url: str = "") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.session.get(f"{url or self.url}/healthz", timeout=1).status_code in (200, 503):
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise AssertionError(f"web did not start; see {self.workdir / 'web.log'}")

    def stop(self, *names: str, sig: int = signal.SIGTERM) -> None:
        for name in names or tuple(self.processes):
            process = self.processes.pop(name, None)
            if process is None:
                continue
            if process.poll() is None:
                os.killpg(process.pid, sig)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            self.logs.pop(name).close()  # type: ignore[attr-defined]

    def restart_redis(self) -> None:
        self.redis = embedded_redis.start(self.workdir / "redis", port=self.redis_port)

    def close(self) -> None:
        self.stop()
        self.graph.stop()
        if self.cluster is None:
            self.redis.stop()
        self.session.close()

    # -- the shared test clock (BOTTEGA_ENV=test: web, worker and this harness read it from Redis) -------
    def redis_client(self) -> redis.Redis:
        if self.cluster is not None:
            return self.cluster.client()  # type: ignore[return-value]
        return redis.Redis.from_url(self.redis.url)

    def now_ms(self) -> int:
        """Bottega's time: the real clock in production, the shared test clock in test."""
        if not self.settings.movable_clock:
            return clock.system_ms()
        client = self.redis_client()
        try:
            return clock.SharedTestClock(client)()
        finally:
            client.close()

    def set_clock(self, at_ms: int) -> None:
        client = self.redis_client()
        try:
            clock.set_now(client, at_ms)
        finally:
            client.close()

    def run_timers_until(self, until_ms: int, *, step_timeout: float = 60.0) -> None:
        """Move the test clock through every timer due before ``until_ms``, one due time at a time (as
        `bottega clock advance` does): each fires in the worker and its sends drain before the next."""
        client = self.redis_client()
        try:
            assert clock_tool.run_until(client, until_ms, step_timeout=step_timeout), \
                f"a due timer did not fire or its sends did not drain; see {self.workdir / 'worker.log'}"
        finally:
            client.close()

    def post(self, payload: dict | bytes, *, secret: str = SECRET, url: str = "") -> requests.Response:
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return self.session.post(f"{url or self.url}/webhook", data=raw, timeout=10, headers={
            "Content-Type": "application/json", "X-Hub-Signature-256": sign(secret, raw)})


class Phone:
    """One learner on one channel: posts webhooks as Meta would and reads what the fake Graph API got."""

    def __init__(self, service: Service, channel: Channel, user: str):
        self.service, self.channel, self.user = service, channel, user
        self.posted: list[bytes] = []
        self.options: tuple[tuple[str, str], ...] = ()
        self.seen_calls = 0
        self.message_ids: set[str] = set()

    # -- what Meta would post ---------------------------------------------------------------------
    @property
    def parts(self):
        return channels.parts_for(self.channel)

    def _payload(self, *, text: str = "", reply: tuple[str, str] | None = None) -> dict:
        """The webhook body this learner's channel posts for a text or a tap (the channel's dev parts)."""
        dev, reply_from = self.parts.dev, self.parts.dev.reply_from(self.service.settings)
        at_ms = self.service.now_ms()  # written now on Bottega's clock (the test clock may be days ahead)
        if reply:
            payload = dev.tap_payload(reply[0], reply[1], self.user, reply_from, len(self.options), at_ms=at_ms)
        else:
            payload = dev.text_payload(text, self.user, reply_from, at_ms=at_ms)
        self.message_ids.update(event.message_id for event in self.parts.parse(payload)[0])
        return payload

    def send(self, text: str) -> requests.Response:
        return self._post(self._payload(text=text))

    def tap(self, title_start: str) -> requests.Response:
        for option in self.options:
            if option[1].startswith(title_start):
                return self._post(self._payload(reply=option))
        raise AssertionError(f"no option starting with {title_start!r} in {self.options}")

    def _post(self, payload: dict) -> requests.Response:
        raw = json.dumps(payload).encode()
        self.posted.append(raw)
        answer = self.service.post(raw)
        assert answer.status_code == 200, answer.text
        return answer

    # -- what the phone got ----------------------------------------------------------------------
    def calls(self) -> list[dict]:
        return [call for call in self.service.graph.calls() if self._mine(call["body"])]

    def _mine(self, body: dict) -> bool:
        return self.parts.dev.addressed_to(body, self.user) or body.get("message_id") in self.message_ids

    def wait_for(self, fragment: str, timeout: float = 60.0) -> float:
        """Wait until a message containing ``fragment`` arrives; its arrival time (time.monotonic)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for call in self.calls():
                if fragment in describe(self.channel, call["body"]).text:
                    return call["at"]
            time.sleep(0.05)
        raise AssertionError(f"no message with {fragment!r} within {timeout}s")

    def count(self, fragment: str) -> int:
        return sum(fragment in describe(self.channel, call["body"]).text for call in self.calls())

    def wait_turn(self, timeout: float = 45.0) -> list[Shown]:
        """Wait for the replies to the last message: new messages ending with one that offers options.
        (45 s only bounds a failure: a worker just started on a loaded 2-core machine, on the cluster and
        RabbitMQ, once took more than 20 s to send its first reply.)"""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # an item leaves the outbox only after the fake recorded its call: look at the outbox first, so
            # that the calls read next hold everything it had (the other way round, a message sent in between
            # would be missed here and taken for the next turn's)
            empty = self.outbox_empty()
            calls = self.calls()
            new = [describe(self.channel, c["body"]) for c in calls[self.seen_calls:]]
            shown = [s for s in new if s.text or s.options]
            # a turn can say more than one message with options (the reminders' offer before "Well done!"):
            # it is over when its last message has options and nothing of it waits in the outbox any more
            if shown and shown[-1].options and empty:
                self.seen_calls = len(calls)
                self.options = shown[-1].options
                return shown
            time.sleep(0.05)
        raise AssertionError(f"no complete reply within {timeout}s; got {len(self.calls())} calls")

    def outbox_empty(self) -> bool:
        client = self.service.redis_client()
        try:
            return client.llen(learner_key(f"{self.channel.prefix}:{self.user}", LearnerPart.OUTBOX)) == 0
        finally:
            client.close()

    def limit_violations(self) -> list[str]:
        return [problem for call in self.calls() for problem in check_limits(self.channel, call["body"])]
