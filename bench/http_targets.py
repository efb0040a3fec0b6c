"""Load one gunicorn target over loopback: warm-up, saturated rate (closed loop), latency (open loop).

A target is the Procfile's ``web:`` command with an app spec: Bottega's ``webhooks:create_app()`` or
the bare endpoint ``bench.bare_app:create_app()``, both with ``-c config/gunicorn.py``. The closed
loop uses ``wrk`` (one thread, C keep-alive connections) when it is installed, else ``loadgen.py``;
the open loop always uses ``loadgen.py`` (wrk cannot hold a fixed rate).
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.processes import (
    Processes,
    busiest_others,
    cpu_by_process,
    cpu_seconds_by_pid,
    cpu_seconds_of_group,
    free_port,
    machine_cpu_seconds,
    wait_http,
)

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
WRK_TIMEOUT_SECONDS = 120
CORES = os.cpu_count() or 1
OPEN_LOOP_MAX_SECONDS = 20  # the open loop sends fewer requests rather than run longer than this
OPEN_LOOP_MIN_REQUESTS = 500


@dataclass
class Phase:
    """Where the stream's requests for one phase are: a file and how many to answer."""

    file: Path
    count: int


@dataclass
class TargetResult:
    name: str
    command: str
    closed_tool: str = ""
    clients: int = 0
    saturated_per_s: float = 0.0  # the median of saturated_runs
    saturated_runs: list[float] = field(default_factory=list)
    requests_per_run: int = 0
    saturated_non_200: int = 0
    cpu_ms_per_request: dict[str, float] = field(default_factory=dict)
    worker_cpu_shares: list[list[float]] = field(default_factory=list)  # per saturated run, largest first
    open_worker_shares: list[float] = field(default_factory=list)
    busiest_others: list[tuple[str, float]] = field(default_factory=list)  # (command, CPU ms per request)
    open: dict = field(default_factory=dict)


def web_command(app_spec: str) -> str:
    """The Procfile's ``web:`` line, with ``app_spec`` in place of Bottega's app."""
    procfile = (ROOT / "Procfile").read_text(encoding="utf-8")
    line = next(raw.partition(":")[2].strip() for raw in procfile.splitlines() if raw.startswith("web:"))
    if app_spec == "webhooks:create_app()":
        return line
    replaced = line.replace('"webhooks:create_app()"', f'"{app_spec}"')
    if replaced == line:
        raise RuntimeError(f"the Procfile's web line changed shape; cannot swap in {app_spec}: {line}")
    return replaced


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _wrk_closed(procs: Processes, port: int, phase: Phase, clients: int, env: dict[str, str]) -> tuple[float, int]:
    """wrk runs for a duration, so our script stops sending at ``phase.count`` answers and says so
    on stderr; we then interrupt wrk, which prints its figures for the time it actually ran."""
    wrk = procs.start(["wrk", "-t1", f"-c{clients}", f"-d{WRK_TIMEOUT_SECONDS}s", "-s",
                       str(BENCH_DIR / "wrk_post.lua"), f"http://127.0.0.1:{port}", "--",
                       str(phase.file), str(phase.count)], env=env, cwd=ROOT, capture=True)
    assert wrk.stderr is not None
    marker = wrk.stderr.readline().decode()  # blocks until the script has its answers (or wrk ends)
    if wrk.poll() is None:
        os.kill(wrk.pid, signal.SIGINT)
    try:
        out_bytes, err_bytes = wrk.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        raise RuntimeError("wrk did not stop after SIGINT") from None
    finally:
        procs.stop(wrk)
    out, err = out_bytes.decode(), marker + err_bytes.decode()
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)\b", out)
    if not done or "bench: answered" not in marker:
        raise RuntimeError(f"cannot read wrk's output:\n{out}\n{err}")
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[done.group(3)]
    elapsed = float(done.group(2)) * scale
    non_200 = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return int(done.group(1)) / elapsed, int(non_200.group(1)) if non_200 else 0


def _loadgen(procs: Processes, port: int, phase: Phase, env: dict[str, str], *extra: str) -> dict:
    out, _ = procs.run([sys.executable, str(BENCH_DIR / "loadgen.py"), extra[0], "--port", str(port),
                        "--file", str(phase.file), "--count", str(phase.count), *extra[1:]],
                       env=env, cwd=ROOT, timeout=WRK_TIMEOUT_SECONDS)
    return json.loads(out)


def closed_loop(procs: Processes, port: int, phase: Phase, clients: int, env: dict[str, str],
                use_wrk: bool) -> tuple[float, int]:
    if use_wrk:
        return _wrk_closed(procs, port, phase, clients, env)
    result = _loadgen(procs, port, phase, env, "closed", "--clients", str(clients))
    non_200 = sum(n for status, n in result["statuses"].items() if status != "200")
    return result["rate_per_s"], non_200


def measure(procs: Processes, name: str, app_spec: str, env: dict[str, str], workdir: Path, *,
            warmup: Phase, saturate: list[Phase], latency: Phase, clients: int,
            redis_pid: int | None, open_rate: float | None = None) -> TargetResult:
    """Start the target, warm it up, saturate it once per ``saturate`` phase (fresh connections each
    time: gunicorn's workers split them differently every time), then hold half the median rate (or
    ``open_rate``: the same offered load for targets compared with each other)."""
    port = free_port()
    command = web_command(app_spec)
    result = TargetResult(name=name, command=command, clients=clients)
    use_wrk = shutil.which("wrk") is not None
    result.closed_tool = "wrk (1 thread)" if use_wrk else "bench/loadgen.py (asyncio)"
    env = {**env, "PORT": str(port)}
    log = workdir / f"{name}.log"
    server = procs.start(["sh", "-c", f"exec {command}"], env=env, cwd=ROOT, log=log)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", server, log)
        closed_loop(procs, port, warmup, clients, env, use_wrk)

        def cpu() -> tuple[float, ...]:
            machine = machine_cpu_seconds()
            return (cpu_seconds_of_group(server.pid), _redis_cpu(redis_pid), _children_cpu_seconds(),
                    machine["tasks"], machine["irq"], machine["steal"])

        before, wall, answered, everyone = cpu(), 0.0, 0, cpu_by_process()
        result.requests_per_run = saturate[0].count
        for phase in saturate:
            workers_before = cpu_seconds_by_pid(server.pid)
            started = time.perf_counter()
            rate, non_200 = closed_loop(procs, port, phase, clients, env, use_wrk)
            wall += time.perf_counter() - started
            answered += phase.count
            result.saturated_runs.append(rate)
            result.saturated_non_200 += non_200
            result.worker_cpu_shares.append(_worker_shares(server.pid, workers_before))
        gunicorn_s, redis_s, loadgen_s, tasks_s, irq_s, steal_s = (b - a for a, b in zip(before, cpu(), strict=True))
        ours = {server.pid, redis_pid or -1}  # wrk and loadgen ran and were reaped: they are not listed
        result.busiest_others = [(name, seconds * 1000 / sum(p.count for p in saturate))
                                 for name, seconds in busiest_others(everyone, cpu_by_process(), ours)]
        result.saturated_per_s = statistics.median(result.saturated_runs)
        per_request = 1000 / answered
        mine = gunicorn_s + redis_s + loadgen_s
        result.cpu_ms_per_request = {
            "gunicorn": gunicorn_s * per_request, "redis": redis_s * per_request,
            "load generator": loadgen_s * per_request,
            "kernel irq/softirq": irq_s * per_request,
            "other processes": max(0.0, tasks_s - mine) * per_request,
            "hypervisor steal": steal_s * per_request,
            "idle": max(0.0, CORES * wall - tasks_s - irq_s - steal_s) * per_request,
        }
        half = open_rate or result.saturated_per_s / 2
        count = max(OPEN_LOOP_MIN_REQUESTS, min(latency.count, int(half * OPEN_LOOP_MAX_SECONDS)))
        workers_before = cpu_seconds_by_pid(server.pid)
        result.open = _loadgen(procs, port, Phase(latency.file, count), env, "open", "--rate", f"{half:.1f}")
        result.open_worker_shares = _worker_shares(server.pid, workers_before)
    finally:
        procs.stop(server)
    if server.returncode not in (0, -15):
        print(f"  note: {name} gunicorn exited with {server.returncode}; see {log}", file=sys.stderr)
    return result


def _worker_shares(master: int, before: dict[int, float]) -> list[float]:
    """Each gunicorn worker's share of the workers' CPU since ``before``, largest first."""
    spent = {pid: seconds - before.get(pid, 0.0) for pid, seconds in cpu_seconds_by_pid(master).items()
             if pid != master}
    total = sum(spent.values()) or 1.0
    return sorted((seconds / total for seconds in spent.values()), reverse=True)


def _redis_cpu(pid: int | None) -> float:
    return cpu_seconds_of_group(pid) if pid else 0.0
