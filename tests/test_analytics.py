"""Learning analytics: item analysis against a hand-computed example, idempotent folding through the real
streams, a webhook turn recorded and forwarded by the sender, erasure, and the pages with their CSV files."""

from __future__ import annotations

import csv
import io
import json
import os
import time
import uuid
from collections.abc import Iterator

import pytest
from flask import Flask

from bot import channels
from bot.analytics import pages as analytics_pages
from bot.analytics import queries
from bot.analytics.consumer import Consumer
from bot.analytics.forwarding import Forwarder
from bot.analytics.recording import Recorder
from bot.analytics.store import DAY_MS, AnalyticsStore
from bot.channels.signature import sign
from bot.channels.whatsapp import WHATSAPP
from bot.delivery import outbox
from bot.delivery.graph import GraphClient
from bot.model.privacy import learner_ref
from bot.storage.keys import LearnerPart, analytics_stream_key, learner_key
from bot.web.app import create_app

NOW = 1_790_000_000_000
QUIZ = "quiz:m1_contatto"
SECRET = "test-app-secret"  # the conftest settings' META_APP_SECRET


POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"  # our machines run one (trust auth on loopback)


def postgres_store() -> Iterator[AnalyticsStore]:
    """A store in a schema of its own on the machine's PostgreSQL, dropped afterwards."""
    import psycopg

    schema = f"analytics_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg.connect(POSTGRES, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError:
        if os.environ.get("CI"):
            raise  # CI machines have PostgreSQL: the option for scale is tested there, never skipped
        pytest.skip("no PostgreSQL on 127.0.0.1:5432")
    admin.execute(f"CREATE SCHEMA {schema}")
    analytics = AnalyticsStore(f"{POSTGRES}?options=-csearch_path%3D{schema}")
    try:
        yield analytics
    finally:
        analytics.close()
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path) -> Iterator[AnalyticsStore]:
    if request.param == "postgres":
        yield from postgres_store()
        return
    analytics = AnalyticsStore(f"sqlite:///{tmp_path / 'analytics.sqlite3'}")
    yield analytics
    analytics.close()


def turn(learner: str, rev: int, **parts) -> dict:
    return {"id": f"{learner}:{rev}", "k": "turn", "l": learner, "ms": parts.pop("ms", NOW), "ch": "whatsapp",
            "lg": "it", "a": 1, **parts}


# The example, computed by hand (Pearson's r of the item against the rest of the test, over finished attempts):
#            q1 q2 q3  total   q1: F = 4/5 = 0.80, rest = [2,1,0,1,1] -> r = 0.00
#   L1        1  1  1    3     q2: F = 3/5 = 0.60, rest = [2,1,1,0,2] -> r = -0.6 / sqrt(1.2 * 2.8) = -0.33
#   L2        1  1  0    2     q3: F = 2/5 = 0.40, rest = [2,2,1,1,1] -> r = 0.2 / sqrt(1.2 * 1.2) = 0.17
#   L3        1  0  0    1
#   L4        0  1  0    1     L6 answered q1 wrongly and never finished: counted in option frequencies only.
#   L5        1  0  1    2
MATRIX = {"L1": (1, 1, 1), "L2": (1, 1, 0), "L3": (1, 0, 0), "L4": (0, 1, 0), "L5": (1, 0, 1)}
RIGHT = {"q1": ("b", "a"), "q2": ("a", "b"), "q3": ("quick", "label")}  # item -> (right option, wrong option)


def example_events() -> list[dict]:
    events = []
    for learner, scores in MATRIX.items():
        answers = [[QUIZ, item, RIGHT[item][0] if score else RIGHT[item][1], float(score)]
                   for item, score in zip(("q1", "q2", "q3"), scores, strict=True)]
        events.append(turn(learner, 1, new={"src": "", "camp": ""}, mv=["m1_contatto", "", "intro"],
                           st="m1_contatto"))
        events.append(turn(learner, 2, ans=answers, done="m1_contatto", mv=["m1_contatto", "q4", ""]))
    events.append(turn("L6", 1, ans=[[QUIZ, "q1", "c", 0.0]], mv=["m1_contatto", "", "q1"], st="m1_contatto"))
    return events


def test_item_analysis_matches_the_hand_computed_example(store, course) -> None:
    store.fold(example_events())
    page = queries.items(store, course, QUIZ)
    rows = {row[0]: row for row in page.table("items").rows}
    assert [rows[item][2:5] for item in ("q1", "q2", "q3")] == [
        (5, "0.80", "0.00"), (5, "0.60", "-0.33"), (5, "0.40", "0.17")]
    assert "weak discrimination" in rows["q1"][5] and "weak discrimination" in rows["q2"][5]
    assert "weak discrimination" not in rows["q3"][5]
    assert "distractor nobody picks: c" in rows["q2"][5]  # q2's "c" was never chosen
    assert "distractor nobody picks" not in rows["q1"][5]  # L6 (unfinished) chose q1's "c": it counts here
    assert rows["q4"][2:5] == (0, "–", "–")
    options = {(row[0], row[1]): row[3] for row in page.table("options").rows}
    assert (options[("q1", "b")], options[("q1", "a")], options[("q1", "c")]) == (4, 1, 1)


def test_the_counters_kept_while_folding_are_the_counts_of_the_rows(store) -> None:
    from bot.analytics.store import COUNTER_TABLES

    store.fold(walk_events(30) + example_events())
    store.erase(learner_ref("wa:nobody"))
    folded = {table: sorted(store.rows(f"SELECT * FROM {table}")) for table in COUNTER_TABLES}
    store.rebuild_counters()
    rebuilt = {table: sorted(store.rows(f"SELECT * FROM {table}")) for table in COUNTER_TABLES}
    assert _rounded(folded) == _rounded(rebuilt) and rebuilt["item_sums"]


def _rounded(tables: dict) -> dict:
    return {table: [tuple(round(v, 6) if isinstance(v, float) else v for v in row) for row in rows]
            for table, rows in tables.items()}


def test_flags_too_easy_and_too_hard() -> None:
    from bot.analytics.item_analysis import Sums, stats

    easy = stats("x", Sums(n=100, sx=97, sxx=97, sy=0, syy=0, sxy=0), {"a": 97, "b": 3}, ("a", "b"), ("a",))
    hard = stats("y", Sums(n=100, sx=10, sxx=10, sy=0, syy=0, sxy=0), {"a": 10, "b": 90}, ("a", "b"), ("a",))
    assert easy.flags == ("too easy (facility > 0.95)",) and hard.flags == ("too hard (facility < 0.2)",)


def test_folding_through_the_streams_counts_a_redelivered_event_once(redis_client, store) -> None:
    recorder = Recorder(shards=4)
    forwarder = Forwarder(redis_client, recorder)
    lid = "wa:393330000001"
    ref = learner_ref(lid)
    first = json.dumps(turn(ref, 1, new={"src": "fiera", "camp": "autunno"}, mv=["m1_contatto", "", "intro"],
                            st="m1_contatto"))
    second = json.dumps(turn(ref, 2, mv=["m1_contatto", "intro", "lesson_1"]))
    events_key = learner_key(lid, LearnerPart.EVENTS)
    redis_client.rpush(events_key, first, second)
    assert forwarder.forward(lid, [first.encode(), second.encode()], []) == 2
    assert redis_client.llen(events_key) == 0
    forwarder.forward(lid, [first.encode(), second.encode()], [])  # a crash before the pop: forwarded again
    consumer = Consumer(redis_client, store, shards=4)
    assert consumer.fold_all() == 4
    assert store.fold([json.loads(first), json.loads(second)]) == 0  # and once more, straight into the store
    assert store.rows("SELECT COUNT(*) FROM learners")[0][0] == 1
    assert store.rows("SELECT source, campaign FROM learners")[0] == ("fiera", "autunno")
    assert store.rows("SELECT step, COUNT(*) FROM module_steps GROUP BY step ORDER BY step") == [
        ("intro", 1), ("lesson_1", 1)]
    stream = recorder.stream_for(lid)
    assert stream in {analytics_stream_key(shard) for shard in range(4)}
    assert redis_client.xlen(stream) == 0  # acknowledged and deleted once folded: only the store keeps them
    assert redis_client.xpending(stream, "analytics")["pending"] == 0


def test_a_forward_pops_only_what_it_forwarded(redis_client) -> None:
    forwarder = Forwarder(redis_client, Recorder(shards=2))
    lid = "wa:393330000002"
    key = learner_key(lid, LearnerPart.EVENTS)
    redis_client.rpush(key, "e1", "e2")
    forwarder.forward(lid, [b"e1", b"e2"], [])
    redis_client.rpush(key, "e3")  # arrived after another sender popped e1, e2 already
    forwarder.forward(lid, [b"e1", b"e2"], [])  # a late sender with an old read must not drop e3
    assert redis_client.lrange(key, 0, -1) == [b"e3"]


def test_erase_deletes_every_row_of_the_learner(store) -> None:
    store.fold(example_events())
    assert store.erase("L1-id-is-hashed") == 0
    from bot.analytics import store as store_module

    result = {"p": 50, "lv": "base", "ar": {"social": 50}, "plan": ["social"]}
    store.fold([turn(learner_ref("wa:393330000009"), 1, mv=["m1_contatto", "", "intro"], st="m1_contatto",
                     ans=[[QUIZ, "q1", "b", 1.0]], cu=result)])
    before = {table: sorted(store.rows(f"SELECT * FROM {table} WHERE n <> 0")) for table in ("step_counts",)}
    deleted = store.erase("wa:393330000009")
    assert deleted >= 6
    after = sorted(store.rows("SELECT * FROM step_counts WHERE n <> 0"))
    assert after != before["step_counts"]
    folded = {table: sorted(r for r in store.rows(f"SELECT * FROM {table}") if r[-1])
              for table in ("step_counts", "edge_counts", "option_counts")}
    store.rebuild_counters()
    assert folded == {table: sorted(store.rows(f"SELECT * FROM {table}"))
                      for table in ("step_counts", "edge_counts", "option_counts")}
    for table in store_module.LEARNER_TABLES:
        assert store.rows(f"SELECT COUNT(*) FROM {table} WHERE learner = ?", [learner_ref("wa:393330000009")]) \
            == [(0,)]


def walk_events(count: int) -> list[dict]:
    """A small population for the pages: every page has rows to show."""
    events = []
    for index in range(count):
        learner = f"P{index}"
        at = NOW - (index % 20) * DAY_MS
        events.append(turn(learner, 1, ms=at, new={"src": "qr" if index % 2 else "", "camp": ""},
                           mv=["m1_contatto", "", "intro"], st="m1_contatto"))
        events.append(turn(learner, 2, ms=at, mv=["m1_contatto", "intro", "lesson_1"]))
        if index % 3:
            events.append(turn(learner, 3, ms=at + 1000, ans=[[QUIZ, "q1", "b" if index % 4 else "a",
                                                                float(bool(index % 4))]],
                               done="m1_contatto", mv=["m1_contatto", "lesson_1", ""]))
        if index % 5 == 0:
            events.append(turn(learner, 4, ms=at + 2000, cu={"p": 10 * (index % 10), "lv": "base",
                                                              "ar": {"social": 40, "reviews": 70}, "plan": ["social"]},
                               ans=[["checkup", "pr1", "a", 1.0]], oo="out"))
        events.append({"id": f"send:{index}", "k": "send", "l": learner, "ms": at, "ch": "whatsapp",
                       "ok": index % 7 != 0, "code": 0 if index % 7 else 131047,
                       "pro": "reminder" if index % 2 else "", "win": "template", "tpl": "promemoria"})
        events.append({"id": f"price:{index}", "k": "status", "l": learner, "ms": at, "ch": "whatsapp",
                       "st": "delivered", "code": 0, "cat": "marketing", "pt": "regular"})
    return events


@pytest.fixture
def analytics_app(store, course) -> Flask:
    store.fold(walk_events(40))
    app = Flask(__name__)
    app.register_blueprint(analytics_pages.blueprint(lambda: store, lambda view: view, course=lambda: course,
                                                     now_ms=lambda: NOW, prices=lambda category: 0.0691),
                           url_prefix="/analytics")
    return app


@pytest.mark.parametrize("path", ["/analytics/", "/analytics/funnel?module=m1_contatto",
                                  f"/analytics/items?test={QUIZ}", "/analytics/items?test=checkup",
                                  "/analytics/checkup", "/analytics/delivery", "/analytics/cohorts"])
def test_every_page_renders_without_inline_script_or_style_and_its_tables_download_as_csv(analytics_app,
                                                                                         path) -> None:
    web = analytics_app.test_client()
    answer = web.get(path)
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    assert "<script" not in html and "style=" not in html and "<style" not in html
    assert "default-src 'none'" in answer.headers["Content-Security-Policy"]
    assert 'name="viewport"' in html
    links = [link.replace("&amp;", "&") for link in
             __import__("re").findall(r'href="(/analytics/[a-z]+\.csv\?[^"]+)"', html)]
    assert links
    for link in links:
        download = web.get(link)
        assert download.status_code == 200 and download.mimetype == "text/csv"
        rows = list(csv.reader(io.StringIO(download.get_data(as_text=True))))
        assert len(rows) >= 1 and all(len(row) == len(rows[0]) for row in rows)


def test_the_pages_answer_the_questions(analytics_app) -> None:
    web = analytics_app.test_client()
    overview = web.get("/analytics/").get_data(as_text=True)
    assert "<svg" in overview and "active in 7 d" in overview
    funnel = web.get("/analytics/funnel?module=m1_contatto").get_data(as_text=True)
    assert "n=40" in funnel  # the flow diagram: 40 learners on the edge into the intro
    rows = list(csv.reader(io.StringIO(web.get("/analytics/funnel.csv?module=m1_contatto&table=funnel")
                                       .get_data(as_text=True))))
    by_step = {row[1]: row for row in rows[1:]}
    assert by_step["started"][3] == "40" and by_step["lesson_1"][3] == "40" and by_step["completed"][3] == "26"
    assert by_step["lesson_1"][5] == "14"  # those who did not complete stopped at lesson_1
    delivery = list(csv.reader(io.StringIO(web.get("/analytics/delivery.csv?table=failures").get_data(as_text=True))))
    assert delivery[1][:4] == ["131047", "whatsapp", "send", "6"] and delivery[1][4]
    cost = list(csv.reader(io.StringIO(web.get("/analytics/delivery.csv?table=cost").get_data(as_text=True))))
    assert cost[1] == ["marketing", "regular", "40", "0.0691", "2.76"]
    assert web.get("/analytics/funnel?module=nope").status_code == 404
    assert web.get("/analytics/cohorts.csv?table=nope").status_code == 404


def test_a_webhook_turn_is_committed_with_its_event_and_forwarded_by_the_sender(settings, redis_client, fake,
                                                                                 store) -> None:
    from dataclasses import replace

    settings = replace(settings, graph_api_url=fake.url)
    woken: list[str] = []
    app = create_app(settings, redis_client=redis_client, notify=woken.append).test_client()
    parts = channels.parts_for(WHATSAPP)
    user = "393330000077"
    payload = parts.dev.text_payload("ciao", user, settings.whatsapp_phone_number_id,
                                     at_ms=int(time.time() * 1000))
    raw = json.dumps(payload).encode()
    answer = app.post("/webhook", data=raw, headers={"Content-Type": "application/json",
                                                     "X-Hub-Signature-256": sign(SECRET, raw)})
    assert answer.status_code == 200
    lid = f"wa:{user}"
    [waiting] = redis_client.lrange(learner_key(lid, LearnerPart.EVENTS), 0, -1)
    event = json.loads(waiting)
    assert event["k"] == "turn" and event["l"] == learner_ref(lid) and event["new"] == {"src": "", "camp": ""}
    assert user not in waiting.decode()  # the learner is named by their reference only
    assert woken == [lid]
    with GraphClient(settings) as graph:
        result = outbox.drain(redis_client, graph, lid, settings)
    assert result.events == (waiting,) and result.sends and all(settled.ok for settled in result.sends)
    Forwarder(redis_client, Recorder(shards=settings.analytics_shards)).forward(lid, result.events, result.sends)
    assert redis_client.llen(learner_key(lid, LearnerPart.EVENTS)) == 0
    assert Consumer(redis_client, store, shards=settings.analytics_shards).fold_all() == 1 + len(result.sends)
    assert store.rows("SELECT channel, lang FROM learners") == [("whatsapp", "it")]
    assert store.rows("SELECT SUM(n) FROM delivery_daily WHERE what = 'send' AND ok = 1") == [(len(result.sends),)]


def script_commands(client) -> int:
    """SCRIPT EXISTS / LOAD / FLUSH calls the server has run (one ``cmdstat_script`` before Redis 7, one per
    subcommand since)."""
    return sum(stats["calls"] for name, stats in client.info("commandstats").items()
               if name.startswith("cmdstat_script"))


def test_a_priced_status_webhook_goes_to_the_stream_in_the_same_round_trip(settings, redis_client) -> None:
    app = create_app(settings, redis_client=redis_client, notify=lambda lid: None).test_client()

    def status_webhook(wamid: str) -> int:
        status = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages",
                  "value": {"messaging_product": "whatsapp", "metadata": {"display_phone_number": "39000",
                                                                          "phone_number_id":
                                                                          settings.whatsapp_phone_number_id},
                            "statuses": [{"id": wamid, "status": "delivered", "timestamp": str(int(time.time())),
                                          "recipient_id": "393330000088",
                                          "pricing": {"billable": True, "pricing_model": "PMP", "type": "regular",
                                                      "category": "marketing"}}]}}]}]}
        raw = json.dumps(status).encode()
        return app.post("/webhook", data=raw, headers={"Content-Type": "application/json",
                                                       "X-Hub-Signature-256": sign(SECRET, raw)}).status_code

    assert status_webhook("wamid.WARM") == 200  # the status script is loaded now
    before = script_commands(redis_client)
    assert status_webhook("wamid.PRICED") == 200
    assert script_commands(redis_client) == before  # the script and the XADD, one round trip: no SCRIPT EXISTS first
    stream = Recorder(shards=settings.analytics_shards).stream_for("wa:393330000088")
    ids = [json.loads(fields[b"e"])["id"] for _, fields in redis_client.xrange(stream)]
    assert ids == ["price:wamid.WARM", "price:wamid.PRICED"]
    event = json.loads(redis_client.xrange(stream)[-1][1][b"e"])
    assert (event["k"], event["cat"], event["pt"]) == ("status", "marketing", "regular")
    redis_client.script_flush()  # a restarted or failed-over server: NOSCRIPT in the pipeline, answered, each once
    assert status_webhook("wamid.AFTER") == 200
    assert [json.loads(fields[b"e"])["id"] for _, fields in redis_client.xrange(stream)][2:] == ["price:wamid.AFTER"]


def test_a_forward_is_one_round_trip_and_survives_a_server_that_lost_its_scripts(redis_client) -> None:
    recorder = Recorder(shards=2)
    forwarder = Forwarder(redis_client, recorder)
    lid = "wa:393330000003"
    key = learner_key(lid, LearnerPart.EVENTS)
    forwarded: list[bytes] = []
    for n, flush in enumerate((False, False, True)):
        if flush:
            redis_client.script_flush()
        event = f"e{n}".encode()
        redis_client.rpush(key, event)
        before = script_commands(redis_client)
        assert forwarder.forward(lid, [event], []) == 1
        forwarded.append(event)
        if n == 1:  # loaded by the first forward: the second asks nothing about it
            assert script_commands(redis_client) == before
        assert redis_client.llen(key) == 0
    assert [fields[b"e"] for _, fields in redis_client.xrange(recorder.stream_for(lid))] == forwarded


def test_the_pages_live_in_the_console_for_viewers_and_erasure_reaches_the_store(settings, redis_client) -> None:
    from dataclasses import replace

    from bot import privacy
    from bot.console.users import Role, Users

    console_settings = replace(settings, console_secret_key="a-test-console-secret-of-enough-length-123")
    app = create_app(console_settings, redis_client=redis_client, notify=lambda lid: None)
    visitor = app.test_client()
    for path in ("/admin/analytics/", "/admin/analytics/funnel", "/admin/analytics/items.csv?table=items",
                 "/admin/analytics/analytics.css"):
        answer = visitor.get(path)
        assert answer.status_code == 303 and answer.location.startswith("/admin/login"), path
    Users(redis_client).add("vittoria", Role.VIEWER, "a-long-viewer-password")
    viewer = app.test_client()
    login = viewer.get("/admin/login").get_data(as_text=True)
    csrf = __import__("re").search(r'name="csrf_token" value="([^"]+)"', login).group(1)
    assert viewer.post("/admin/login", data={"name": "vittoria", "password": "a-long-viewer-password",
                                             "csrf_token": csrf}).status_code == 303
    assert 'href="/admin/analytics/"' in viewer.get("/admin/").get_data(as_text=True)  # in the console's menu
    answer = viewer.get("/admin/analytics/funnel")
    assert answer.status_code == 200 and "m1_contatto" in answer.get_data(as_text=True)
    assert 'href="/admin/"' in answer.get_data(as_text=True)  # back to the console
    assert viewer.get("/admin/analytics/analytics.css").mimetype == "text/css"
    # the store this app reads is the one the erase registry reaches
    lid = "wa:393330000066"
    store = AnalyticsStore.for_settings("", settings.var_dir)
    store.fold([turn(learner_ref(lid), 1, mv=["m1_contatto", "", "intro"], st="m1_contatto")])
    stream = Recorder(shards=settings.analytics_shards).stream_for(lid)
    redis_client.xadd(stream, {"e": json.dumps(turn(learner_ref(lid), 2))})  # not folded yet
    assert privacy.export_learner(redis_client, lid)["data"]["analytics"][lid]["learners"][0]["channel"] == "whatsapp"
    erased = privacy.erase_learner(redis_client, lid)
    assert erased.removed["analytics"] >= 4
    assert store.export(lid) == {} and redis_client.xlen(stream) == 0
    store.close()


def test_a_learner_s_events_list_is_bounded_when_nobody_forwards_it(settings, redis_client) -> None:
    from bot.storage.store import ANALYTICS_EVENTS_CAP

    app = create_app(settings, redis_client=redis_client, notify=lambda lid: None).test_client()
    parts = channels.parts_for(WHATSAPP)
    user = "393330000055"
    key = learner_key(f"wa:{user}", LearnerPart.EVENTS)
    redis_client.rpush(key, *[f"old-{n}" for n in range(ANALYTICS_EVENTS_CAP)])  # a worker without analytics
    payload = parts.dev.text_payload("ciao", user, settings.whatsapp_phone_number_id, at_ms=int(time.time() * 1000))
    raw = json.dumps(payload).encode()
    assert app.post("/webhook", data=raw, headers={"Content-Type": "application/json",
                                                   "X-Hub-Signature-256": sign(SECRET, raw)}).status_code == 200
    assert redis_client.llen(key) == ANALYTICS_EVENTS_CAP
    assert redis_client.lindex(key, 0) == b"old-1" and json.loads(redis_client.lindex(key, -1))["k"] == "turn"
