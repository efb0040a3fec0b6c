"""A module's quiz score for one learner, right across a new version published mid-module. No I/O.

Every quiz answer leaves a *mark* (``progress.marks[flow][step] = [points, out of, version]``): the
points it earned and could have earned, judged by the version of the module it was given in. The
module's score is the sum of its marks, so an answer given in version 1 is never re-judged by
version 2's key. ``progress.module_scores[flow] = [score, max]`` is what the learner is shown; its
max is the points of the questions on *their* way through the module:

* started and finished in one version: that version's ``max_score``;
* moved to a newer version mid-module (``bot.tutor.lessons.take_over``): the points of what they
  answered before the move plus those of the quiz steps the new version still has ahead of them,
  so a learner who skipped a new version's earlier question is never marked out of it, and one who
  answered an older version's extra questions never scores more than the max.

Answers stored before marks existed get theirs the first time they count, judged by the version
the learner was on when they gave them (the version on record for the module in progress, which is
what scored them then).
"""

from __future__ import annotations

from bot.flows.spec import Flow, Step
from bot.tutor.turn import Turn


def settle(turn: Turn, flow: Flow) -> None:
    """Give a mark to every answer of ``flow`` that has none, judged by ``flow`` (the version they were given in)."""
    progress = turn.progress
    marks = dict(progress.marks.get(flow.id, {}))
    for step_id, option_id in progress.answers.get(flow.id, {}).items():
        step = flow.steps.get(step_id)
        if step_id not in marks and step is not None and step.quiz is not None:
            marks[step_id] = mark(flow, step, option_id)
    if marks != progress.marks.get(flow.id, {}):
        turn.progress = progress.with_changes(marks={**progress.marks, flow.id: marks})


def mark(flow: Flow, step: Step, option_id: str) -> list[int]:
    assert step.quiz is not None
    right = step.quiz.correct_option.id == option_id
    return [step.quiz.points if right else 0, step.quiz.points, flow.version]


def record(turn: Turn, flow: Flow, step: Step, option_id: str, *, revisiting: bool) -> None:
    """The learner answered ``step``: store the answer and its mark, and the module's [score, max]."""
    settle(turn, flow)
    progress = turn.progress
    answers = {**progress.answers, flow.id: {**progress.answers.get(flow.id, {}), step.id: option_id}}
    marks = {**progress.marks, flow.id: {**progress.marks.get(flow.id, {}), step.id: mark(flow, step, option_id)}}
    turn.progress = progress = progress.with_changes(answers=answers, marks=marks)
    score = sum(points for points, _, _ in marks[flow.id].values())
    out_of = sum(possible for _, possible, _ in marks[flow.id].values())
    stored = progress.module_scores.get(flow.id)
    if revisiting:  # a redone quiz never lowers the result the learner had
        run = [score, max(flow.max_score, out_of)]
        best = run if stored is None or _better(run, stored) else list(stored)
        turn.progress = progress.with_changes(module_scores={**progress.module_scores, flow.id: best})
        return
    maximum = max(stored[1] if stored and len(stored) > 1 else flow.max_score, out_of)
    turn.progress = progress.with_changes(module_scores={**progress.module_scores, flow.id: [score, maximum]})


def _better(run: list[int], stored: list[int]) -> bool:
    """Is ``run`` a better result than ``stored``: a higher share, or as high with more points."""
    score, maximum = (stored + [0, 0])[:2]
    return run[0] * max(maximum, 1) > score * max(run[1], 1) or (
        run[0] * max(maximum, 1) == score * max(run[1], 1) and run[0] > score)


def moved(turn: Turn, old: Flow, new: Flow, step_id: str) -> None:
    """The learner moves from ``old`` to ``new`` at ``step_id`` mid-module: what is their max now?"""
    settle(turn, old)
    progress = turn.progress
    marks = progress.marks.get(new.id, {})
    ahead = reachable_quiz_points(new, step_id, skip=set(marks))
    maximum = sum(possible for _, possible, _ in marks.values()) + ahead
    if progress.revisiting:
        return  # a revisit keeps its best result; the run is scored out of the version it ends in
    score = sum(points for points, _, _ in marks.values())
    turn.progress = progress.with_changes(module_scores={**progress.module_scores, new.id: [score, maximum]})


def reachable_quiz_points(flow: Flow, step_id: str, *, skip: set[str]) -> int:
    """Points of the quiz steps reachable from ``step_id`` (itself included), except those in ``skip``."""
    seen: set[str] = set()
    points = 0
    todo = [step_id]
    while todo:
        current = todo.pop()
        step = flow.steps.get(current)
        if current in seen or step is None:
            continue
        seen.add(current)
        if step.quiz is not None and current not in skip:
            points += step.quiz.points
        todo += [way for way in (step.next, *(c.next for c in step.choices), *(b.next for b in step.branch)) if way]
    return points


def shown(turn: Turn, flow: Flow) -> tuple[int, int]:
    """The module's score and max as the learner reads them ({score}, {max_score})."""
    stored = turn.progress.module_scores.get(flow.id)
    if not stored:
        return 0, flow.max_score
    score, maximum = (list(stored) + [0, flow.max_score])[:2]
    return score, max(maximum, score)
