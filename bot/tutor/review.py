"""Questions that come back later, for memory ("ripasso"). No I/O.

Two kinds of spacing, both deterministic (a function of the learner's record and the time of their
messages, nothing random at run time):

* **The review at the next visit.** Questions a learner missed in finished modules are not asked
  again right after the quiz: they come back at the start of the learner's *next visit*, a message
  at least ``NEXT_VISIT_GAP_MS`` after the previous one (``progress.seen_ms``, kept by the engine).
  When a visit starts with missed questions due, the review is *owed* and it starts at the first
  fitting moment of that visit: a written message that is not a global word or an answer, or the
  opening of a module (which then starts after the review). At most ``REVIEW_MAX`` questions, each
  asked once; then the learner is back where they were. Global words, a running check-up and the
  name for the certificate are never interrupted.
* **One question from an earlier module in each later module's quiz.** Just before the last quiz
  question of a module, a learner who has finished other modules gets one question from one of
  them, chosen reproducibly per learner and module (``random.Random("learner:module")``) among the
  questions never mixed in before. It is not scored; its feedback teaches as in its own module.

``progress.review`` keeps the queue (``"flow:step"`` items), the missed questions already reviewed,
what comes after the queue, whether a review is owed, and which question was mixed into which module.
A queue stored by an older version (``then`` set, no ``kind``) finishes as it did then: its module starts.

Which answers were wrong comes from their marks (``bot.tutor.scoring``), judged in the version they
were given in; only a question of the module's live version is asked again. Answers stored before
marks existed count when the module's stored result matches the live version's quiz, the sign that
they were given in it.
"""

from __future__ import annotations

import random

from bot.flows.spec import Flow, Step
from bot.model.replies import Option
from bot.tutor.progress import Pending
from bot.tutor.turn import Turn

REVIEW_MAX = 3  # a short review: a shopkeeper has a minute, not ten
NEXT_VISIT_GAP_MS = 3 * 3_600_000  # a message this long after the previous one starts a new visit
VISIT = "visit"
SPACED = "spaced"


# -- which questions ----------------------------------------------------------------------------------
def missed(turn: Turn) -> list[str]:
    """Wrong answers in finished modules, in course order, not reviewed yet (live questions only)."""
    progress = turn.progress
    reviewed = set(progress.review.reviewed)
    out = []
    for flow_id in turn.course.modules:
        if flow_id not in progress.modules_done:
            continue
        flow = turn.course.flows[flow_id]
        marks = progress.marks.get(flow_id, {})
        legacy = not marks and _answers_fit(turn, flow)
        for step in flow.steps.values():
            key = f"{flow_id}:{step.id}"
            if step.quiz is None or key in reviewed:
                continue
            mark = marks.get(step.id)
            given = progress.answers.get(flow_id, {}).get(step.id)
            wrong_now = mark is not None and mark[2] == flow.version and mark[0] < mark[1]
            wrong_before = mark is None and legacy and bool(given) and given != step.quiz.correct_option.id
            if wrong_now or wrong_before:
                out.append(key)
    return out


def _answers_fit(turn: Turn, flow: Flow) -> bool:
    """Answers without marks were given in ``flow`` (the live version) if they score what was stored for it."""
    stored = turn.progress.module_scores.get(flow.id) or []
    answers = turn.progress.answers.get(flow.id, {})
    return len(stored) >= 2 and stored[1] == flow.max_score and flow.score_of(answers) == stored[0]


def spaced_question(turn: Turn, into: Flow) -> str:
    """The question from an earlier module to mix into ``into``'s quiz, or "" (reproducible per learner)."""
    progress = turn.progress
    asked = {entry.split(">", 1)[-1] for entry in progress.review.mixed}
    candidates = [f"{flow_id}:{step.id}" for flow_id in turn.course.modules
                  if flow_id in progress.modules_done and flow_id != into.id
                  for step in turn.course.flows[flow_id].steps.values()
                  if step.quiz is not None and f"{flow_id}:{step.id}" not in asked]
    if not candidates:
        return ""
    return random.Random(f"{progress.learner_id}:{into.id}").choice(candidates)


# -- when ---------------------------------------------------------------------------------------------
def note_visit(turn: Turn) -> None:
    """A learner's message: if it starts a new visit and missed questions are due, a review is owed."""
    progress = turn.progress
    if progress.seen_ms and turn.now_ms - progress.seen_ms < NEXT_VISIT_GAP_MS:
        return
    owed = bool(missed(turn))
    if owed != progress.review.owed:
        turn.progress = progress.with_changes(review=progress.review.with_changes(owed=owed))


def _may_interrupt(turn: Turn) -> bool:
    progress = turn.progress
    return progress.review.owed and progress.pending in (Pending.NONE, Pending.MENU) and not progress.checkup.running


def owed_before(turn: Turn, flow_id: str) -> bool:
    """Opening a module while a review is owed: the review first, then the module. True when it took over."""
    progress = turn.progress
    if progress.review.then == flow_id or not _may_interrupt(turn):
        return False
    return _start_visit_review(turn, then=flow_id)


def owed_now(turn: Turn) -> bool:
    """A written message (not a global word, not an answer) while a review is owed: the review first."""
    return _may_interrupt(turn) and _start_visit_review(turn, then="")


def _start_visit_review(turn: Turn, *, then: str) -> bool:
    progress = turn.progress
    queue = missed(turn)[:REVIEW_MAX]
    turn.progress = progress.with_changes(review=progress.review.with_changes(owed=False))
    if not queue:
        return False
    turn.progress = turn.progress.with_changes(pending=Pending.REVIEW, review=turn.progress.review.with_changes(
        queue=tuple(queue), then=then, kind=VISIT))
    one = len(queue) == 1
    turn.say(turn.text("review_welcome_back_one" if one else "review_welcome_back", questions=len(queue)))
    show_question(turn)
    return True


def mix_in_before(turn: Turn, flow: Flow, step: Step) -> bool:
    """Before a module's last quiz question, one question from an earlier module. True when it took over."""
    progress = turn.progress
    if step.quiz is None or progress.revisiting or progress.pending == Pending.REVIEW \
            or any(entry.split(">", 1)[0] == flow.id for entry in progress.review.mixed):
        return False
    last_quiz = [s.id for s in flow.steps.values() if s.quiz is not None][-1]
    key = spaced_question(turn, flow) if step.id == last_quiz else ""
    if not key:
        return False
    turn.progress = progress.with_changes(pending=Pending.REVIEW, step=step.id, review=progress.review.with_changes(
        queue=(key,), then="", kind=SPACED, mixed=(*progress.review.mixed, f"{flow.id}>{key}")))
    earlier = turn.course.flows[key.split(":", 1)[0]]
    turn.say(turn.text("spaced_intro", module=earlier.title.get(progress.lang)) or turn.text("review_intro_one",
                                                                                           questions=1))
    show_question(turn)
    return True


# -- asking ---------------------------------------------------------------------------------------------
def _current(turn: Turn) -> tuple[Flow, Step] | None:
    queue = turn.progress.review.queue
    if not queue:
        return None
    flow_id, step_id = queue[0].split(":", 1)
    flow = turn.course.flows.get(flow_id)
    step = flow.steps.get(step_id) if flow else None
    return (flow, step) if flow is not None and step is not None and step.quiz is not None else None


def options(turn: Turn) -> list[Option]:
    current = _current(turn)
    if current is None:
        return []
    flow, step = current
    assert step.quiz is not None
    lang = turn.progress.lang
    return [Option(id=f"r:{flow.id}:{step.id}:{o.id}", title=o.label.get(lang)) for o in step.quiz.options]


def show_question(turn: Turn) -> None:
    while turn.progress.review.queue and _current(turn) is None:  # unpublished since it was queued
        turn.progress = turn.progress.with_changes(review=turn.progress.review.with_changes(
            queue=turn.progress.review.queue[1:]))
    current = _current(turn)
    if current is None:
        _done(turn)
        return
    _, step = current
    assert step.quiz is not None
    turn.say(turn.fill(_without_heading(step.quiz.question.get(turn.progress.lang))), options(turn))


def _without_heading(question: str) -> str:
    """A question asked outside its quiz loses its heading line (``*Quiz – domanda 2 di 4*``, ``*Ripasso veloce*``)."""
    first, _, rest = question.partition("\n")
    heading = first.strip()
    if len(heading) > 2 and heading.startswith("*") and heading.endswith("*") and rest.strip():
        return rest.lstrip("\n")
    return question


def answer(turn: Turn, payload: str) -> None:
    _, flow_id, step_id, option_id = payload.split(":", 3)
    current = _current(turn)
    if current is None or (current[0].id, current[1].id) != (flow_id, step_id) or current[1].quiz is None:
        turn.say(turn.text("stale_button"))
        turn.prompt()
        return
    _, step = current
    assert step.quiz is not None
    option = next(o for o in step.quiz.options if o.id == option_id)
    prefix = turn.text("correct_prefix" if option.correct else "wrong_prefix")
    turn.say(f"{prefix} {option.feedback.get(turn.progress.lang)}")
    review = turn.progress.review
    reviewed = review.reviewed if review.kind == SPACED else (*review.reviewed, f"{flow_id}:{step_id}")
    turn.progress = turn.progress.with_changes(review=review.with_changes(queue=review.queue[1:], reviewed=reviewed))
    show_question(turn)


def _done(turn: Turn) -> None:
    review = turn.progress.review
    turn.progress = turn.progress.with_changes(pending=Pending.NONE, review=review.with_changes(queue=(), kind=""))
    if review.kind == SPACED:  # back to the module's quiz, where the mixed-in question came from
        step = turn.current_step()
        if step is not None:
            turn.show_step(step)
            return
    turn.say(turn.text("review_done"))
    if review.then:
        turn.start_module(review.then)  # "then" still names it, so no second review round starts
        turn.progress = turn.progress.with_changes(review=turn.progress.review.with_changes(then=""))
        return
    back = turn.text("review_back_to_work")
    if back:
        turn.say(back)
    turn.prompt()
