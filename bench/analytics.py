"""Learning analytics benchmark: each analytics page's server time with 100,000 learners, and the webhook's
acknowledgements with event recording on and off, in the same run.

Run: ``.venv/bin/python bench/analytics.py`` (about three minutes on 2 cores; ``--learners N``, ``--skip-webhook``,
``--postgres URL`` to time the pages on PostgreSQL too). Loopback only; it stops everything it started.

1. **Pages.** A store is generated directly (rows, not events: folding a million events is not what is
   measured here) for ``--learners`` learners on the shipped course: channels and languages, first seen over
   90 days, the first three modules walked step by step with drop-off, quiz and check-up answers driven by
   each learner's ability (so discrimination means something) plus one deliberately broken item, check-up
   results with areas, levels and plans, opt-outs, entry-link sources and campaigns, and 90 days of sends,
   failures and priced statuses. Each page (and each of its CSV downloads) is requested through the real
   Blueprint in-process (Flask's test client: routing, queries, SVG, Jinja), ``REPEATS`` times; the table
   shows the first (cold: the flow diagram's Graphviz layout, SQLite's page cache) and the median.
2. **Webhook in-process**: the same signed messages posted through Flask's test client to two apps, recording
   off and on, interleaved: CPU per message, Redis round trips and commands per message (the steady figures).
3. **Webhook over HTTP.** ``bench/webhook_bench.py``'s load (``bench/traffic.py``: signed WhatsApp webhooks, 500
   learners walking module 1; ``bench/http_targets.measure``: warm-up, closed loop with 16 connections,
   then an open loop at the same ``--open-rate`` for both) against the Procfile's ``web:`` line with ``ANALYTICS=0``
   and ``ANALYTICS=1``, alternated (off, on, off, on), each on its own Redis database.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import http_targets, traffic  # noqa: E402
from bench.processes import Processes  # noqa: E402
from bench.webhook_bench import web_environment, with_db  # noqa: E402
from bot.analytics import pages  # noqa: E402
from bot.analytics.recording import CHECKUP_TEST, quiz_test  # noqa: E402
from bot.analytics.store import DAY_MS, AnalyticsStore, day_of, week_of  # noqa: E402
from bot.dev import embedded_redis  # noqa: E402
from bot.flows.loader import load_course  # noqa: E402
from bot.flows.spec import Course, Flow  # noqa: E402

LEARNERS = 100_000
REPEATS = 5
TARGET_MS = 1000
MODULE_START = (0.9, 0.45, 0.25)  # share of learners who start the first three modules
STEP_ON = 0.95  # at each step, the share who go on
CHECKUP_SHARE = 0.4
NOW_MS = int(time.time() * 1000)
WEBHOOK_ROUNDS = 2
WARMUP, SATURATE_RUNS, SATURATE_EACH, LATENCY = 600, 3, 1500, 1500
OPEN_RATE = 150.0  # the open loop's offered load, the same for both (half its own rate favours the slower)


# --- generating a store ---------------------------------------------------------------------------------
def path_of(flow: Flow) -> list[str]:
    """The module's steps along its first choices (the main path)."""
    steps, step = [], flow.steps[flow.start]
    for _ in range(len(flow.steps) + 1):
        steps.append(step.id)
        if step.end:
            break
        following = step.choices[0].next if step.choices else step.next or (step.branch[0].next if step.branch else "")
        if not following or following not in flow.steps:
            break
        step = flow.steps[following]
    return steps


def generate(store: AnalyticsStore, course: Course, learners: int, seed: int = 7) -> dict[str, int]:
    rng = random.Random(seed)
    modules = [course.flows[m] for m in course.modules[:3] if m in course.flows]
    paths = {flow.id: path_of(flow) for flow in modules}
    checkup = course.checkup
    rows: dict[str, list[tuple[Any, ...]]] = {name: [] for name in (
        "learners", "modules", "module_steps", "module_edges", "answers", "test_totals", "checkups",
        "checkup_areas")}
    broken = {}  # one item per module quiz that nearly everyone gets wrong (a wrong key): the flags show it
    for flow in modules:
        quiz_steps = [s for s in paths[flow.id] if flow.steps[s].quiz]
        if quiz_steps:
            broken[flow.id] = quiz_steps[-1]
    for index in range(learners):
        ref = f"{index:012x}"
        ability = rng.random()
        first = NOW_MS - int(rng.random() ** 1.5 * 90 * DAY_MS)
        last = min(NOW_MS, first + int(rng.random() * 30 * DAY_MS))
        channel = rng.choices(("whatsapp", "messenger", "instagram"), (70, 20, 10))[0]
        lang = "it" if rng.random() < 0.85 else "en"
        source, campaign = rng.choice((("", ""), ("", ""), ("wa_text", "fiera2026"), ("SHORTLINK", "volantino"),
                                       ("ad", "autunno"), ("IGME", "")))
        opted = rng.random() < 0.04
        done_first = None
        for position, flow in enumerate(modules):
            if rng.random() >= MODULE_START[position]:
                continue
            started = first + position * DAY_MS
            path = paths[flow.id]
            reached = 1
            while reached < len(path) and rng.random() < STEP_ON + ability * 0.04:
                reached += 1
            completed = reached == len(path)
            done_ms = started + reached * 60_000 if completed else None
            if completed and done_first is None:
                done_first = done_ms
            rows["modules"].append((flow.id, ref, started, done_ms, path[reached - 1]))
            previous = "start"
            total = items = 0.0
            for step_id in path[:reached]:
                rows["module_steps"].append((flow.id, step_id, ref))
                rows["module_edges"].append((flow.id, previous, step_id, ref))
                previous = step_id
                quiz = flow.steps[step_id].quiz
                if quiz and step_id != path[reached - 1]:  # answered: the learner moved past it
                    p = 0.08 if broken.get(flow.id) == step_id else 0.3 + 0.65 * ability
                    right = rng.random() < p
                    wrong = [o.id for o in quiz.options if not o.correct][:-1] or [quiz.options[0].id]
                    choice = quiz.correct_option.id if right else rng.choice(wrong)  # the last distractor: never
                    rows["answers"].append((quiz_test(flow.id), step_id, ref, choice, float(right)))
                    total += float(right)
                    items += 1
            if completed:
                rows["module_edges"].append((flow.id, previous, "end", ref))
            if items:
                rows["test_totals"].append((quiz_test(flow.id), ref, total, int(items), int(completed)))
        if checkup is not None and rng.random() < CHECKUP_SHARE:
            at = first + 2 * DAY_MS
            total = 0.0
            area_scores: dict[str, list[float]] = {}
            for question in checkup.questions:
                top = question.max_points or 1
                options = sorted(question.options, key=lambda o: o.points)
                pick = options[min(len(options) - 1, int((ability * 0.8 + rng.random() * 0.4) * len(options)))]
                if pick.not_applicable:
                    continue
                score = pick.points / top
                rows["answers"].append((CHECKUP_TEST, question.id, ref, pick.id, score))
                total += score
                area_scores.setdefault(question.area, []).append(score)
            rows["test_totals"].append((CHECKUP_TEST, ref, total, len(checkup.questions), 1))
            areas = {area: int(100 * sum(v) / len(v)) for area, v in area_scores.items()}
            percent = int(sum(areas.values()) / max(len(areas), 1))
            level = next((lv.id for lv in checkup.levels if lv.below_percent is None or percent < lv.below_percent),
                         "")
            plan = sorted(areas, key=lambda a: (areas[a], a))[:3]
            rows["checkups"].append((ref, at, percent, level, int(rng.random() < 0.1)))
            rows["checkup_areas"].extend((ref, at, area, p, int(area in plan)) for area, p in areas.items())
        rows["learners"].append((ref, channel, lang, first, day_of(first), week_of(first), source, campaign,
                                 last, int(opted), day_of(last) if opted else "", done_first))
    columns = {"learners": 12, "modules": 5, "module_steps": 3, "module_edges": 4, "answers": 5, "test_totals": 5,
               "checkups": 5, "checkup_areas": 5}
    with store.transaction() as db:
        for table, values in rows.items():
            marks = ", ".join("?" * columns[table])
            sql = store._sql(f"INSERT INTO {table} VALUES ({marks}) ON CONFLICT DO NOTHING")
            connection = db.connection
            if store.postgres:  # COPY: a million rows in seconds, not one round trip each
                with connection.cursor() as cursor, cursor.copy(f"COPY {table} FROM STDIN") as copy:
                    for value in values:
                        copy.write_row(value)
            else:
                connection.executemany(sql, values)
        deliveries = []
        for day in range(90):
            date = day_of(NOW_MS - day * DAY_MS)
            sent = int(learners * 0.05 * rng.uniform(0.5, 1.5))
            deliveries += [(date, "whatsapp", "send", 1, 0, "", "", "", "", sent),
                           (date, "whatsapp", "send", 0, 131047, "reminder", "window", "", "", sent // 200),
                           (date, "whatsapp", "send", 0, 131026, "", "", "", "", sent // 500),
                           (date, "whatsapp", "send", 1, 0, "reminder", "template", "", "", sent // 20),
                           (date, "whatsapp", "status", 1, 0, "", "", "marketing", "regular", sent // 40),
                           (date, "whatsapp", "status", 1, 0, "", "", "utility", "regular", sent // 30),
                           (date, "whatsapp", "status", 1, 0, "", "", "service", "free_customer_service", sent)]
        for row in deliveries:
            db.run("INSERT INTO delivery_daily VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", row)
    store.rebuild_counters()  # what folding keeps up event by event
    if not store.postgres:
        store.connection().execute("ANALYZE")
    else:
        with store.transaction() as db:
            db.run("ANALYZE")
    return {table: len(values) for table, values in rows.items()}


# --- timing the pages -----------------------------------------------------------------------------------
def page_paths(course: Course) -> list[str]:
    from bot.analytics.queries import tests_of

    first_module = course.modules[0]
    quiz, *_ = (test for test, _ in tests_of(course))
    return ["/analytics/", f"/analytics/funnel?module={first_module}", f"/analytics/items?test={quiz}",
            f"/analytics/items?test={CHECKUP_TEST}", "/analytics/checkup", "/analytics/delivery",
            "/analytics/cohorts"]


def time_pages(store: AnalyticsStore, course: Course) -> list[tuple[str, float, float, float, float, int]]:
    import re

    from flask import Flask

    app = Flask(__name__)
    app.register_blueprint(pages.blueprint(lambda: store, lambda view: view, course=lambda: course,
                                           now_ms=lambda: NOW_MS, prices=lambda category: 0.05),
                           url_prefix="/analytics")
    web = app.test_client()
    out = []
    for path in page_paths(course):
        times, cpu = [], []
        html = ""
        for _ in range(REPEATS):
            started, started_cpu = time.perf_counter(), time.process_time()
            answer = web.get(path)
            times.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - started_cpu) * 1000)
            assert answer.status_code == 200, (path, answer.status_code)
            html = answer.get_data(as_text=True)
        links = [link.replace("&amp;", "&") for link in re.findall(r'href="(/analytics/[a-z]+\.csv\?[^"]+)"', html)]
        csv_times = []
        for link in links:
            started = time.perf_counter()
            assert web.get(link).status_code == 200
            csv_times.append((time.perf_counter() - started) * 1000)
        out.append((path, times[0], statistics.median(times[1:]), statistics.median(cpu[1:]),
                    max(csv_times, default=0.0), len(html)))
    return out


def print_pages(title: str, figures: list[tuple[str, float, float, float, float, int]]) -> None:
    print(f"\n{title}")
    print(f"| page | first request, ms | median of {REPEATS - 1} more, ms | its CPU, ms | slowest CSV, ms | "
          f"HTML KB | < {TARGET_MS} ms |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for path, cold, warm, cpu, csv_ms, size in figures:
        ok = "yes" if max(cold, warm, csv_ms) < TARGET_MS else "NO"
        print(f"| {path} | {cold:.0f} | {warm:.0f} | {cpu:.0f} | {csv_ms:.0f} | {size / 1024:.0f} | {ok} |")


# --- the webhook, recording on and off -----------------------------------------------------------------
def webhook(workdir: Path, rounds: int = WEBHOOK_ROUNDS, open_rate: float = OPEN_RATE
            ) -> list[tuple[str, http_targets.TargetResult]]:
    server = embedded_redis.start(workdir / "redis", port=http_targets.free_port(), persist=False)
    procs = Processes()
    results = []
    try:
        files: dict[str, Path] = {}
        offset = 0
        names = [("warmup", WARMUP)] + [(f"sat{i}", SATURATE_EACH + 64) for i in range(SATURATE_RUNS)] + \
            [("latency", LATENCY)]
        for name, count in names:
            files[name] = workdir / f"{name}.txt"
            traffic.write_requests(files[name], offset, count)
            offset += count
        phases = {"warmup": http_targets.Phase(files["warmup"], WARMUP),
                  "saturate": [http_targets.Phase(files[f"sat{i}"], SATURATE_EACH) for i in range(SATURATE_RUNS)],
                  "latency": http_targets.Phase(files["latency"], LATENCY)}
        redis_pid = server.process.pid if server.process else None
        database = 0
        for round_ in range(rounds):
            for recording in ("0", "1"):
                env = web_environment(with_db(server.url, database), workdir)
                env["ANALYTICS"] = recording
                label = f"recording {'on' if recording == '1' else 'off'} (round {round_ + 1})"
                print(f"  webhook: {label}", file=sys.stderr)
                results.append((label, http_targets.measure(procs, f"full-{database}", "webhooks:create_app()",
                                                            env, workdir, clients=16, redis_pid=redis_pid,
                                                            open_rate=open_rate, **phases)))
                database += 1
    finally:
        procs.stop_all()
        server.stop()
    return results


IN_PROCESS_ROUNDS, IN_PROCESS_MESSAGES = 5, 400


def webhook_in_process(workdir: Path) -> dict[str, dict[str, float]]:
    """The webhook's request in-process (Flask's test client, no network, no load generator), recording off and
    on, interleaved: CPU ms per message (this process: the request and its Redis client; not redis-server), and
    Redis round trips and commands per message (``bench/redis_costs.round_trips``). Steadier than the HTTP rates
    on a busy machine: both settings run the same messages, alternately, in one process."""
    import redis as redis_lib

    from bench import redis_costs
    from config.settings import Settings
    from webhooks import create_app

    server = embedded_redis.start(workdir / "redis-in-process", port=http_targets.free_port(), persist=False)
    try:
        apps = {}
        for index, recording in enumerate(("off", "on")):
            env = web_environment(with_db(server.url, 4 + 2 * index), workdir)
            env.update(ANALYTICS="1" if recording == "on" else "0", LOG_LEVEL="WARNING")
            apps[recording] = create_app(Settings.from_env(env)).test_client()
        cpu = {name: 0.0 for name in apps}
        offset = 0
        for _ in range(IN_PROCESS_ROUNDS):
            bodies = list(traffic.signed_bodies(offset, IN_PROCESS_MESSAGES))
            offset += IN_PROCESS_MESSAGES
            for name, client in apps.items():
                started = time.process_time()
                redis_costs.post_all(client, bodies)
                cpu[name] += time.process_time() - started
        out = {}
        for index, recording in enumerate(apps):
            env = web_environment(with_db(server.url, 5 + 2 * index), workdir)
            env.update(ANALYTICS="1" if recording == "on" else "0", LOG_LEVEL="WARNING")
            trips = redis_costs.round_trips(create_app(Settings.from_env(env)),
                                            redis_lib.Redis.from_url(with_db(server.url, 5 + 2 * index)),
                                            IN_PROCESS_MESSAGES, traffic.LEARNERS)
            out[recording] = {"cpu_ms": cpu[recording] * 1000 / (IN_PROCESS_ROUNDS * IN_PROCESS_MESSAGES),
                              "round_trips": trips.round_trips_per_message,
                              "commands": trips.commands_per_message}
        return out
    finally:
        server.stop()


def print_in_process(figures: dict[str, dict[str, float]]) -> None:
    print(f"\nThe webhook in-process, recording off vs on ({IN_PROCESS_ROUNDS} x {IN_PROCESS_MESSAGES} messages each, "
          "interleaved)")
    print("| recording | CPU ms per message (web side) | Redis round trips per message | Redis commands per message |")
    print("|---|---:|---:|---:|")
    for name, row in figures.items():
        print(f"| {name} | {row['cpu_ms']:.2f} | {row['round_trips']:.2f} | {row['commands']:.1f} |")


def print_webhook(results: list[tuple[str, http_targets.TargetResult]], open_rate: float) -> None:
    print("\nWebhook acknowledgements, event recording off vs on (same run, alternated; no worker runs; "
          f"the open loop at {open_rate:.0f} msg/s for both)")
    print("| run | acks/s (median of runs) | runs | ack p50 ms in the open loop | p99 ms | gunicorn CPU ms/req | "
          "redis CPU ms/req | non-200 |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for label, result in results:
        runs = ", ".join(f"{rate:.0f}" for rate in result.saturated_runs)
        print(f"| {label} | {result.saturated_per_s:.0f} | {runs} | {result.open.get('p50_ms', 0):.1f} | "
              f"{result.open.get('p99_ms', 0):.1f} | {result.cpu_ms_per_request['gunicorn']:.2f} | "
              f"{result.cpu_ms_per_request['redis']:.2f} | {result.saturated_non_200} |")
    for side in ("off", "on"):
        chosen = [r for label, r in results if f"recording {side}" in label]
        print(f"recording {side}: median acks/s {statistics.median(r.saturated_per_s for r in chosen):.0f}, "
              f"median p99 {statistics.median(r.open.get('p99_ms', 0) for r in chosen):.1f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=LEARNERS)
    parser.add_argument("--skip-webhook", action="store_true")
    parser.add_argument("--in-process-only", action="store_true", help="the webhook in-process only (no HTTP runs)")
    parser.add_argument("--skip-pages", action="store_true")
    parser.add_argument("--rounds", type=int, default=WEBHOOK_ROUNDS, help="webhook rounds (off, on) to alternate")
    parser.add_argument("--open-rate", type=float, default=OPEN_RATE, help="the open loop's rate, msg/s")
    parser.add_argument("--postgres", default="", help="also time the pages on this PostgreSQL (emptied first)")
    args = parser.parse_args(argv)
    course = load_course(ROOT / "flows")
    workdir = Path(tempfile.mkdtemp(prefix="bottega-analytics-bench-"))
    print(f"# Learning analytics benchmark, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores")
    try:
        if not args.skip_pages:
            stores = [("SQLite", AnalyticsStore(f"sqlite:///{workdir / 'analytics.sqlite3'}"))]
            if args.postgres:
                stores.append(("PostgreSQL", AnalyticsStore(args.postgres)))
            for name, store in stores:
                if store.postgres:
                    with store.transaction() as db:
                        for table in ("folded", "learners", "module_steps", "module_edges", "modules", "answers",
                                      "test_totals", "checkups", "checkup_areas", "delivery_daily"):
                            db.run(f"DROP TABLE IF EXISTS {table}")
                    store.set_up()
                started = time.perf_counter()
                counts = generate(store, course, args.learners)
                took = time.perf_counter() - started
                print(f"\n{name}: generated {args.learners:,} learners in {took:.0f} s: "
                      + ", ".join(f"{table} {count:,}" for table, count in counts.items()))
                print_pages(f"Analytics pages on {name}, {args.learners:,} learners (server time, in-process)",
                            time_pages(store, course))
                store.close()
        if not args.skip_webhook:
            print_in_process(webhook_in_process(workdir))
            if not args.in_process_only:
                print_webhook(webhook(workdir, args.rounds, args.open_rate), args.open_rate)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
