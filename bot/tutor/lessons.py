"""Walking through a module: show a step, answer it on the flow's machine, move on, finish. No I/O.

The engine (``bot.tutor.engine``) calls these for the turn's hooks (``show_step``, ``enter``,
``start_module``) and for a tap on a module's choice or quiz option (``advance``). Per-message work is
independent of the flow's size: the machines were built once, with the engine.
"""

from __future__ import annotations

from bot.flows.conditions import LearnerView
from bot.flows.machine import AUTO, UnknownTrigger
from bot.flows.spec import Flow, Step
from bot.model.replies import Media, MediaKind, Option
from bot.tutor import review, revisit, scoring
from bot.tutor.progress import Pending
from bot.tutor.turn import Turn

MAX_AUTO_STEPS = 50  # guard against a cycle of steps that move on by themselves


def step_options(turn: Turn, flow: Flow, step: Step) -> list[Option]:
    """A step's taps: quiz options or choices (``c:<module>:<step>:<id>``), or what comes after the end."""
    lang = turn.progress.lang
    if step.quiz:
        return [Option(id=f"c:{flow.id}:{step.id}:{o.id}", title=o.label.get(lang)) for o in step.quiz.options]
    if step.choices:
        return [Option(id=f"c:{flow.id}:{step.id}:{c.id}", title=c.label.get(lang)) for c in step.choices]
    if step.end:
        return after_module_options(turn)
    return []


def after_module_options(turn: Turn) -> list[Option]:
    if next_module(turn):
        return [Option(id="sys:next", title=turn.text("label_next_module")),
                Option(id="sys:menu", title=turn.text("label_menu"))]
    if turn.course.checkup:
        return [Option(id="sys:checkup", title=turn.course.checkup.short_title.get(turn.progress.lang)),
                Option(id="sys:menu", title=turn.text("label_menu"))]
    return [Option(id="sys:menu", title=turn.text("label_menu"))]


def next_module(turn: Turn) -> str:
    for flow_id in turn.course.modules:
        if flow_id not in turn.progress.modules_done and flow_id != turn.progress.flow:
            return flow_id
    return ""


def show_step(turn: Turn, step: Step, *, prompt_only: bool = False) -> None:
    flow = turn.flow()
    assert flow is not None
    progress = turn.progress
    lang = progress.lang
    score, max_score = scoring.shown(turn, flow)
    values = {"score": score, "max_score": max_score, "module": flow.title.get(lang)}
    messages = [turn.fill(say.get(lang, progress.business), **values) for say in step.say]
    if step.quiz:
        messages.append(turn.fill(step.quiz.question.get(lang), **values))
    if prompt_only and len(messages) > 1:
        messages = messages[-1:]
    media = None
    if step.media and not prompt_only:
        caption = step.media.caption.get(lang) if step.media.caption else ""
        media = Media(kind=MediaKind(step.media.kind), url=step.media.url, caption=caption)
    options = turn.options()
    for index, message in enumerate(messages):
        last = index == len(messages) - 1
        turn.say(message, options if last else None, media if index == 0 else None)


def view(turn: Turn, flow: Flow) -> LearnerView:
    progress = turn.progress
    return LearnerView(score=progress.flow_score(flow.id), answers=progress.answers.get(flow.id, {}),
                       business=progress.business, variables=progress.variables)


def start_module(turn: Turn, flow_id: str) -> None:
    flow = turn.course.flows.get(flow_id)
    if flow is None:
        turn.say(turn.text("course_done"))
        turn.show_menu()
        return
    step = turn.current_step()
    progress = turn.progress
    if progress.flow == flow_id and step is not None and not step.end:
        turn.progress = progress.with_changes(pending=Pending.NONE)
        turn.say(turn.text("resume"))
        turn.show_step(step)
        return
    if flow_id in progress.modules_done:
        revisit.start(turn, flow)
        return
    if review.owed_before(turn, flow_id):
        return
    answers = {**progress.answers, flow_id: {}}
    marks = {**progress.marks, flow_id: {}}
    scores = {**progress.module_scores, flow_id: [0, flow.max_score]}
    turn.progress = progress.with_changes(flow=flow_id, flow_version=flow.version, step=flow.start,
                                          pending=Pending.NONE, answers=answers, marks=marks, module_scores=scores,
                                          revisiting="")
    turn.enter(flow.steps[flow.start])


def advance(turn: Turn, flow_id: str, step_id: str, trigger: str) -> None:
    """A tap on the current step's choice or quiz option (``c:<flow>:<step>:<trigger>``)."""
    flow = turn.flow()
    assert flow is not None and flow.id == flow_id  # options() only offers the current module's ids
    try:
        fired = turn.source.machine_for(flow).fire(step_id, trigger, view(turn, flow))
    except UnknownTrigger:
        turn.say(turn.text("stale_button"))
        turn.prompt()
        return
    turn.progress = turn.progress.with_changes(pending=Pending.NONE, step=fired.state)
    if fired.sets:
        turn.progress = turn.progress.with_changes(variables={**turn.progress.variables, **dict(fired.sets)})
    step = flow.steps[step_id]
    if step.quiz and fired.answered:
        record_answer(turn, flow, step, fired.answered.id)
        prefix = turn.text("correct_prefix" if fired.answered.correct else "wrong_prefix")
        turn.say(f"{prefix} {fired.answered.feedback.get(turn.progress.lang)}")
    turn.enter(flow.steps[fired.state])


def record_answer(turn: Turn, flow: Flow, step: Step, option_id: str) -> None:
    scoring.record(turn, flow, step, option_id, revisiting=bool(turn.progress.revisiting))


def enter(turn: Turn, step: Step) -> None:
    """Show ``step``, moving on through steps that need no input, and close the module at the end."""
    flow = turn.flow()
    assert flow is not None
    for _ in range(MAX_AUTO_STEPS):
        flow, step = take_over(turn, flow, step)
        turn.progress = turn.progress.with_changes(step=step.id)
        if step.end:
            finish_module(turn, flow, step)
            return
        if revisit.holds_quiz(turn, step) or review.mix_in_before(turn, flow, step):
            return
        turn.show_step(step)
        if step.choices or step.quiz:
            return
        step = flow.steps[turn.source.machine_for(flow).fire(step.id, AUTO, view(turn, flow)).state]
    turn.show_menu()


def take_over(turn: Turn, flow: Flow, step: Step) -> tuple[Flow, Step]:
    """At a step boundary, move a learner on an older version to the live one.

    The live version takes over when it has the same step id, or maps the old step with
    ``migrate``; otherwise the learner goes on in the version they started.
    """
    live = turn.course.flows.get(flow.id)
    if live is None or live.version == flow.version:
        return flow, step
    target = step.id if step.id in live.steps else live.migrate.get(step.id, "")
    if not target:
        return flow, step
    scoring.moved(turn, flow, live, target)
    turn.progress = turn.progress.with_changes(flow_version=live.version)
    return live, live.steps[target]


def finish_module(turn: Turn, flow: Flow, step: Step) -> None:
    progress = turn.progress
    done = progress.modules_done + ([flow.id] if flow.id not in progress.modules_done else [])
    turn.progress = progress = progress.with_changes(modules_done=done, revisiting="")
    turn.module_finished = True
    lang = progress.lang
    score, max_score = scoring.shown(turn, flow)
    for say in step.say:
        turn.say(turn.fill(say.get(lang, progress.business), score=score, max_score=max_score,
                           module=flow.title.get(lang)))
    key = "module_done" if next_module(turn) else "course_done"
    turn.say(turn.text(key, score=score, max_score=max_score, module=flow.title.get(lang)),
             after_module_options(turn))
