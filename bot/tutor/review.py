"""The review ("ripasso"): quiz questions a learner missed come back before their next module. No I/O.

When a learner starts a module they have not started yet and earlier modules hold questions they
answered wrong (and have not reviewed), those questions (at most ``REVIEW_MAX``) are asked again
first, with the same teaching feedback; then the module starts. ``progress.review`` keeps the
queue (``"flow:step"`` items), the questions already reviewed, and the module that waits.
"""

from __future__ import annotations

from bot.flows.spec import Flow, Step
from bot.model.replies import Option
from bot.tutor.progress import Pending
from bot.tutor.turn import Turn

REVIEW_MAX = 3  # a short review: a shopkeeper has a minute, not ten


def missed(turn: Turn) -> list[str]:
    """Wrong answers in finished modules, in course order, not reviewed yet."""
    reviewed = set(turn.progress.review.reviewed)
    out = []
    for flow_id in turn.course.modules:
        flow = turn.course.flows[flow_id]
        if flow_id not in turn.progress.modules_done:
            continue
        for step in flow.steps.values():
            given = turn.progress.answers.get(flow_id, {}).get(step.id)
            key = f"{flow_id}:{step.id}"
            if step.quiz and given and given != step.quiz.correct_option.id and key not in reviewed:
                out.append(key)
    return out


def due_before(turn: Turn, flow_id: str) -> bool:
    """Start a review before ``flow_id`` if there is one due; True when it took over the turn."""
    progress = turn.progress
    if progress.pending == Pending.REVIEW or progress.review.then == flow_id or flow_id in progress.modules_done:
        return False
    queue = missed(turn)[:REVIEW_MAX]
    if not queue:
        return False
    turn.progress = progress.with_changes(pending=Pending.REVIEW,
                                          review=progress.review.with_changes(queue=tuple(queue), then=flow_id))
    turn.say(turn.text("review_intro", questions=len(queue)))
    show_question(turn)
    return True


def _current(turn: Turn) -> tuple[Flow, Step]:
    flow_id, step_id = turn.progress.review.queue[0].split(":", 1)
    flow = turn.course.flows[flow_id]
    return flow, flow.steps[step_id]


def options(turn: Turn) -> list[Option]:
    flow, step = _current(turn)
    assert step.quiz is not None
    lang = turn.progress.lang
    return [Option(id=f"r:{flow.id}:{step.id}:{o.id}", title=o.label.get(lang)) for o in step.quiz.options]


def show_question(turn: Turn) -> None:
    _, step = _current(turn)
    assert step.quiz is not None
    turn.say(turn.fill(step.quiz.question.get(turn.progress.lang)), options(turn))


def answer(turn: Turn, payload: str) -> None:
    _, flow_id, step_id, option_id = payload.split(":", 3)
    flow, step = _current(turn)
    if (flow.id, step.id) != (flow_id, step_id) or step.quiz is None:
        turn.say(turn.text("stale_button"))
        turn.prompt()
        return
    option = next(o for o in step.quiz.options if o.id == option_id)
    prefix = turn.text("correct_prefix" if option.correct else "wrong_prefix")
    turn.say(f"{prefix} {option.feedback.get(turn.progress.lang)}")
    review = turn.progress.review
    queue, reviewed = review.queue[1:], (*review.reviewed, f"{flow_id}:{step_id}")
    turn.progress = turn.progress.with_changes(review=review.with_changes(queue=queue, reviewed=reviewed))
    if queue:
        show_question(turn)
        return
    turn.progress = turn.progress.with_changes(pending=Pending.NONE)
    turn.say(turn.text("review_done"))
    turn.start_module(review.then)  # "then" still names it, so no second review round starts
    turn.progress = turn.progress.with_changes(review=turn.progress.review.with_changes(then=""))
