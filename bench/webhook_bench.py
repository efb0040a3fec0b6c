"""Bottega's webhook benchmark: one run measures the full path and its baseline, and prints a table.

Run: ``.venv/bin/python bench/webhook_bench.py`` (or ``make bench``); about a minute on 2 cores,
loopback only. See bench/README.md for what each figure means and the targets.

1. An embedded Redis (``bot.dev.embedded_redis``, TCP on a free port, no persistence) for the run.
2. HTTP, over loopback, each target being the Procfile's ``web:`` command (gunicorn with
   ``-c config/gunicorn.py``): the bare endpoint ``bench.bare_app:create_app()``, then Bottega's
   ``webhooks:create_app()`` with the production environment. No Dramatiq worker runs: the web
   process enqueues real jobs and they accumulate in Redis (the Graph API is never called).
3. In-process on the same Redis (other database numbers): round trips per message, bytes per
   learner after module 1, where a request's time goes, per-message cost against flow size, and
   the stall of reaping an idle web process's broker id.
Everything started here is stopped in ``finally`` (Ctrl-C and SIGTERM included).
"""

from __future__ import annotations

import argparse
import datetime
import logging
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's bot/, config/, webhooks.py and bench/

from bench import flow_size, http_targets, idle_broker, redis_costs, stages, traffic  # noqa: E402
from bench.processes import Processes, free_port, machine_busy_seconds  # noqa: E402
from bench.report import Report  # noqa: E402
from bot.dev import embedded_redis  # noqa: E402

WARMUP_REQUESTS = 1_000
SATURATION_REQUESTS = 6_000  # in SATURATION_RUNS runs of fresh connections; the median run is reported
SATURATION_RUNS = 3
OPEN_LOOP_REQUESTS = 3_000  # at most; fewer if that would take over 20 s (http_targets)
CLIENTS = 16  # closed-loop connections: 2x the former 2 workers x 4 threads, so no server thread waited
SLACK = 64  # extra requests in a file: wrk may send up to one per connection past the count
ROUND_TRIP_MESSAGES = 1_000
PROFILED_MESSAGES = 500
MEMORY_LEARNERS = 100
# Redis databases: 0 the HTTP full path, then one per in-process measurement
DB_ROUND_TRIPS, DB_MEMORY, DB_FLOWS = 1, 2, 3


def web_environment(redis_url: str, workdir: Path) -> dict[str, str]:
    """The production environment of the web process (secrets made up for the run)."""
    env = {key: value for key, value in os.environ.items() if key not in ("BOTTEGA_FLOWS_DIR",)}
    env.update({"META_APP_SECRET": traffic.SECRET, "META_VERIFY_TOKEN": traffic.VERIFY_TOKEN,
                "WHATSAPP_TOKEN": "bench-wa-token", "WHATSAPP_PHONE_NUMBER_ID": traffic.PHONE_NUMBER_ID,
                "MESSENGER_PAGE_TOKEN": "bench-page-token", "REDIS_URL": redis_url, "BIND_HOST": "127.0.0.1",
                "BOTTEGA_ENV": "production", "GRAPH_API_URL": "http://127.0.0.1:9",
                "BOTTEGA_VAR_DIR": str(workdir / "var"),
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"})
    return env


def with_db(url: str, db: int) -> str:
    return url.rsplit("/", 1)[0] + f"/{db}"


def busy_share(seconds: float = 1.0) -> float:
    """Share of all cores busy over ``seconds`` (before we start anything): others' load."""
    before = machine_busy_seconds()
    time.sleep(seconds)
    return (machine_busy_seconds() - before) / (seconds * (os.cpu_count() or 1))


def run(server: embedded_redis.EmbeddedRedis, workdir: Path, procs: Processes, report: Report) -> None:
    files: dict[str, Path] = {}
    offset = 0
    runs = [(f"saturate{run}", SATURATION_REQUESTS // SATURATION_RUNS + SLACK) for run in range(SATURATION_RUNS)]
    for name, count in (("warmup", WARMUP_REQUESTS + SLACK), *runs, ("latency", OPEN_LOOP_REQUESTS)):
        files[name] = workdir / f"{name}.txt"
        traffic.write_requests(files[name], offset, count)  # the stream goes on from file to file
        offset += count
    env = web_environment(with_db(server.url, 0), workdir)
    phases = {"warmup": http_targets.Phase(files["warmup"], WARMUP_REQUESTS),
              "saturate": [http_targets.Phase(files[name], SATURATION_REQUESTS // SATURATION_RUNS)
                           for name, _ in runs],
              "latency": http_targets.Phase(files["latency"], OPEN_LOOP_REQUESTS)}
    redis_pid = server.process.pid if server.process else None
    targets = []
    for name, app_spec in (("bare", "bench.bare_app:create_app()"), ("full", "webhooks:create_app()")):
        report.progress(f"HTTP: {name} ({app_spec})")
        targets.append(http_targets.measure(procs, name, app_spec, env, workdir, clients=CLIENTS,
                                            redis_pid=redis_pid, **phases))
    import redis

    full_db = redis.Redis.from_url(with_db(server.url, 0))
    keys_scans = full_db.info("commandstats").get("cmdstat_keys", {}).get("calls", 0)  # bare uses no Redis
    report.http(targets, web_brokers=full_db.zcard("dramatiq:__heartbeats__"), keys_scans=keys_scans)
    in_process(server.url, workdir, env, report)


def in_process(redis_url: str, workdir: Path, env: dict[str, str], report: Report) -> None:
    os.environ.update({**env, "REDIS_URL": with_db(redis_url, DB_ROUND_TRIPS)})
    handler = logging.FileHandler(workdir / "in-process.log")  # the app's INFO lines, kept out of the table
    logging.getLogger().addHandler(handler)
    import redis

    from config.settings import Settings
    from webhooks import create_app

    report.progress("in-process: Redis round trips, profile")
    app = create_app()
    client = redis.Redis.from_url(with_db(redis_url, DB_ROUND_TRIPS))
    trips = redis_costs.round_trips(app, client, ROUND_TRIP_MESSAGES, traffic.LEARNERS)
    start = traffic.LEARNERS * 2 + ROUND_TRIP_MESSAGES  # the stream goes on where round_trips stopped
    times = stages.stage_times(app, PROFILED_MESSAGES, traffic.LEARNERS, start)
    shares = stages.profile_shares(app, PROFILED_MESSAGES, traffic.LEARNERS, start + PROFILED_MESSAGES)
    report.progress("in-process: bytes per learner")
    settings = Settings.from_env()
    memory = redis_costs.bytes_per_learner(redis.Redis.from_url(with_db(redis_url, DB_MEMORY)), settings,
                                           MEMORY_LEARNERS)
    report.redis(trips, memory)
    report.stages(times, shares)
    report.progress("in-process: per-message cost against flow size")
    figures, hot_spots = flow_size.measure(settings.flows_dir, with_db(redis_url, DB_FLOWS), workdir)
    report.flows(figures, hot_spots)
    report.progress("in-process: enqueue that reaps an idle web process's broker id")
    report.idle_broker(idle_broker.measure())  # on the send queue's database (DB_ROUND_TRIPS), emptied first
    logging.getLogger().removeHandler(handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, request files)")
    args = parser.parse_args(argv)

    def stop_on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop_on_term)
    workdir = Path(tempfile.mkdtemp(prefix="bottega-bench-"))
    procs = Processes()
    report = Report(started=datetime.datetime.now(datetime.UTC), machine=platform.machine())
    server = None
    try:
        report.header(busy_share())
        server = embedded_redis.start(workdir / "redis", port=free_port(), persist=False)
        report.redis_server(server.url)
        run(server, workdir, procs, report)
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
    report.footer()
    return 0


if __name__ == "__main__":
    sys.exit(main())
