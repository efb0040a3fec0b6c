"""Each admin console page's server time with 100,000 learners (issue 11: every page under a second).

Run: ``.venv/bin/python bench/console.py [--learners 100000]`` (about a minute on 2 cores). It starts an
embedded Redis, builds the real app (``webhooks.create_app``, production settings, the console mounted),
signs an owner in through the sign-in form, and times each page through the app's WSGI interface
(Flask's test client: the server's time, without the network). Each page is timed ``REPEATS`` times;
the table shows the first (cold: e.g. the releases page's learner census) and the median.

Baseline in the same run: the same pages with no learners at all, so the table shows what the learners
cost. Learners are progress hashes written straight into Redis with a pipeline (a spread of modules,
steps, answers and finished modules, from the real course and ``Progress.to_hash``), plus an alias for
one in ten (a phone pointing at a BSUID) and a certificate for one in a hundred.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

from bot.certificates.model import Certificate, new_code, new_token  # noqa: E402
from bot.console.users import Role, Users  # noqa: E402
from bot.dev import embedded_redis  # noqa: E402
from bot.flows.loader import load_course  # noqa: E402
from bot.model.privacy import learner_ref  # noqa: E402
from bot.storage import certificate_store  # noqa: E402
from bot.storage.keys import LearnerPart, learner_key  # noqa: E402
from bot.tutor.progress import Progress  # noqa: E402
from config.settings import PROJECT_ROOT, Settings  # noqa: E402

REPEATS = 5
BATCH = 2_000
PASSWORD = "bench console password"
TARGET_MS = 1_000
TRACKED_PHONE = "393390000042"  # the learner the learner pages look at


def settings_for(url: str) -> Settings:
    return Settings.from_env({"BOTTEGA_ENV": "production", "META_APP_SECRET": "bench", "META_VERIFY_TOKEN": "bench",
                              "WHATSAPP_TOKEN": "bench", "WHATSAPP_PHONE_NUMBER_ID": "100000000000001",
                              "MESSENGER_PAGE_TOKEN": "bench", "REDIS_URL": url, "GRAPH_API_URL": "http://127.0.0.1:9",
                              "CONSOLE_SECRET_KEY": "bench-console-secret-0123456789-abcdefghij"})


def populate(client: redis.Redis, learners: int) -> float:
    """``learners`` progress hashes (and some aliases and certificates) through pipelines; seconds taken."""
    course = load_course(PROJECT_ROOT / "flows")
    modules = [course.flows[m] for m in course.modules]
    rng = random.Random(7)
    started = time.perf_counter()
    pipe = client.pipeline(transaction=False)
    for n in range(learners):
        phone = TRACKED_PHONE if n == 42 else f"3934{n:08d}"
        bsuid = f"IT.{n:020d}" if n % 10 == 0 else ""
        learner_id = f"wa:{bsuid or phone}"
        done = [m.id for m in modules[:rng.randrange(len(modules))]]
        current = modules[len(done)] if len(done) < len(modules) else None
        step = rng.choice(list(current.steps)) if current else ""
        answers = {m: {"q1": "a", "q2": "b"} for m in done}
        progress = Progress(learner_id=learner_id, channel="whatsapp", user_id=bsuid or phone, phone=phone, bsuid=bsuid,
                            name=f"Learner {n}", lang="it", lang_chosen=True, business="bakery",
                            flow=current.id if current else "", flow_version=current.version if current else 0,
                            step=step, answers=answers, modules_done=done,
                            module_scores={m: [3, 4] for m in done}, created_at_ms=1_790_000_000_000 + n,
                            updated_at_ms=1_795_000_000_000 + n, rev=rng.randrange(1, 200))
        pipe.hset(learner_key(learner_id, LearnerPart.PROGRESS), mapping=progress.to_hash())
        if bsuid:
            pipe.set(learner_key(f"wa:{phone}", LearnerPart.ALIAS), learner_id)
        if n % 100 == 0:
            certificate_store.save(client, Certificate(code=new_code(), token=new_token(), learner_id=learner_id,
                                                       name=f"Learner {n}", business_name="Forno",
                                                       issued_ms=1_795_777_200_000, score_percent=90, lang="it"))
        if len(pipe) >= BATCH:
            pipe.execute()
    pipe.execute()
    return time.perf_counter() - started


def token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token"
    return found.group(1)


def measure(client: redis.Redis, url: str) -> dict[str, tuple[float, float]]:
    """Page label -> (first ms, median ms); and the census the releases page counts in the background."""
    from webhooks import create_app

    app = create_app(settings_for(url), redis_client=client, notify=lambda learner_id: None)
    browser = app.test_client()
    if Users(client).get("olga") is None:
        Users(client).add("olga", Role.OWNER, PASSWORD)
    csrf = token(browser.get("/admin/login").get_data(as_text=True))
    signed = browser.post("/admin/login", data={"name": "olga", "password": PASSWORD, "csrf_token": csrf})
    assert signed.status_code == 303
    csrf = token(browser.get("/admin/").get_data(as_text=True))
    ref = learner_ref(f"wa:{TRACKED_PHONE}")
    exists = client.exists(learner_key(f"wa:{TRACKED_PHONE}", LearnerPart.PROGRESS))
    found = browser.post("/admin/learners", data={"q": TRACKED_PHONE, "csrf_token": csrf})
    link = found.location if found.status_code == 303 else f"/admin/learners/{ref}"  # the page's encrypted link
    started = time.perf_counter()
    browser.get("/admin/releases?count=now")  # the learner census, counted once before the pages are timed
    census_ms = (time.perf_counter() - started) * 1000
    pages: list[tuple[str, str, str, dict[str, str]]] = [
        ("sign-in page", "GET", "/admin/login", {}),
        ("home", "GET", "/admin/", {}),
        ("releases (learners per version and step)", "GET", "/admin/releases", {}),
        ("releases: diff of flows/ against live", "GET", "/admin/releases/diff", {}),
        ("learners: search form", "GET", "/admin/learners", {}),
        ("learners: look up by phone", "POST", "/admin/learners", {"q": "+39 339 000 0042", "csrf_token": csrf}),
        ("learner page (its link)", "GET", link, {}),
        ("learner page (by the logs' learner_ref: a scan)", "GET", f"/admin/learners/{ref}", {}),
        ("learner: export (JSON download)", "POST", f"{link}/export", {"csrf_token": csrf}),
        ("learner: erase confirmation", "GET", f"{link}/erase", {}),
        ("open days", "GET", "/admin/open-days", {}),
        ("open day: attendees", "GET", "/admin/open-days/od_2027_01", {}),
        ("(action) open day: announce dry run (every learner)", "POST", "/admin/open-days/od_2027_01/dry-run",
         {"csrf_token": csrf}),
        ("admins", "GET", "/admin/users", {}),
        ("audit log", "GET", "/admin/audit", {}),
    ]
    expected = {"GET": (200,), "POST": (200, 303)} if exists else {"GET": (200, 404), "POST": (200, 303, 404)}
    out = {}
    for label, method, path, data in pages:
        times = []
        for _ in range(REPEATS):
            started = time.perf_counter()
            answer = browser.open(path, method=method, data=data)
            times.append((time.perf_counter() - started) * 1000)
            assert answer.status_code in expected[method], (label, answer.status_code)
        out[label] = (times[0], statistics.median(times))
    out["(off the request path) learner census for releases"] = (census_ms, census_ms)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=100_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-console-") as work:
        server = embedded_redis.start(Path(work) / "redis", persist=False)
        try:
            empty_url = server.url
            baseline_client = redis.Redis.from_url(empty_url, db=0)
            baseline = measure(baseline_client, empty_url)
            loaded_url = re.sub(r"db=\d+", "db=2", empty_url) if "db=" in empty_url else \
                empty_url + ("&" if "?" in empty_url else "?") + "db=2"
            client = redis.Redis.from_url(loaded_url)
            seconds = populate(client, args.learners)
            keys = client.dbsize()
            loaded = measure(client, loaded_url)
        finally:
            server.stop()
    print(f"Console pages, server time in ms (Flask test client, {REPEATS} requests each; first = cold)")
    print(f"{args.learners:,} learners written in {seconds:.1f} s ({keys:,} keys); baseline: no learners, same run\n")
    print(f"{'page':<50} {'baseline first':>14} {'median':>8} {'loaded first':>13} {'median':>8}  < 1 s?")
    worst = 0.0
    for label, (first, median) in loaded.items():
        base_first, base_median = baseline[label]
        if not label.startswith("("):  # a page (the census runs off the request path; an action is no page)
            worst = max(worst, first, median)
        print(f"{label:<50} {base_first:>14.1f} {base_median:>8.1f} {first:>13.1f} {median:>8.1f}  "
              f"{'yes' if max(first, median) < TARGET_MS else 'NO'}")
    print(f"\nslowest: {worst:.0f} ms (target: every page under {TARGET_MS} ms)")
    return 0 if worst < TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
