"""The 30-minute digital check-up inside a turn: start, questions, clock events, result and action plan.

No I/O and no clock of its own: the time is the turn's (stamped by the dispatcher), and the clock
events (warnings, the automatic submission) are scheduled as timers that the worker's sweeper fires
back as TIMER events (``bot.delivery.timers``). Each timer carries its attempt number, so one from an old
attempt does nothing, and the dispatcher's dedup makes each fire exactly once.

Scoring: an answer marked ``not_applicable`` ("Non mi serve", practice questions only) takes its question
out of that learner's score, in its area and overall, so a business is never marked down for what it
does not need. ``percent`` (every scored question) gives the level and, per area, the action plan;
``knowledge_percent`` (the knowledge questions alone) is what the certificate's pass mark reads. The
plan names the three weakest areas, each with the module to take (the first of the area's modules the
learner has not done) and the area's one ``action`` for this week, and a button per module.

The attempt lives in ``progress.checkup`` (``bot.tutor.progress_parts.CheckupAttempt``): the attempt
number, whether it runs, its clock, the question order (shuffled reproducibly per learner and
attempt), the answers and the time spent on each, and every finished attempt's result.
"""

from __future__ import annotations

import math
import random
from typing import Any

from bot.flows.spec import Area, CheckQuestion, CheckUp
from bot.model.replies import Option
from bot.tutor.progress import Pending
from bot.tutor.progress_parts import CheckupResult
from bot.tutor.turn import Turn

PLAN_AREAS = 3  # the action plan names the three weakest areas


def running(turn: Turn) -> bool:
    """An attempt is under way — and still answerable: a published check-up that dropped one of its
    questions ends it quietly (the learner sees the menu and may start again) rather than failing."""
    if not turn.progress.checkup.running or turn.course.checkup is None:
        return False
    known = {q.id for q in turn.course.checkup.questions}
    return all(question_id in known for question_id in turn.progress.checkup.order)


def _set(turn: Turn, **changes: Any) -> None:
    turn.progress = turn.progress.with_changes(checkup=turn.progress.checkup.with_changes(**changes))


def _checkup(turn: Turn) -> CheckUp:
    assert turn.course.checkup is not None
    return turn.course.checkup


def offer(turn: Turn) -> None:
    """The learner asked for the check-up: explain it and ask to confirm (the clock starts only then)."""
    checkup = _checkup(turn)
    if running(turn):
        turn.say(turn.text("checkup_in_progress"))
        show_question(turn)
        return
    finished = turn.progress.checkup.finished_ms
    wait_ms = finished + checkup.retake_after_seconds * 1000 - turn.now_ms
    if finished and wait_ms > 0:
        turn.say(turn.text("checkup_wait", when=_hours(turn, wait_ms)))
        turn.show_menu()
        return
    turn.progress = turn.progress.with_changes(pending=Pending.CHECKUP_CONFIRM)
    turn.say(turn.fill(checkup.intro.get(turn.progress.lang)))
    turn.say(turn.text("checkup_confirm", minutes=_minutes(checkup.time_limit_seconds)), confirm_options(turn))


def confirm_options(turn: Turn) -> list[Option]:
    return [Option(id="sys:checkup:start", title=turn.text("label_start_checkup")),
            Option(id="sys:menu", title=turn.text("label_not_now"))]


def start(turn: Turn) -> None:
    checkup = _checkup(turn)
    attempt = turn.progress.checkup.attempt + 1
    order = question_order(turn.progress.learner_id, attempt, [q.id for q in checkup.questions])
    deadline = turn.now_ms + checkup.time_limit_seconds * 1000
    turn.progress = turn.progress.with_changes(pending=Pending.CHECKUP, checkup=turn.progress.checkup.with_changes(
        attempt=attempt, running=True, started_ms=turn.now_ms, deadline_ms=deadline, order=tuple(order), index=0,
        answers={}, ms={}, shown_ms=turn.now_ms))
    for seconds in checkup.warnings_seconds:
        turn.timers.append((deadline - seconds * 1000, f"checkup:{attempt}:warn:{seconds}"))
    turn.timers.append((deadline, f"checkup:{attempt}:end"))
    turn.say(turn.text("checkup_started", minutes=_minutes(checkup.time_limit_seconds)))
    show_question(turn)


def question_order(learner_id: str, attempt: int, question_ids: list[str]) -> list[str]:
    """Shuffled per learner and attempt, and the same every time it is computed for them."""
    order = list(question_ids)
    random.Random(f"{learner_id}:{attempt}").shuffle(order)
    return order


def question_options(turn: Turn) -> list[Option]:
    checkup, current = _checkup(turn), turn.progress.checkup
    question = _question(checkup, current.question_id)
    return [Option(id=f"k:{current.attempt}:{question.id}:{o.id}", title=o.label.get(turn.progress.lang))
            for o in question.options]


def show_question(turn: Turn) -> None:
    checkup, current = _checkup(turn), turn.progress.checkup
    question = _question(checkup, current.question_id)
    number, total = current.index + 1, len(current.order)
    turn.progress = turn.progress.with_changes(pending=Pending.CHECKUP)
    _set(turn, shown_ms=turn.now_ms)
    turn.say(f"({number}/{total}) {turn.fill(question.question.get(turn.progress.lang))}", question_options(turn))


def answer(turn: Turn, payload: str) -> None:
    """``k:<attempt>:<question>:<option>`` — only the question on screen counts; others are stale."""
    _, attempt, question_id, option_id = payload.split(":", 3)
    current = turn.progress.checkup
    on_screen = current.question_id if running(turn) else ""
    if int(attempt) != current.attempt or question_id != on_screen:
        turn.say(turn.text("stale_button"))
        turn.prompt()
        return
    spent = {**current.ms, question_id: turn.now_ms - current.shown_ms}
    _set(turn, answers={**current.answers, question_id: option_id}, ms=spent, index=current.index + 1)
    if turn.progress.checkup.index >= len(current.order):
        finish(turn, timed_out=False)
    else:
        show_question(turn)


def on_timer(turn: Turn, payload: str) -> None:
    """``checkup:<attempt>:warn:<seconds>`` or ``checkup:<attempt>:end``; stale attempts do nothing."""
    parts = payload.split(":")
    if len(parts) < 3 or parts[0] != "checkup" or not running(turn) \
            or int(parts[1]) != turn.progress.checkup.attempt:
        return
    current = turn.progress.checkup
    if parts[2] == "warn":
        turn.say(turn.text("checkup_warning", minutes=_minutes(int(parts[3])), answered=current.index,
                           questions=len(current.order)))
    elif parts[2] == "end":
        turn.say(turn.text("checkup_timeout"))
        finish(turn, timed_out=True)


def finish(turn: Turn, *, timed_out: bool) -> None:
    checkup, current = _checkup(turn), turn.progress.checkup
    lang = turn.progress.lang
    scored = [q for q in checkup.questions if not _not_applicable(q, current.answers.get(q.id))]
    areas = {}
    for area in checkup.areas:
        in_area = [q for q in scored if q.area == area.id]
        if in_area:  # an area whose every question was "not for me" has nothing to say about this shop
            areas[area.id] = _percent(in_area, current.answers)
    percent = _percent(scored, current.answers)
    knowledge = _percent([q for q in scored if q.kind == "knowledge"], current.answers)
    level = checkup.level_for(percent)
    result = CheckupResult(percent=percent, level=level.id, areas=areas, knowledge_percent=knowledge,
                           timed_out=timed_out, answered=len(current.answers), finished_ms=turn.now_ms)
    _set(turn, running=False, finished_ms=turn.now_ms, result=result, history=(*current.history, result))
    turn.progress = turn.progress.with_changes(pending=Pending.NONE)
    lines = [turn.text("checkup_result", percent=percent, level=level.label.get(lang))]
    knowledge_line = turn.text("checkup_knowledge_line", percent=knowledge, pass_percent=checkup.pass_percent)
    lines += [knowledge_line] if knowledge_line else []
    lines += [turn.text("checkup_area_line", area=area.title.get(lang), percent=areas[area.id])
              for area in checkup.areas if area.id in areas]
    turn.say("\n".join(lines))
    weakest = sorted((area for area in checkup.areas if area.id in areas),
                     key=lambda area: (areas[area.id], checkup.areas.index(area)))[:PLAN_AREAS]
    modules = plan_modules(turn, weakest)
    plan = [turn.text("checkup_plan_intro")]
    plan += [turn.text("checkup_plan_line", area=area.title.get(lang), percent=areas[area.id],
                       module=turn.course.flows[module].title.get(lang), action=area.action.get(lang),
                       next_step=area.action.get(lang))
             for area, module in zip(weakest, modules, strict=True)]
    options = [Option(id=f"sys:module:{module}", title=turn.course.flows[module].short_title.get(lang))
               for module in dict.fromkeys(modules)]
    turn.say("\n\n".join(plan), options)
    turn.checkup_finished = True  # the engine follows up: the certificate, if earned (bot.tutor.graduation)


def plan_modules(turn: Turn, areas: list[Area]) -> list[str]:
    """The module to take for each weak area: the first of its modules the learner has not done, one that
    no earlier line of the plan names if there is one; when all are done, the first to go over again."""
    done = set(turn.progress.modules_done)
    chosen: list[str] = []
    for area in areas:
        todo = [m for m in area.modules if m not in done]
        again = [m for m in area.modules if m not in chosen]
        chosen.append(next((m for m in todo if m not in chosen), None) or next(iter(todo + again), area.module))
    return chosen


def ask_leave(turn: Turn) -> None:
    """``menu`` (or any way out) during a running check-up: the clock keeps running — go on, or hand it in?

    Nothing else is shown meanwhile, so no other question's buttons can ever answer the check-up.
    """
    current = turn.progress.checkup
    left_ms = max(current.deadline_ms - turn.now_ms, 0)
    turn.progress = turn.progress.with_changes(pending=Pending.CHECKUP_LEAVE)
    turn.say(turn.text("checkup_leave_confirm", minutes=_minutes(left_ms // 1000), answered=current.index,
                       questions=len(current.order)), leave_options(turn))


def leave_options(turn: Turn) -> list[Option]:
    return [Option(id="sys:checkup:continue", title=turn.text("label_continue_checkup")),
            Option(id="sys:checkup:submit", title=turn.text("label_submit_checkup"))]


def leave_answered(turn: Turn, *, submit: bool) -> None:
    if not running(turn):
        turn.not_understood("stale_button")
    elif submit:
        finish(turn, timed_out=False)
    else:
        show_question(turn)


def abandon(turn: Turn) -> None:
    """End the running attempt without a result (the learner opted out): it does not count as an
    attempt and sets no retake pause; its clock events are cancelled by the caller."""
    _set(turn, running=False)
    if turn.progress.pending in (Pending.CHECKUP, Pending.CHECKUP_LEAVE, Pending.NONE):
        turn.progress = turn.progress.with_changes(pending=Pending.NONE)


def best_knowledge_percent(turn: Turn) -> int:
    """The best attempt's percent on the knowledge questions: what the certificate's pass mark reads."""
    return max((result.knowledge_percent for result in turn.progress.checkup.history), default=0)


def passed(turn: Turn) -> bool:
    checkup = turn.course.checkup
    return checkup is not None and best_knowledge_percent(turn) >= checkup.pass_percent


def _question(checkup: CheckUp, question_id: str) -> CheckQuestion:
    return next(q for q in checkup.questions if q.id == question_id)


def _points(question: CheckQuestion, option_id: str | None) -> int:
    return next((o.points for o in question.options if o.id == option_id), 0)


def _not_applicable(question: CheckQuestion, option_id: str | None) -> bool:
    """A practice answer like "Non mi serve": that question leaves this learner's score altogether."""
    return any(o.not_applicable for o in question.options if o.id == option_id)


def _percent(questions: list[CheckQuestion], answers: dict[str, str]) -> int:
    """Points got over points possible; an unanswered question (time ran out) counts 0 of its points."""
    possible = sum(q.max_points for q in questions)
    return round(100 * sum(_points(q, answers.get(q.id)) for q in questions) / possible) if possible else 0


def _minutes(seconds: int) -> str:
    minutes = seconds / 60
    return str(int(minutes)) if minutes >= 1 and minutes == int(minutes) else f"{max(minutes, 0.1):.1f}"


def _hours(turn: Turn, wait_ms: int) -> str:
    hours = math.ceil(wait_ms / 3_600_000)
    if turn.progress.lang == "it":
        return "tra 1 ora" if hours == 1 else f"tra {hours} ore"
    return "in 1 hour" if hours == 1 else f"in {hours} hours"
