"""``bottega run`` (what ``make run`` starts): the Procfile's processes on one machine, in dev mode.

Starts an embedded Redis under ``var/redis`` (unless REDIS_URL is set) and the project's fake Graph
API on loopback (unless GRAPH_API_URL is set), then runs every line of the ``Procfile`` with those
in the environment, prints how to talk to the service, and on Ctrl-C stops the processes, the fake
and the embedded Redis — explicitly, so no redis-server is left orphaned.
Saving a file in the flows folder checks it and keeps it a draft, so an admin can try it
(``bottega chat --draft``), see what it changes for learners (``bottega flows diff``) and then publish
(``bottega flows publish``); ``bottega run --publish-on-save`` publishes every save that passes instead.
``bottega send TEXT`` posts one signed webhook to the running service and shows what it sent back.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis
import requests

from bot import channels
from bot.channels import signature as security
from bot.dev import embedded_redis, fake_graph
from bot.flows.loader import check_course_texts, course_files, load_course
from bot.flows.problems import FlowError, Problem
from bot.model.events import Channel
from bot.storage import releases
from bot.storage.clock import SharedTestClock
from config.settings import PROJECT_ROOT, Settings, environment

STOP_GRACE_SECONDS = 10.0
STATE_FILE = "dev.json"  # under var/: where the running dev service listens, for `bottega send`


def procfile_commands(path: Path) -> dict[str, str]:
    commands = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        name, sep, command = line.partition(":")
        if sep and name.strip() and not name.lstrip().startswith("#"):
            commands[name.strip()] = command.strip()
    return commands


def dev_environment(redis_url: str, graph_url: str, port: int) -> dict[str, str]:
    env = environment(BOTTEGA_ENV="dev", REDIS_URL=redis_url, GRAPH_API_URL=graph_url, PORT=str(port))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def serve(*, publish_on_save: bool = False) -> int:
    settings = Settings.from_env(dev_default=True)
    try:
        load_course(settings.flows_dir)
    except FlowError as error:
        print(error, file=sys.stderr)
        return 1
    redis_url, server = embedded_redis.url_for(settings)
    given = settings.graph_api_url != Settings.graph_api_url  # GRAPH_API_URL names another Graph (a fake)
    fake = None if given else fake_graph.serve_in_thread(0)
    graph_url = fake.url if fake else settings.graph_api_url
    env = dev_environment(redis_url, graph_url, settings.port)
    processes: dict[str, subprocess.Popen[bytes]] = {}
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        for name, command in procfile_commands(PROJECT_ROOT / "Procfile").items():
            processes[name] = subprocess.Popen(["sh", "-c", f"exec {command}"], cwd=PROJECT_ROOT, env=env,
                                               start_new_session=True)
        webhook = f"http://127.0.0.1:{settings.port}/webhook"
        settings.var_dir.mkdir(parents=True, exist_ok=True)
        (settings.var_dir / STATE_FILE).write_text(json.dumps({"webhook": webhook, "graph": graph_url,
                                                                "redis": redis_url}))
        simulator = f"http://127.0.0.1:{settings.port}/simulator"
        _print_banner(webhook, graph_url, redis_url, list(processes), settings.flows_dir, publish_on_save, simulator)
        watcher = FlowWatcher(settings.flows_dir, redis.Redis.from_url(redis_url), publish_on_save=publish_on_save)
        watcher.start()
        while not stopping:
            for name, process in processes.items():
                if process.poll() is not None:
                    print(f"bottega: the '{name}' process exited with {process.returncode}; stopping.",
                          file=sys.stderr)
                    stopping = True
            watcher.poll()
            time.sleep(0.2)
        watcher.client.close()
    finally:
        _stop_processes(processes)
        if fake:
            fake.stop()
        if server:
            server.stop()
        (settings.var_dir / STATE_FILE).unlink(missing_ok=True)
    print("Bottega stopped (processes, fake Graph API and embedded Redis).")
    return 0


class FlowWatcher:
    """Dev mode: check the flows folder whenever a YAML file in it is saved; publish it only if asked.

    Every outcome is printed as one ``bottega:`` line (problems and warnings below it): what was
    found, which release learners get, and what to do next. A save that corrects a broken one says
    "fixed", so the admin knows the last message no longer holds.
    """

    def __init__(self, folder: Path, client: redis.Redis, *, publish_on_save: bool = False):
        self.folder, self.client, self.publish_on_save = folder, client, publish_on_save
        self.fingerprint = self._fingerprint()
        self.checked_at = 0.0
        self.broken = False  # the last save failed the check or was refused
        self.serving = ""  # the live release last reported: `bottega flows publish` may move it meanwhile

    def _fingerprint(self) -> tuple[tuple[str, int, int], ...]:
        return tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(self.folder.glob("*.yaml")))

    def start(self) -> None:
        """Nothing live yet: the folder becomes the first release (as the web process does); else a save."""
        if self.publish_on_save or not releases.live_release(self.client):
            self.publish()
        else:
            self.check()

    def poll(self) -> None:
        if time.monotonic() - self.checked_at < 1.0:
            return
        self.checked_at = time.monotonic()
        fingerprint = self._fingerprint()
        if fingerprint != self.fingerprint:
            self.fingerprint = fingerprint
            if self.publish_on_save:
                self.publish()
            else:
                self.check()
        live = releases.live_release(self.client)
        if live != self.serving:  # published from elsewhere (`bottega flows publish`): the last line is stale
            self.serving = live
            _say(f"now serving release {live}")

    def publish(self) -> None:
        files = course_files(self.folder)
        try:
            published = releases.publish(self.client, files, folder=str(self.folder))
        except FlowError as error:
            self._refused(error, "not published")
            return
        self._print_warnings(check_course_texts(files, folder=str(self.folder)).warnings)
        fixed, self.broken, self.serving = self.broken, False, published.release
        if fixed:
            _say(f"fixed — serving release {published.release} ({published.summary})")
        elif not published.unchanged:
            _say(f"published release {published.release} — {published.summary}")

    def check(self) -> None:
        """Check a saved draft and say how it stands against the live release; publish nothing."""
        files = course_files(self.folder)
        try:
            checked = check_course_texts(files, folder=str(self.folder))
        except FlowError as error:
            self._refused(error, "does not pass the check")
            return
        live, unbumped = releases.live_warnings(self.client, checked.course, files, folder=str(self.folder))
        self._print_warnings([*checked.warnings, *unbumped])
        fixed, self.broken, self.serving = self.broken, False, live
        if releases.stored_release(self.client, live) == files:
            state = f"it is live release {live}"
        else:
            state = (f"learners still get release {live}. Try it: bottega chat --draft; see what it changes: "
                     "bottega flows diff; then: bottega flows publish")
        _say(f"{'fixed — ' if fixed else ''}{self.folder} passes the check; {state}")

    def _refused(self, error: FlowError, what: str) -> None:
        self.broken = True
        self.serving = releases.live_release(self.client)
        live = self.serving or "none"
        listing = "\n".join(str(problem) for problem in [*error.problems, *error.warnings])
        _say(f"{self.folder} {what}; still serving release {live}:\n{listing}")

    @staticmethod
    def _print_warnings(warnings: list[Problem] | tuple[Problem, ...]) -> None:
        for problem in warnings:
            print(problem, flush=True)


def _say(line: str) -> None:
    print(f"bottega: {line}", flush=True)


def _print_banner(webhook: str, graph_url: str, redis_url: str, names: list[str], flows_dir: Path,
                  publish_on_save: bool, simulator: str) -> None:
    bin_dir = ".venv/bin/" if (PROJECT_ROOT / ".venv").exists() else ""
    saving = ("publishes it at once (--publish-on-save)" if publish_on_save else
              f"checks it and keeps it a draft:\n"
              f"  {bin_dir}bottega chat --draft         try your edits (the learners' course is untouched)\n"
              f"  {bin_dir}bottega flows diff           what publishing would change for learners\n"
              f"  {bin_dir}bottega flows publish        make it the live course")
    channel_names = "|".join(parts.channel.name for parts in channels.every())
    console = simulator.removesuffix("/simulator") + "/admin"
    print(f"""
Bottega is running in dev mode ({', '.join(names)} from the Procfile).
  Webhook          {webhook}  (GET handshake token and app secret: the dev secret)
  Fake Graph API   {graph_url}  (what Bottega sent: {graph_url}/_fake/calls)
  Redis            {redis_url}
Talk to it:
  Simulator        {simulator}  (open it in a browser: a phone per channel, side by side)
  Admin console    {console}  (first: {bin_dir}bottega admin add-user NAME --role owner)
  {bin_dir}bottega chat                 a learner conversation in your terminal
  {bin_dir}bottega chat --channel {channel_names} --lang en
  {bin_dir}bottega send "ciao"          post a signed webhook here (--channel too) and see the replies
  {bin_dir}bottega clock advance 1d     move Bottega's clock a day on: reminders due by then go out
Saving a file in {flows_dir} {saving}
Stop with Ctrl-C.
""", flush=True)


def _stop_processes(processes: dict[str, subprocess.Popen[bytes]]) -> None:
    for process in processes.values():
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for process in processes.values():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def running_graph_url(settings: Settings) -> str:
    """The fake Graph API of a running `make run` (from var/dev.json), or ""."""
    state_path = settings.var_dir / STATE_FILE
    try:
        return str(json.loads(state_path.read_text()).get("graph", "")) if state_path.exists() else ""
    except (OSError, ValueError):
        return ""


def send_one(text: str, channel: Channel, user: str | None, url: str | None) -> int:
    settings = Settings.from_env(dev_default=True)
    state_path = settings.var_dir / STATE_FILE
    state = json.loads(state_path.read_text()) if state_path.exists() else {}
    webhook = url or state.get("webhook") or f"http://127.0.0.1:{settings.port}/webhook"
    parts = channels.parts_for(channel)
    at_ms = 0  # the message is written "now" on the shared test clock, which `bottega clock` may have moved
    if state.get("redis"):
        client = redis.Redis.from_url(state["redis"], socket_timeout=2)
        try:
            at_ms = SharedTestClock(client)()
        except redis.RedisError:
            at_ms = 0
        finally:
            client.close()
    payload = parts.dev.text_payload(text, user or parts.dev.send_user, parts.dev.reply_from(settings), at_ms=at_ms)
    secret = getattr(settings, parts.app_secret_setting)
    raw = json.dumps(payload).encode()
    graph = state.get("graph", "")
    before = len(requests.get(f"{graph}/_fake/calls", timeout=5).json()) if graph else 0
    answer = requests.post(webhook, data=raw, timeout=10, headers={
        "Content-Type": "application/json", "X-Hub-Signature-256": security.sign(secret, raw)})
    print(f"webhook answered {answer.status_code} {answer.text.strip()}")
    if not graph:
        return 0 if answer.ok else 1
    time.sleep(1.5)  # the worker sends asynchronously
    for call in requests.get(f"{graph}/_fake/calls", timeout=5).json()[before:]:
        shown = parts.describe(call["body"])
        if shown.text:
            print("\n" + shown.text)
        for number, (_, title) in enumerate(shown.options, start=1):
            print(f"  [{number}] {title}")
    return 0 if answer.ok else 1
