"""Typed, validated flow definitions: what the loader builds from YAML and the engine runs. No I/O.

A *course* is a manifest (title, support e-mail, ordered modules) plus one *flow* per module and the
*system texts* (welcome, help, confirmations, button labels). A flow is a list of *steps*; a step
says one or more messages and then either offers choices, asks a quiz question, moves on by
itself (``next``), or ends the module (``end``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

LANGUAGES = ("it", "en")  # Italian is the reference language
REFERENCE_LANGUAGE = "it"


class StepKind(str, Enum):
    INTRO = "intro"
    LESSON = "lesson"
    QUIZ = "quiz"
    SUMMARY = "summary"


@dataclass(frozen=True, slots=True)
class Translated:
    """A string in every language of ``LANGUAGES``."""

    texts: tuple[tuple[str, str], ...]

    def get(self, lang: str) -> str:
        for code, text in self.texts:
            if code == lang:
                return text
        return self.texts[0][1]

    @classmethod
    def of(cls, **texts: str) -> Translated:
        return cls(tuple(texts.items()))


@dataclass(frozen=True, kw_only=True, slots=True)
class Choice:
    id: str
    label: Translated
    next: str


@dataclass(frozen=True, kw_only=True, slots=True)
class QuizOption:
    id: str
    label: Translated
    feedback: Translated
    correct: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class Quiz:
    question: Translated
    options: tuple[QuizOption, ...]
    points: int = 1

    @property
    def correct_option(self) -> QuizOption:
        return next(option for option in self.options if option.correct)


@dataclass(frozen=True, kw_only=True, slots=True)
class StepMedia:
    kind: str  # image | video | document
    url: str
    caption: Translated | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Step:
    id: str
    kind: StepKind = StepKind.LESSON
    say: tuple[Translated, ...] = ()
    media: StepMedia | None = None
    choices: tuple[Choice, ...] = ()
    quiz: Quiz | None = None
    next: str = ""  # after a quiz answer, or straight on when there are no choices
    end: bool = False
    line: int = 0  # where the step starts in its YAML file (for messages)


@dataclass(frozen=True, kw_only=True, slots=True)
class Flow:
    id: str
    version: int
    title: Translated
    short_title: Translated
    start: str
    steps: Mapping[str, Step]
    source: str = ""  # the YAML file it came from

    @property
    def max_score(self) -> int:
        return sum(step.quiz.points for step in self.steps.values() if step.quiz)


@dataclass(frozen=True, kw_only=True, slots=True)
class Course:
    title: Translated
    support_email: str
    modules: tuple[str, ...]
    flows: Mapping[str, Flow]
    texts: Mapping[str, Translated] = field(default_factory=dict)

    def text(self, key: str, lang: str) -> str:
        return self.texts[key].get(lang)


SYSTEM_TEXT_KEYS = (
    "welcome", "choose_language", "language_set", "menu_intro", "help", "progress", "nowhere",
    "stop_confirm", "stopped", "stop_cancelled", "restart_confirm", "restarted", "restart_cancelled",
    "not_understood", "stale_button", "media_reply", "resume", "module_done", "course_done",
    "correct_prefix", "wrong_prefix",
    "label_yes", "label_no", "label_menu", "label_next_module", "label_continue", "label_choose",
    "label_italian", "label_english",
)
