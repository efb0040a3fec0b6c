"""The analytics store: events folded into a few tables the pages read. SQLite by default, PostgreSQL for scale.

Why SQLite by default: it is in the standard library, so ``make run`` and the tests need nothing installed or
started; one file (``var/analytics.sqlite3``) in WAL mode lets the pages read while a worker folds, and every
page's query answers in well under a second with 100,000 learners (``bench/analytics.py``). Why PostgreSQL as
the option (``ANALYTICS_URL=postgresql://...``, psycopg 3): several worker boxes folding into one store, and
a server the operators already run. The SQL is one dialect both understand (``ON CONFLICT``, ``CASE``, no
engine-specific functions); only the placeholder differs.

Folding is idempotent: every event has an id, ``folded`` remembers the ids counted (with the learner, so an
erasure removes them too), and an event whose id is there counts nothing — the stream consumer delivers at
least once. Each table keeps one row per learner and fact (a learner reaching a step, a first answer to an
item — Moodle's item analysis uses each learner's first attempt), so a redelivered or replayed fact cannot
count twice either, and ``erase`` deletes a learner from every table. Delivery figures per day are counts
that name no learner.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from bot.model.privacy import learner_ref

DAY_MS = 86_400_000

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS folded (id TEXT PRIMARY KEY, learner TEXT NOT NULL)""",
    """CREATE INDEX IF NOT EXISTS folded_learner ON folded (learner)""",
    """CREATE TABLE IF NOT EXISTS learners (
        learner TEXT PRIMARY KEY, channel TEXT NOT NULL, lang TEXT NOT NULL, first_ms BIGINT NOT NULL,
        first_day TEXT NOT NULL, first_week TEXT NOT NULL, source TEXT NOT NULL, campaign TEXT NOT NULL,
        last_ms BIGINT NOT NULL, opted_out INTEGER NOT NULL, opted_out_day TEXT NOT NULL, first_done_ms BIGINT)""",
    """CREATE INDEX IF NOT EXISTS learners_last ON learners (last_ms)""",
    # covering indexes: the overview and cohort pages read these instead of every learner's row
    """CREATE INDEX IF NOT EXISTS learners_channel ON learners (channel, lang)""",
    """CREATE INDEX IF NOT EXISTS learners_first_day ON learners (first_day)""",
    """CREATE INDEX IF NOT EXISTS learners_opted_out ON learners (opted_out, opted_out_day)""",
    """CREATE INDEX IF NOT EXISTS learners_cohort ON learners (first_week, first_ms, first_done_ms)""",
    """CREATE INDEX IF NOT EXISTS learners_source ON learners (source, campaign, first_ms, first_done_ms)""",
    """CREATE TABLE IF NOT EXISTS module_steps (
        module TEXT NOT NULL, step TEXT NOT NULL, learner TEXT NOT NULL, PRIMARY KEY (module, step, learner))""",
    """CREATE INDEX IF NOT EXISTS module_steps_learner ON module_steps (learner)""",
    """CREATE TABLE IF NOT EXISTS module_edges (
        module TEXT NOT NULL, src TEXT NOT NULL, dst TEXT NOT NULL, learner TEXT NOT NULL,
        PRIMARY KEY (module, src, dst, learner))""",
    """CREATE INDEX IF NOT EXISTS module_edges_learner ON module_edges (learner)""",
    """CREATE TABLE IF NOT EXISTS modules (
        module TEXT NOT NULL, learner TEXT NOT NULL, started_ms BIGINT NOT NULL, completed_ms BIGINT,
        last_step TEXT NOT NULL, PRIMARY KEY (module, learner))""",
    """CREATE INDEX IF NOT EXISTS modules_learner ON modules (learner)""",
    """CREATE INDEX IF NOT EXISTS modules_stops ON modules (module, completed_ms, last_step)""",  # the funnel's stops
    """CREATE TABLE IF NOT EXISTS answers (
        test TEXT NOT NULL, item TEXT NOT NULL, learner TEXT NOT NULL, choice TEXT NOT NULL,
        score DOUBLE PRECISION NOT NULL, PRIMARY KEY (test, item, learner))""",
    """CREATE INDEX IF NOT EXISTS answers_learner ON answers (learner)""",
    """CREATE TABLE IF NOT EXISTS test_totals (
        test TEXT NOT NULL, learner TEXT NOT NULL, total DOUBLE PRECISION NOT NULL, items INTEGER NOT NULL,
        finished INTEGER NOT NULL, PRIMARY KEY (test, learner))""",
    """CREATE INDEX IF NOT EXISTS test_totals_learner ON test_totals (learner)""",
    """CREATE TABLE IF NOT EXISTS checkups (
        learner TEXT NOT NULL, ms BIGINT NOT NULL, percent INTEGER NOT NULL, level TEXT NOT NULL,
        timed_out INTEGER NOT NULL, PRIMARY KEY (learner, ms))""",
    """CREATE TABLE IF NOT EXISTS checkup_areas (
        learner TEXT NOT NULL, ms BIGINT NOT NULL, area TEXT NOT NULL, percent INTEGER NOT NULL,
        in_plan INTEGER NOT NULL, PRIMARY KEY (learner, ms, area))""",
    # counters kept at fold time so the pages read a few rows, not a million (decremented by ``erase``)
    """CREATE TABLE IF NOT EXISTS step_counts (
        module TEXT NOT NULL, step TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (module, step))""",
    """CREATE TABLE IF NOT EXISTS edge_counts (
        module TEXT NOT NULL, src TEXT NOT NULL, dst TEXT NOT NULL, n INTEGER NOT NULL,
        PRIMARY KEY (module, src, dst))""",
    """CREATE TABLE IF NOT EXISTS option_counts (
        test TEXT NOT NULL, item TEXT NOT NULL, choice TEXT NOT NULL, n INTEGER NOT NULL,
        PRIMARY KEY (test, item, choice))""",
    # item analysis sums over finished attempts (bot.analytics.item_analysis): x the item score, y the rest of the
    # test; a learner's attempt is added once, when it finishes (its first answers are final then)
    """CREATE TABLE IF NOT EXISTS item_sums (
        test TEXT NOT NULL, item TEXT NOT NULL, n INTEGER NOT NULL, sx DOUBLE PRECISION NOT NULL,
        sxx DOUBLE PRECISION NOT NULL, sy DOUBLE PRECISION NOT NULL, syy DOUBLE PRECISION NOT NULL,
        sxy DOUBLE PRECISION NOT NULL, PRIMARY KEY (test, item))""",
    """CREATE INDEX IF NOT EXISTS checkup_areas_area ON checkup_areas (area, percent, in_plan)""",
    """CREATE TABLE IF NOT EXISTS delivery_daily (
        day TEXT NOT NULL, channel TEXT NOT NULL, what TEXT NOT NULL, ok INTEGER NOT NULL, code INTEGER NOT NULL,
        proactive TEXT NOT NULL, win TEXT NOT NULL, category TEXT NOT NULL, pricing TEXT NOT NULL,
        n INTEGER NOT NULL, PRIMARY KEY (day, channel, what, ok, code, proactive, win, category, pricing))""",
)

COUNTER_TABLES = ("step_counts", "edge_counts", "option_counts", "item_sums")

# Every table that names a learner, for ``erase`` (bot/privacy's registry of data holders calls it).
LEARNER_TABLES = ("folded", "learners", "module_steps", "module_edges", "modules", "answers", "test_totals",
                  "checkups", "checkup_areas")


class Connection(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...

    def close(self) -> None: ...


def day_of(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).date().isoformat()


def week_of(ms: int) -> str:
    """The Monday of the ISO week ``ms`` falls in (``2026-11-30``)."""
    day = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).date()
    return (day - dt.timedelta(days=day.weekday())).isoformat()


class AnalyticsStore:
    """One analytics database: ``sqlite:///path`` (or a bare path), or ``postgresql://...``."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.postgres = url.startswith(("postgresql://", "postgres://"))
        self._local = threading.local()
        self._set_up = False

    @classmethod
    def for_settings(cls, analytics_url: str, var_dir: Path) -> AnalyticsStore:
        return cls(analytics_url or f"sqlite:///{var_dir / 'analytics.sqlite3'}")

    # --- connections -----------------------------------------------------------------------------
    def _connect(self) -> Connection:
        if self.postgres:
            import psycopg  # the option for scale: only a deployment that names PostgreSQL needs it

            return psycopg.connect(self.url)
        path = self.url.removeprefix("sqlite:///").removeprefix("sqlite://")
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(path, timeout=30.0, isolation_level="DEFERRED")
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        return connection

    def connection(self) -> Connection:
        """This thread's connection (sqlite3 and psycopg connections are not shared across threads)."""
        current = getattr(self._local, "connection", None)
        if current is None:
            current = self._local.connection = self._connect()
            if not self._set_up:
                self.set_up(current)
        return current

    def close(self) -> None:
        current = getattr(self._local, "connection", None)
        if current is not None:
            current.close()
            self._local.connection = None

    def set_up(self, connection: Connection | None = None) -> None:
        connection = connection or self.connection()
        for statement in SCHEMA:
            connection.execute(statement)
        connection.commit()
        self._set_up = True

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.postgres else sql

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows of a read query (``?`` placeholders in either engine)."""
        connection = self.connection()
        try:
            return list(connection.execute(self._sql(sql), params).fetchall())
        finally:
            connection.rollback()  # end the read transaction: the next read sees what was folded since

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Any]:
        connection = self.connection()
        try:
            yield _Writer(connection, self._sql)
            connection.commit()
        except BaseException:
            connection.rollback()
            raise

    # --- folding ---------------------------------------------------------------------------------
    def fold(self, events: Iterable[dict[str, Any]]) -> int:
        """Fold ``events`` in one transaction; the number that counted (an id folded before counts nothing)."""
        counted = 0
        with self.transaction() as db:
            for event in events:
                if _fold_one(db, event):
                    counted += 1
        return counted

    def rebuild_counters(self) -> None:
        """Recompute every counter from the rows (after loading rows directly, or to check the fold's)."""
        with self.transaction() as db:
            for table in COUNTER_TABLES:
                db.run(f"DELETE FROM {table}")
            db.run("INSERT INTO step_counts (module, step, n) SELECT module, step, COUNT(*) FROM module_steps "
                   "GROUP BY module, step")
            db.run("INSERT INTO edge_counts (module, src, dst, n) SELECT module, src, dst, COUNT(*) FROM module_edges "
                   "GROUP BY module, src, dst")
            db.run("INSERT INTO option_counts (test, item, choice, n) SELECT test, item, choice, COUNT(*) FROM answers "
                   "GROUP BY test, item, choice")
            db.run("INSERT INTO item_sums (test, item, n, sx, sxx, sy, syy, sxy) "
                   "SELECT a.test, a.item, COUNT(*), SUM(a.score), SUM(a.score * a.score), SUM(t.total - a.score), "
                   "SUM((t.total - a.score) * (t.total - a.score)), SUM(a.score * (t.total - a.score)) "
                   "FROM answers a JOIN test_totals t ON t.test = a.test AND t.learner = a.learner "
                   "WHERE t.finished = 1 GROUP BY a.test, a.item")

    def export(self, learner_id: str) -> dict[str, list[dict[str, Any]]]:
        """Every row naming ``learner_id`` (by its ``learner_ref``), table by table (the counters name nobody)."""
        ref = learner_ref(learner_id)
        out: dict[str, list[dict[str, Any]]] = {}
        connection = self.connection()
        try:
            for table in LEARNER_TABLES:
                cursor = connection.execute(self._sql(f"SELECT * FROM {table} WHERE learner = ?"), (ref,))
                names = [column[0] for column in cursor.description]
                rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
                if rows:
                    out[table] = rows
        finally:
            connection.rollback()
        return out

    def erase(self, learner_id: str) -> int:
        """Delete every row naming ``learner_id`` (by its ``learner_ref``); the rows deleted."""
        ref = learner_ref(learner_id)
        deleted = 0
        with self.transaction() as db:
            for (test,) in db.connection.execute(self._sql(
                    "SELECT test FROM test_totals WHERE learner = ? AND finished = 1"), (ref,)).fetchall():
                _add_attempt(db, test, ref, -1)
            for counter, source, columns in (("step_counts", "module_steps", ("module", "step")),
                                             ("edge_counts", "module_edges", ("module", "src", "dst")),
                                             ("option_counts", "answers", ("test", "item", "choice"))):
                for key in db.connection.execute(self._sql(
                        f"SELECT {', '.join(columns)} FROM {source} WHERE learner = ?"), (ref,)).fetchall():
                    _count(db, counter, columns, tuple(key), -1)
            for table in LEARNER_TABLES:
                deleted += db.run(f"DELETE FROM {table} WHERE learner = ?", (ref,))
        return deleted


class _Writer:
    def __init__(self, connection: Connection, sql: Any) -> None:
        self.connection = connection
        self.sql = sql

    def run(self, sql: str, params: Sequence[Any] = ()) -> int:
        cursor = self.connection.execute(self.sql(sql), params)
        return int(cursor.rowcount or 0)


def _fold_one(db: _Writer, event: dict[str, Any]) -> bool:
    ident, learner = str(event.get("id", "")), str(event.get("l", ""))
    if not ident or not learner:
        return False
    if db.run("INSERT INTO folded (id, learner) VALUES (?, ?) ON CONFLICT DO NOTHING", (ident, learner)) != 1:
        return False
    kind = event.get("k")
    if kind == "turn":
        _fold_turn(db, learner, event)
    elif kind in ("send", "status"):
        _fold_delivery(db, event)
    return True


def _fold_turn(db: _Writer, learner: str, event: dict[str, Any]) -> None:
    ms = int(event.get("ms") or 0)
    new = event.get("new") if isinstance(event.get("new"), dict) else None
    source = str(new.get("src") or "") if new else ""
    campaign = str(new.get("camp") or "") if new else ""
    active_ms = ms if event.get("a") else 0
    db.run("""INSERT INTO learners (learner, channel, lang, first_ms, first_day, first_week, source, campaign,
                                    last_ms, opted_out, opted_out_day)
              VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, '')
              ON CONFLICT (learner) DO UPDATE SET channel = excluded.channel, lang = excluded.lang,
                last_ms = CASE WHEN excluded.last_ms > learners.last_ms THEN excluded.last_ms ELSE learners.last_ms END,
                source = CASE WHEN learners.source = '' THEN excluded.source ELSE learners.source END,
                campaign = CASE WHEN learners.campaign = '' THEN excluded.campaign ELSE learners.campaign END,
                first_ms = CASE WHEN excluded.first_ms < learners.first_ms THEN excluded.first_ms
                           ELSE learners.first_ms END,
                first_day = CASE WHEN excluded.first_ms < learners.first_ms THEN excluded.first_day
                            ELSE learners.first_day END,
                first_week = CASE WHEN excluded.first_ms < learners.first_ms THEN excluded.first_week
                             ELSE learners.first_week END""",
           (learner, str(event.get("ch", "")), str(event.get("lg", "")), ms, day_of(ms), week_of(ms), source,
            campaign, active_ms))
    move = event.get("mv")
    if isinstance(move, list) and len(move) == 3:
        module, src, dst = (str(part) for part in move)
        db.run("""INSERT INTO modules (module, learner, started_ms, completed_ms, last_step) VALUES (?, ?, ?, NULL, ?)
                  ON CONFLICT (module, learner) DO UPDATE SET last_step = CASE WHEN excluded.last_step = ''
                  THEN modules.last_step ELSE excluded.last_step END""", (module, learner, ms, dst))
        if dst and db.run("INSERT INTO module_steps (module, step, learner) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                          (module, dst, learner)) == 1:
            _count(db, "step_counts", ("module", "step"), (module, dst), 1)
        edge = (module, src or "start", dst or "end")
        if db.run("INSERT INTO module_edges (module, src, dst, learner) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                  (*edge, learner)) == 1:
            _count(db, "edge_counts", ("module", "src", "dst"), edge, 1)
    for answer in event.get("ans") or ():
        if not (isinstance(answer, list) and len(answer) == 4):
            continue
        test, item, choice, score = str(answer[0]), str(answer[1]), str(answer[2]), float(answer[3])
        if db.run("""INSERT INTO answers (test, item, learner, choice, score) VALUES (?, ?, ?, ?, ?)
                     ON CONFLICT DO NOTHING""", (test, item, learner, choice, score)) == 1:
            _count(db, "option_counts", ("test", "item", "choice"), (test, item, choice), 1)
            db.run("""INSERT INTO test_totals (test, learner, total, items, finished) VALUES (?, ?, ?, 1, 0)
                      ON CONFLICT (test, learner) DO UPDATE SET total = test_totals.total + excluded.total,
                      items = test_totals.items + 1""", (test, learner, score))
    done = event.get("done")
    if isinstance(done, str) and done:
        db.run("""INSERT INTO modules (module, learner, started_ms, completed_ms, last_step) VALUES (?, ?, ?, ?, '')
                  ON CONFLICT (module, learner) DO UPDATE SET completed_ms = CASE WHEN modules.completed_ms IS NULL
                  THEN excluded.completed_ms ELSE modules.completed_ms END""", (done, learner, ms, ms))
        db.run("""UPDATE learners SET first_done_ms = ? WHERE learner = ? AND first_done_ms IS NULL""", (ms, learner))
        _finish(db, f"quiz:{done}", learner)
    result = event.get("cu")
    if isinstance(result, dict):
        _fold_checkup(db, learner, ms, result)
    consent = event.get("oo")
    if consent in ("out", "in"):
        db.run("UPDATE learners SET opted_out = ?, opted_out_day = ? WHERE learner = ?",
               (int(consent == "out"), day_of(ms) if consent == "out" else "", learner))


def _count(db: _Writer, table: str, columns: tuple[str, ...], key: tuple[Any, ...], delta: int) -> None:
    names = ", ".join(columns)
    db.run(f"INSERT INTO {table} ({names}, n) VALUES ({', '.join('?' * len(columns))}, ?) "
           f"ON CONFLICT ({names}) DO UPDATE SET n = {table}.n + excluded.n", (*key, delta))


def _finish(db: _Writer, test: str, learner: str) -> None:
    """The learner's attempt at ``test`` is finished: add it to the item sums, once."""
    if db.run("UPDATE test_totals SET finished = 1 WHERE test = ? AND learner = ? AND finished = 0",
              (test, learner)) == 1:
        _add_attempt(db, test, learner, 1)


def _add_attempt(db: _Writer, test: str, learner: str, sign: int) -> None:
    """Add (``sign`` 1) or take back (-1) one finished attempt's contribution to ``item_sums``."""
    rows = db.connection.execute(db.sql("SELECT item, score FROM answers WHERE test = ? AND learner = ?"),
                                 (test, learner)).fetchall()
    total = sum(float(score) for _, score in rows)
    for item, score in rows:
        x = float(score)
        y = total - x
        db.run("""INSERT INTO item_sums (test, item, n, sx, sxx, sy, syy, sxy) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                  ON CONFLICT (test, item) DO UPDATE SET n = item_sums.n + excluded.n, sx = item_sums.sx + excluded.sx,
                  sxx = item_sums.sxx + excluded.sxx, sy = item_sums.sy + excluded.sy,
                  syy = item_sums.syy + excluded.syy, sxy = item_sums.sxy + excluded.sxy""",
               (test, item, sign, sign * x, sign * x * x, sign * y, sign * y * y, sign * x * y))


def _fold_checkup(db: _Writer, learner: str, ms: int, result: dict[str, Any]) -> None:
    if db.run("""INSERT INTO checkups (learner, ms, percent, level, timed_out) VALUES (?, ?, ?, ?, ?)
                 ON CONFLICT DO NOTHING""", (learner, ms, int(result.get("p") or 0), str(result.get("lv") or ""),
                                             int(result.get("to") or 0))) != 1:
        return
    plan = {str(area) for area in result.get("plan") or ()}
    areas = result.get("ar")
    areas = areas if isinstance(areas, dict) else {}
    for area, percent in areas.items():
        db.run("""INSERT INTO checkup_areas (learner, ms, area, percent, in_plan) VALUES (?, ?, ?, ?, ?)
                  ON CONFLICT DO NOTHING""", (learner, ms, str(area), int(percent), int(area in plan)))
    _finish(db, "checkup", learner)


def _fold_delivery(db: _Writer, event: dict[str, Any]) -> None:
    ms = int(event.get("ms") or 0)
    what = str(event.get("k"))
    ok = int(event.get("ok") or 0) if what == "send" else int(event.get("st") != "failed")
    pricing = str(event.get("pt") or "")
    db.run("""INSERT INTO delivery_daily (day, channel, what, ok, code, proactive, win, category, pricing, n)
              VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1)
              ON CONFLICT (day, channel, what, ok, code, proactive, win, category, pricing)
              DO UPDATE SET n = delivery_daily.n + 1""",
           (day_of(ms), str(event.get("ch") or ""), what, ok, int(event.get("code") or 0),
            str(event.get("pro") or ""), str(event.get("win") or ""), str(event.get("cat") or ""), pricing))


def parse(raw: bytes | str) -> dict[str, Any] | None:
    """An event from its JSON, or None when it is not one (skipped, never folded)."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
