"""Going back to a finished module ("rivedere"): the lessons again, the quiz only if the learner wants. No I/O.

Choosing a ✓ module in the menu starts it again in revisit mode (``progress.revisiting``): the
lessons come as before; at the first quiz step Bottega asks whether to redo the quiz or skip to the
end. A redone quiz starts afresh and never lowers the module's result (the better one is kept,
``bot.tutor.scoring``), and the module stays done.
"""

from __future__ import annotations

from bot.flows.spec import Flow, Step
from bot.model.replies import Option
from bot.tutor.progress import Pending
from bot.tutor.turn import Turn

LESSONS = "lessons"  # revisiting, before the quiz question was asked
QUIZ = "quiz"  # revisiting, and redoing the quiz


def start(turn: Turn, flow: Flow) -> None:
    turn.progress = turn.progress.with_changes(flow=flow.id, flow_version=flow.version, step=flow.start,
                                               pending=Pending.NONE, revisiting=LESSONS)
    turn.say(turn.text("revisit_intro", module=flow.title.get(turn.progress.lang)))
    turn.enter(flow.steps[flow.start])


def holds_quiz(turn: Turn, step: Step) -> bool:
    """At the first quiz step of a revisit, ask whether to redo the quiz; True when that took over."""
    if turn.progress.revisiting != LESSONS or not step.quiz:
        return False
    turn.progress = turn.progress.with_changes(pending=Pending.REVISIT_QUIZ, step=step.id)
    offer(turn)
    return True


def options(turn: Turn) -> list[Option]:
    return [Option(id="sys:revisit:quiz", title=turn.text("label_redo_quiz")),
            Option(id="sys:revisit:skip", title=turn.text("label_skip_quiz"))]


def offer(turn: Turn) -> None:
    turn.say(turn.text("revisit_quiz_offer"), options(turn))


def choose(turn: Turn, payload: str) -> None:
    flow, step = turn.flow(), turn.current_step()
    assert flow is not None and step is not None  # REVISIT_QUIZ is only pending on a quiz step of a module
    if payload == "sys:revisit:quiz":  # a fresh run of the quiz; the result the learner had stays until beaten
        progress = turn.progress
        turn.progress = progress.with_changes(pending=Pending.NONE, revisiting=QUIZ,
                                              answers={**progress.answers, flow.id: {}},
                                              marks={**progress.marks, flow.id: {}})
        turn.show_step(step)
        return
    turn.progress = turn.progress.with_changes(pending=Pending.NONE)
    turn.enter(next(s for s in flow.steps.values() if s.end))

