"""Webhook answer times while slow clients hold connections: the old gthread set-up beside the new one.

Run: ``.venv/bin/python bench/slow_clients.py`` (``make bench-slow``; ``make bench`` runs it after the
webhook benchmark); about 70 s on 2 cores (150 s with ``--alternatives --slow 0 64 160``), loopback
only. See bench/README.md ("Slow clients").

For each set-up, the Procfile's ``web:`` line with the production environment (the old set-up is the
same line with ``-k gthread --threads 4``: what config/gunicorn.py said before, but for the heartbeat
file now in /dev/shm), and for 0 then 64 slow connections held open by this process,
``bench/loadgen.py`` sends signed webhooks at a steady rate from its own process and reports
p50/p99/max of the answer time (from each request's scheduled send time, so a stall is charged to
every request queued behind it). A slow connection
either trickles header bytes (one a second, after the request line) or, one in eight, announces a
100 KB body and sends 10 bytes of it; when the server closes one, another is opened at once, so N
stay open, and the table counts how many the server cut off. No Dramatiq worker runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(ROOT))  # this checkout's bot/, config/, webhooks.py and bench/

from bench import traffic  # noqa: E402
from bench.http_targets import web_command  # noqa: E402
from bench.processes import Processes, free_port, wait_http  # noqa: E402
from bench.webhook_bench import web_environment, with_db  # noqa: E402
from bot.dev import embedded_redis  # noqa: E402

# name -> gunicorn arguments after the Procfile's web line (command-line settings win over the file)
SETUPS = {"before: gthread 2 x 4": ["-k", "gthread", "--threads", "4"], "now: config/gunicorn.py": []}
ALTERNATIVES = {"gthread 2 x 64 threads": ["-k", "gthread", "--threads", "64"]}
SLOW_CONNECTIONS = (0, 64)
INFLATED_EVERY = 8  # one slow connection in 8 announces a body it never sends
TRICKLE_INTERVAL_SECONDS = 1.0
SETTLE_SECONDS = 2.0  # after opening the slow connections, before measuring: they hold their slots
RATE_PER_S = 50.0
REQUESTS = 600  # per measurement: 12 s at RATE_PER_S
WARMUP_REQUESTS = 200
ANSWER_TIMEOUT_SECONDS = 5.0  # a webhook unanswered this long is given up and charged 5 s
TARGET_P99_MS = 250.0
TARGET_SLOW_CONNECTIONS = 64
INFLATED_HEAD = (b"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 100000\r\n\r\n{\"object\":")
TRICKLED_HEAD = b"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "


@dataclass
class Measurement:
    setup: str
    slow: int
    open: dict
    cut_off: int = 0  # slow connections the server closed during the measurement


@dataclass
class SlowClients:
    """``count`` slow connections on an asyncio loop in a thread of this process, reopened when cut."""

    port: int
    count: int
    cut_off: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(10)

    async def _main(self) -> None:
        await asyncio.gather(*(self._hold(inflated=i % INFLATED_EVERY == INFLATED_EVERY - 1)
                               for i in range(self.count)))

    async def _hold(self, *, inflated: bool) -> None:
        while not self._stop.is_set():
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                await asyncio.sleep(TRICKLE_INTERVAL_SECONDS)
                continue
            try:
                writer.write(INFLATED_HEAD if inflated else TRICKLED_HEAD)
                while not self._stop.is_set():
                    try:
                        if not await asyncio.wait_for(reader.read(65536), TRICKLE_INTERVAL_SECONDS):
                            self.cut_off += 1  # the server closed it (an answer, if any, came first)
                            break
                    except TimeoutError:
                        if not inflated:
                            writer.write(b"x")
                            await writer.drain()
            except OSError:
                self.cut_off += 1
            finally:
                writer.close()


def open_loop(procs: Processes, port: int, file: Path, count: int, rate_per_s: float,
              env: dict[str, str]) -> dict:
    """``bench/loadgen.py open`` in its own process: its JSON result."""
    out, _ = procs.run([sys.executable, str(BENCH_DIR / "loadgen.py"), "open", "--port", str(port),
                        "--file", str(file), "--count", str(count), "--rate", str(rate_per_s),
                        "--timeout", str(ANSWER_TIMEOUT_SECONDS)], env=env, cwd=ROOT, timeout=120)
    return json.loads(out)


def measure_setup(procs: Processes, name: str, extra: list[str], env: dict[str, str], workdir: Path,
                  files: dict[str, Path], counts: tuple[int, ...]) -> list[Measurement]:
    port = free_port()
    command = " ".join([web_command("webhooks:create_app()"), *extra])
    env = {**env, "PORT": str(port)}
    log = workdir / f"{re.sub(r'[^a-z0-9]+', '_', name.lower()).strip('_')}.log"
    server = procs.start(["sh", "-c", f"exec {command}"], env=env, cwd=ROOT, log=log)
    results = []
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", server, log)
        open_loop(procs, port, files[f"{name}:warmup"], WARMUP_REQUESTS, RATE_PER_S * 2, env)
        for slow in counts:
            attackers = SlowClients(port, slow)
            attackers.start()
            try:
                time.sleep(SETTLE_SECONDS if slow else 0.0)
                cut_before = attackers.cut_off
                result = open_loop(procs, port, files[f"{name}:{slow}"], REQUESTS, RATE_PER_S, env)
                results.append(Measurement(name, slow, result, attackers.cut_off - cut_before))
            finally:
                attackers.stop()
    finally:
        procs.stop(server)
    return results


def report(results: list[Measurement], counts: tuple[int, ...], started: float) -> str:
    setups = list(dict.fromkeys(m.setup for m in results))
    width = max(26, *(len(s) + 2 for s in setups))
    lines = ["", f"Webhook answer time with slow connections open (open loop, {RATE_PER_S:.0f} signed webhooks/s, "
             f"{REQUESTS} per row; a request unanswered after {ANSWER_TIMEOUT_SECONDS:.0f} s counts as "
             f"{ANSWER_TIMEOUT_SECONDS * 1000:,.0f} ms)",
             f"  {'':<34}" + "".join(f"{s:>{width}}" for s in setups)]
    for slow in counts:
        rows = {m.setup: m for m in results if m.slow == slow}

        def row(label: str, value, rows=rows) -> str:
            return f"  {label:<34}" + "".join(f"{value(rows[s]) if s in rows else '-':>{width}}" for s in setups)

        lines.append(f"  {slow} slow connections open")
        lines.append(row("  p50 / p99 / max, ms", lambda m: "{:,.1f} / {:,.1f} / {:,.1f}".format(
            m.open["p50_ms"], m.open["p99_ms"], m.open["max_ms"])))
        lines.append(row("  answered 200 / timed out / other", lambda m: "{} / {} / {}".format(
            m.open["statuses"].get("200", 0), m.open["statuses"].get("timeout", 0),
            sum(n for k, n in m.open["statuses"].items() if k not in ("200", "timeout")))))
        if slow:
            lines.append(row("  slow connections cut off by server", lambda m: f"{m.cut_off:,}"))
    now = [m for m in results if m.setup == setups[-1] and m.slow == TARGET_SLOW_CONNECTIONS] if setups else []
    if now and "now:" in setups[-1]:
        p99 = now[0].open["p99_ms"]
        verdict = "met" if p99 < TARGET_P99_MS else "MISSED"
        lines.append(f"  target: p99 < {TARGET_P99_MS:.0f} ms with {TARGET_SLOW_CONNECTIONS} slow connections "
                     f"open (now): {p99:.1f} ms, {verdict}")
    lines.append(f"  run took {time.perf_counter() - started:.0f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alternatives", action="store_true",
                        help=f"also measure {', '.join(ALTERNATIVES)} (more slots, no deadlines)")
    parser.add_argument("--slow", type=int, nargs="+", default=list(SLOW_CONNECTIONS), metavar="N",
                        help=f"slow connection counts to measure (default: {' '.join(map(str, SLOW_CONNECTIONS))})")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (gunicorn logs)")
    args = parser.parse_args(argv)

    def stop_on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop_on_term)
    started = time.perf_counter()
    counts = tuple(args.slow)
    setups = {**SETUPS, **ALTERNATIVES} if args.alternatives else dict(SETUPS)
    setups = dict(sorted(setups.items(), key=lambda kv: kv[0].startswith("now:")))  # the new one last
    workdir = Path(tempfile.mkdtemp(prefix="bottega-slow-"))
    procs = Processes()
    server = None
    results: list[Measurement] = []
    try:
        server = embedded_redis.start(workdir / "redis", port=free_port(), persist=False)
        env = web_environment(with_db(server.url, 0), workdir)
        files, offset = {}, 0
        for name in setups:
            for part, count in (("warmup", WARMUP_REQUESTS), *((str(n), REQUESTS) for n in counts)):
                files[f"{name}:{part}"] = workdir / f"{len(files)}.txt"
                traffic.write_requests(files[f"{name}:{part}"], offset, count)  # one stream, file to file
                offset += count
        for name, extra in setups.items():
            print(f"[{time.perf_counter() - started:6.1f} s] {name}", file=sys.stderr, flush=True)
            results += measure_setup(procs, name, extra, env, workdir, files, counts)
    except KeyboardInterrupt:
        print("\ninterrupted: stopping what the benchmark started", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        if server is not None:
            server.stop()
        if args.keep:
            print(f"work directory kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(report(results, counts, started), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
