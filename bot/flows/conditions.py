"""The registry of what a flow may test (``branch: - when:``) and do (``set:`` on a choice). No I/O.

YAML names entries of this registry and nothing else: no import paths, no code. Each condition says
what argument it takes (for the flow check) and how it is decided on a ``LearnerView``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, kw_only=True, slots=True)
class LearnerView:
    """What a condition may look at: this module's score and answers, the business, the variables."""

    score: int = 0
    answers: Mapping[str, str] = field(default_factory=dict)  # step id -> option id, this module
    business: str = ""
    variables: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ConditionRule:
    argument: str  # "int" | "text" | "step_option" | "pairs": what the YAML value must be
    test: Callable[[LearnerView, Any], bool]  # the YAML argument, already checked against ``argument``
    example: str  # shown in error messages


CONDITIONS: dict[str, ConditionRule] = {
    "score_at_least": ConditionRule("int", lambda view, n: view.score >= n, "score_at_least: 3"),
    "score_below": ConditionRule("int", lambda view, n: view.score < n, "score_below: 2"),
    "answered": ConditionRule("step_option", lambda view, arg: view.answers.get(arg[0]) == arg[1],
                              "answered: {step: q1, option: a}"),
    "business": ConditionRule("text", lambda view, kind: view.business == kind, "business: bakery"),
    "var": ConditionRule("pairs", lambda view, pairs: all(view.variables.get(k) == v for k, v in pairs),
                         "var: {channel_used: whatsapp}"),
}

ACTIONS = ("set",)  # a choice's ``set: {name: value}`` stores learner variables


def holds(name: str, argument: object, view: LearnerView) -> bool:
    return CONDITIONS[name].test(view, argument)
