"""One ``transitions`` state machine per flow, built once at start-up: the flow's rulebook.

States are step ids; triggers are choice ids and quiz option ids (``_auto`` for steps that move on by
themselves). The machine is built with ``auto_transitions=False`` and ``model=None``; each
``FlowMachine`` keeps one long-lived cursor model, so firing an event costs ``set_state`` +
``trigger`` (~20 µs) whatever the flow's size: nothing is added to or removed from the machine per
message (see shared/STYLE.md, habit 5). A lock serialises the shared cursor between threads.
Callbacks and conditions come from explicit registries (here and ``bot.flows.conditions``), never
from YAML import paths.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from transitions import EventData, Machine, MachineError

from bot.flows.conditions import LearnerView, holds
from bot.flows.spec import Choice, Condition, Flow, QuizOption
from bot.model.errors import CourseError

AUTO = "_auto"  # the trigger of a step that moves on without input (no YAML id starts with "_")


@dataclass
class Cursor:
    """The machine's one model: the state plus what the current firing recorded."""

    state: str = ""
    view: LearnerView = field(default_factory=LearnerView)
    answered: QuizOption | None = None
    sets: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class Fired:
    """The result of one trigger: where the learner is now and the quiz option they chose, if any."""

    state: str
    answered: QuizOption | None
    sets: tuple[tuple[str, str], ...] = ()  # learner variables the chosen option stores


class UnknownTrigger(CourseError):
    """The trigger does not leave the given state (an old button, or an id this step never offered)."""


class FlowMachine:
    def __init__(self, flow: Flow):
        self.flow = flow
        self._lock = threading.Lock()
        self._cursor = Cursor()
        self._machine = Machine(model=None, states=list(flow.steps), initial=flow.start,
                                auto_transitions=False, send_event=True, ignore_invalid_triggers=False)
        for step in flow.steps.values():
            for choice in step.choices:
                self._machine.add_transition(choice.id, step.id, choice.next,
                                             after=_record_sets(choice) if choice.sets else None)
            for branch in step.branch:  # in order: transitions takes the first whose conditions hold
                self._machine.add_transition(AUTO, step.id, branch.next,
                                             conditions=[_condition(c) for c in branch.conditions])
            if step.quiz:
                target = step.next or step.id
                for option in step.quiz.options:
                    self._machine.add_transition(option.id, step.id, target,
                                                 after=_record_answer(option))
            elif step.next and not step.choices:
                self._machine.add_transition(AUTO, step.id, step.next)
        self._machine.add_model(self._cursor)

    def fire(self, state: str, trigger: str, view: LearnerView | None = None) -> Fired:
        """Fire ``trigger`` from ``state``; raise ``UnknownTrigger`` if it does not leave ``state``."""
        if state not in self.flow.steps:
            raise UnknownTrigger(f"step '{state}' is not in flow '{self.flow.id}'")
        with self._lock:
            cursor = self._cursor
            cursor.answered, cursor.sets = None, ()
            cursor.view = view or LearnerView()
            self._machine.set_state(state, model=cursor)
            event = self._machine.events.get(trigger)
            try:
                if event is None:
                    raise MachineError(f"no event '{trigger}'")
                event.trigger(cursor)
            except MachineError as error:
                raise UnknownTrigger(f"'{trigger}' does not leave step '{state}'") from error
            return Fired(state=cursor.state, answered=cursor.answered, sets=cursor.sets)


def _record_answer(option: QuizOption) -> Callable[[EventData], None]:
    """Registry entry ``record_answer``: remember which quiz option was chosen."""

    def callback(event: EventData) -> None:
        _cursor(event).answered = option

    return callback


def _record_sets(choice: Choice) -> Callable[[EventData], None]:
    """Registry entry ``set``: the variables a choice stores on the learner."""

    def callback(event: EventData) -> None:
        _cursor(event).sets = choice.sets

    return callback


def _condition(condition: Condition) -> Callable[[EventData], bool]:
    """A registry condition (``bot.flows.conditions``) bound to its YAML argument."""

    def check(event: EventData) -> bool:
        return holds(condition.name, condition.argument, _cursor(event).view)

    return check


def _cursor(event: EventData) -> Cursor:
    """The model a transitions callback was called for: always this machine's cursor."""
    model = event.model
    assert isinstance(model, Cursor)
    return model
