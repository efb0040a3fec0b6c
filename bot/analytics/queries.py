"""The questions the analytics pages answer, as tables (every one downloads as CSV). Reads the store only.

Each function returns ``Table``s: a slug (the CSV's name), a title, column names and rows. The course (for a
module's steps in order, a question's options) comes from the caller; the store only knows ids.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.analytics import item_analysis
from bot.analytics.recording import CHECKUP_TEST, quiz_test
from bot.analytics.store import DAY_MS, AnalyticsStore, day_of
from bot.flows.spec import Course, Flow

ACTIVE_WINDOWS_DAYS = (1, 7, 30)
RECENT_DAYS = 30
COHORT_DAYS = (7, 14, 28)


@dataclass(frozen=True, slots=True)
class Table:
    slug: str
    title: str
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    chart: tuple[int, int] | None = None  # (label column, value column) drawn as bars above the table
    note: str = ""

    def csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(self.columns)
        writer.writerows(self.rows)
        return out.getvalue()


@dataclass(frozen=True, slots=True)
class Page:
    tables: list[Table]
    figures: list[tuple[str, str]] = field(default_factory=list)  # headline numbers: (label, value)

    def table(self, slug: str) -> Table | None:
        return next((table for table in self.tables if table.slug == slug), None)


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "–"


# --- overview --------------------------------------------------------------------------------------------
def overview(store: AnalyticsStore, now_ms: int) -> Page:
    total = store.rows("SELECT COUNT(*) FROM learners")[0][0]
    opted_out = store.rows("SELECT COUNT(*) FROM learners WHERE opted_out = 1")[0][0]
    active = [store.rows("SELECT COUNT(*) FROM learners WHERE last_ms >= ?", [now_ms - days * DAY_MS])[0][0]
              for days in ACTIVE_WINDOWS_DAYS]  # index range counts (learners_last)
    channels = store.rows("SELECT channel, lang, COUNT(*) FROM learners GROUP BY channel, lang ORDER BY 3 DESC")
    since = day_of(now_ms - (RECENT_DAYS - 1) * DAY_MS)
    new = store.rows("SELECT first_day, COUNT(*) FROM learners WHERE first_day >= ? GROUP BY first_day "
                     "ORDER BY first_day", [since])
    outs = store.rows("SELECT opted_out_day, COUNT(*) FROM learners WHERE opted_out = 1 AND opted_out_day >= ? "
                      "GROUP BY opted_out_day ORDER BY opted_out_day", [since])
    figures = [("learners", str(total)), *((f"active in {days} d", str(count))
                                           for days, count in zip(ACTIVE_WINDOWS_DAYS, active, strict=True)),
               ("opted out", f"{opted_out} ({_pct(opted_out, total)})")]
    return Page(figures=figures, tables=[
        Table("channels", "Learners by channel and language", ("channel", "language", "learners"),
              [tuple(row) for row in channels]),
        Table("active", "Active learners (wrote in the last N days)", ("days", "learners", "share"),
              [(days, count, _pct(count, total)) for days, count in zip(ACTIVE_WINDOWS_DAYS, active, strict=True)],
              chart=(0, 1)),
        Table("new", f"New learners per day (last {RECENT_DAYS} days)", ("day", "new learners"),
              [tuple(row) for row in new], chart=(0, 1)),
        Table("opt_outs", f"Opt-outs per day (last {RECENT_DAYS} days; {opted_out} opted out now)",
              ("day", "opt-outs"), [tuple(row) for row in outs], chart=(0, 1)),
    ])


# --- funnel -------------------------------------------------------------------------------------------
def funnel(store: AnalyticsStore, flow: Flow) -> tuple[Page, dict[tuple[str, str], int]]:
    """Started → each step in the module's order → completed, where learners stop, and the edges' counts."""
    started, completed = store.rows(
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN completed_ms IS NOT NULL THEN 1 ELSE 0 END), 0) FROM modules "
        "WHERE module = ?", [flow.id])[0]
    reached = dict(store.rows("SELECT step, n FROM step_counts WHERE module = ?", [flow.id]))
    stopped = dict(store.rows("SELECT last_step, COUNT(*) FROM modules WHERE module = ? AND completed_ms IS NULL "
                              "GROUP BY last_step", [flow.id]))
    edges = {(src, dst): count for src, dst, count in store.rows(
        "SELECT src, dst, n FROM edge_counts WHERE module = ? AND n > 0", [flow.id])}
    rows: list[tuple[Any, ...]] = [(0, "started", "", started, _pct(started, started), "")]
    for position, step in enumerate(flow.steps.values(), start=1):
        kind = "end" if step.end else "quiz" if step.quiz else step.kind.value
        count = reached.get(step.id, 0)
        rows.append((position, step.id, kind, count, _pct(count, started), stopped.get(step.id, 0)))
    rows.append((len(rows), "completed", "", completed, _pct(completed, started), ""))
    worst = max(((count, step) for step, count in stopped.items() if step), default=(0, ""))
    figures = [("started", str(started)), ("completed", f"{completed} ({_pct(completed, started)})"),
               ("most stop at", f"{worst[1]} ({worst[0]})" if worst[0] else "–")]
    return Page(figures=figures, tables=[
        Table("funnel", f"Funnel of {flow.id}", ("#", "step", "kind", "learners reached", "of started",
                                                  "stopped here (not completed)"), rows, chart=(1, 3)),
        Table("edges", "Moves between steps (learners)", ("from", "to", "learners"),
              sorted(((src, dst, count) for (src, dst), count in edges.items()), key=lambda row: -row[2])),
    ]), edges


# --- item analysis ---------------------------------------------------------------------------------------
def tests_of(course: Course) -> list[tuple[str, str]]:
    """(test id, title) of every test: each module's quiz, then the check-up."""
    out = [(quiz_test(flow_id), f"Quiz of {flow_id}") for flow_id in course.modules
           if flow_id in course.flows and any(step.quiz for step in course.flows[flow_id].steps.values())]
    if course.checkup is not None:
        out.append((CHECKUP_TEST, "Check-up"))
    return out


def _offered(course: Course, test: str) -> dict[str, tuple[tuple[str, ...], tuple[str, ...], str]]:
    """item -> (every option, the right ones, the item's label) from the course."""
    out: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {}
    if test == CHECKUP_TEST and course.checkup is not None:
        for question in course.checkup.questions:
            top = question.max_points
            options = tuple(o.id for o in question.options if not o.not_applicable)
            out[question.id] = (options, tuple(o.id for o in question.options if o.points == top),
                                _plain(question.question.get("it")))
        return out
    flow = course.flows.get(test.removeprefix("quiz:"))
    for step in flow.steps.values() if flow else ():
        if step.quiz:
            options = tuple(option.id for option in step.quiz.options)
            out[step.id] = (options, tuple(o.id for o in step.quiz.options if o.correct),
                            _plain(step.quiz.question.get("it")))
    return out


def _plain(text: str) -> str:
    """The first line of a question, without WhatsApp's * and _ marks, at most 80 characters."""
    line = next((line for line in text.splitlines() if line.strip()), "")
    return " ".join(line.replace("*", "").replace("_", " ").split())[:80]


def items(store: AnalyticsStore, course: Course, test: str) -> Page:
    sums = store.rows("SELECT item, n, sx, sxx, sy, syy, sxy FROM item_sums WHERE test = ?", [test])
    chosen: dict[str, dict[str, int]] = {}
    for item, choice, count in store.rows("SELECT item, choice, n FROM option_counts WHERE test = ? AND n > 0",
                                          [test]):
        chosen.setdefault(item, {})[choice] = count
    offered = _offered(course, test)
    by_item = {row[0]: item_analysis.Sums(int(row[1]), *(float(v or 0) for v in row[2:])) for row in sums}
    order = [*offered, *sorted(set(by_item) - set(offered))]
    rows: list[tuple[Any, ...]] = []
    option_rows: list[tuple[Any, ...]] = []
    for item in order:
        options, correct, label = offered.get(item, ((), (), ""))
        counts = chosen.get(item, {})
        result = item_analysis.stats(item, by_item.get(item, item_analysis.Sums(0, 0, 0, 0, 0, 0)), counts,
                                     options, correct)
        rows.append((item, label, result.attempts, _fmt(result.facility), _fmt(result.discrimination),
                     "; ".join(result.flags)))
        answered = sum(counts.values())
        for option in [*options, *sorted(set(counts) - set(options))]:
            option_rows.append((item, option, "✓" if option in correct else "", counts.get(option, 0),
                                _pct(counts.get(option, 0), answered)))
    flagged = sum(1 for row in rows if row[5])
    return Page(figures=[("items", str(len(rows))), ("flagged", str(flagged))], tables=[
        Table("items", "Items (first answers of finished attempts)", ("item", "question", "attempts",
                                                                       "facility", "discrimination", "flags"), rows),
        Table("options", "How often each option was chosen (every first answer)",
              ("item", "option", "right", "chosen", "share"), option_rows),
    ])


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


# --- check-up -------------------------------------------------------------------------------------------
def checkup(store: AnalyticsStore) -> Page:
    buckets = store.rows("SELECT (CASE WHEN percent >= 100 THEN 9 ELSE percent / 10 END) AS b, COUNT(*) "
                         "FROM checkups GROUP BY b ORDER BY b")
    areas = store.rows("SELECT area, COUNT(*), AVG(percent), "
                       + ", ".join(f"SUM(CASE WHEN percent >= {low} AND percent < {low + 25} THEN 1 ELSE 0 END)"
                                   for low in (0, 25, 50)) + ", SUM(CASE WHEN percent >= 75 THEN 1 ELSE 0 END), "
                       "SUM(in_plan) FROM checkup_areas GROUP BY area ORDER BY area")
    levels = store.rows("SELECT level, COUNT(*) FROM checkups GROUP BY level ORDER BY 2 DESC")
    total, timed_out, mean = store.rows("SELECT COUNT(*), COALESCE(SUM(timed_out), 0), AVG(percent) "
                                        "FROM checkups")[0]
    return Page(figures=[("check-ups handed in", str(total)), ("timed out", str(timed_out)),
                         ("mean score", f"{mean:.0f}%" if mean is not None else "–")], tables=[
        Table("scores", "Score distribution (every attempt)", ("score", "attempts"),
              [(f"{10 * b}–{10 * b + 9}%" if b < 9 else "90–100%", count) for b, count in buckets], chart=(0, 1)),
        Table("areas", "Per area: score distribution and how often the action plan names it",
              ("area", "attempts", "mean %", "0–24%", "25–49%", "50–74%", "75–100%", "in the plan"),
              [(row[0], row[1], round(float(row[2] or 0), 1), *row[3:]) for row in areas], chart=(0, 7)),
        Table("levels", "Levels", ("level", "attempts"), [tuple(row) for row in levels], chart=(0, 1)),
    ])


# --- delivery -------------------------------------------------------------------------------------------
def delivery(store: AnalyticsStore, now_ms: int, advice: Callable[[str, int], str],
             prices: Callable[[str], float], currency: str) -> Page:
    since = day_of(now_ms - (RECENT_DAYS - 1) * DAY_MS)
    per_day = store.rows("SELECT day, SUM(CASE WHEN ok = 1 THEN n ELSE 0 END), SUM(CASE WHEN ok = 0 THEN n ELSE 0 "
                         "END) FROM delivery_daily WHERE what = 'send' AND day >= ? GROUP BY day ORDER BY day",
                         [since])
    failures = store.rows("SELECT code, channel, what, SUM(n) FROM delivery_daily WHERE ok = 0 "
                          "GROUP BY code, channel, what ORDER BY 4 DESC")
    window = store.rows("SELECT proactive, win, SUM(CASE WHEN ok = 1 THEN n ELSE 0 END), "
                        "SUM(CASE WHEN ok = 0 THEN n ELSE 0 END) FROM delivery_daily WHERE what = 'send' "
                        "AND proactive <> '' GROUP BY proactive, win ORDER BY proactive, win")
    charged = store.rows("SELECT category, pricing, SUM(n) FROM delivery_daily WHERE what = 'status' AND ok = 1 "
                         "AND category <> '' GROUP BY category, pricing ORDER BY category, pricing")
    cost_rows = []
    total_cost = 0.0
    for category, pricing, count in charged:
        billable = pricing == "regular"
        price = prices(category) if billable else 0.0
        total_cost += price * count
        cost_rows.append((category, pricing, count, f"{price:.4f}", f"{price * count:.2f}"))
    sent = sum(row[1] or 0 for row in per_day)
    failed = sum(row[2] or 0 for row in per_day)
    return Page(figures=[(f"sent ({RECENT_DAYS} d)", str(sent)), (f"failed ({RECENT_DAYS} d)", str(failed)),
                         ("cost", f"{total_cost:.2f} {currency}")], tables=[
        Table("per_day", f"Sends per day (last {RECENT_DAYS} days)", ("day", "sent", "failed"),
              [tuple(row) for row in per_day], chart=(0, 1)),
        Table("failures", "Failures by Meta error code", ("code", "channel", "seen in", "failures", "advice"),
              [(code, channel, "send" if what == "send" else "status webhook", count, advice(channel, code))
               for code, channel, what, count in failures]),
        Table("window", "Proactive messages: inside the 24-hour window (free-form) or as a template",
              ("proactive kind", "sent as", "sent", "failed"), [tuple(row) for row in window]),
        Table("cost", f"Cost by template category (pricing on status webhooks; prices in {currency})",
              ("category", "pricing type", "delivered", "price each", "cost"), cost_rows),
    ])


# --- cohorts -------------------------------------------------------------------------------------------
def _cohort_columns() -> str:
    return ", ".join(f"SUM(CASE WHEN first_done_ms IS NOT NULL AND first_done_ms - first_ms <= {days * DAY_MS} "
                     "THEN 1 ELSE 0 END)" for days in COHORT_DAYS) + \
        ", SUM(CASE WHEN first_done_ms IS NOT NULL THEN 1 ELSE 0 END)"


def cohorts(store: AnalyticsStore) -> Page:
    weeks = store.rows(f"SELECT first_week, COUNT(*), {_cohort_columns()} FROM learners GROUP BY first_week "
                       "ORDER BY first_week")
    sources = store.rows(f"SELECT source, campaign, COUNT(*), {_cohort_columns()} FROM learners "
                         "GROUP BY source, campaign ORDER BY 3 DESC")

    def shares(count: int, done: Sequence[int]) -> tuple[str, ...]:
        return tuple(_pct(value or 0, count) for value in done)

    heads = tuple(f"module done ≤ {days} d" for days in COHORT_DAYS) + ("ever",)
    return Page(tables=[
        Table("weeks", "Cohorts by first week: share who completed a module within N days",
              ("first week", "learners", *heads), [(row[0], row[1], *shares(row[1], row[2:])) for row in weeks],
              chart=(0, 1)),
        Table("sources", "Cohorts by source (entry link) and campaign", ("source", "campaign", "learners", *heads),
              [(row[0] or "(direct)", row[1], row[2], *shares(row[2], row[3:])) for row in sources], chart=(0, 2)),
    ])
