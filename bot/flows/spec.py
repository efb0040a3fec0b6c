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


@dataclass(frozen=True, slots=True)
class Say:
    """One message of a step: the same for everyone, or varying with the learner's business.

    ``variants`` pairs a business id (or ``"default"``) with its text; ``default`` is always there.
    """

    variants: tuple[tuple[str, Translated], ...]

    def get(self, lang: str, business: str = "") -> str:
        chosen = dict(self.variants)
        return chosen.get(business, chosen["default"]).get(lang)

    @property
    def texts(self) -> tuple[Translated, ...]:
        return tuple(text for _, text in self.variants)


@dataclass(frozen=True, kw_only=True, slots=True)
class Condition:
    """A named test from the registry in ``bot.flows.conditions`` with its argument from YAML."""

    name: str
    argument: object


@dataclass(frozen=True, kw_only=True, slots=True)
class Branch:
    """``next`` is taken when every condition holds (no conditions: the default way on)."""

    conditions: tuple[Condition, ...]
    next: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Choice:
    id: str
    label: Translated
    next: str
    sets: tuple[tuple[str, str], ...] = ()  # action ``set``: learner variables this choice stores


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
    say: tuple[Say, ...] = ()
    media: StepMedia | None = None
    choices: tuple[Choice, ...] = ()
    quiz: Quiz | None = None
    next: str = ""  # after a quiz answer, or straight on when there are no choices
    branch: tuple[Branch, ...] = ()  # straight on, the first branch whose conditions hold
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
    migrate: Mapping[str, str] = field(default_factory=dict)  # old step id -> step of this version
    source: str = ""  # the YAML file it came from
    max_score: int = field(init=False, default=0)  # computed once: per-message work must not grow with size

    def __post_init__(self) -> None:
        object.__setattr__(self, "max_score", sum(s.quiz.points for s in self.steps.values() if s.quiz))

    def score_of(self, answers: Mapping[str, str]) -> int:
        """Points for ``answers`` (step id -> option id): the cost follows the answers, not the flow."""
        total = 0
        for step_id, option_id in answers.items():
            step = self.steps.get(step_id)
            if step and step.quiz and step.quiz.correct_option.id == option_id:
                total += step.quiz.points
        return total


@dataclass(frozen=True, kw_only=True, slots=True)
class BusinessType:
    id: str
    label: Translated


@dataclass(frozen=True, kw_only=True, slots=True)
class Level:
    id: str
    label: Translated
    below_percent: int | None = None  # None: the top level


@dataclass(frozen=True, kw_only=True, slots=True)
class Area:
    """A check-up area: its questions' scores say how strong the learner is there.

    ``modules`` are the modules that teach the area, the main one first; every module of the course
    is in at least one area, so the action plan can point to any of them: a weak area's plan line
    names the first of its modules the learner has not done, and ``action``, the one first thing to
    do this week (``next_step:`` is its older spelling in checkup.yaml).
    """

    id: str
    title: Translated
    modules: tuple[str, ...]
    action: Translated

    @property
    def module(self) -> str:
        """The main module (the first): the one the action plan's button starts."""
        return self.modules[0]


@dataclass(frozen=True, kw_only=True, slots=True)
class CheckOption:
    id: str
    label: Translated
    points: int
    not_applicable: bool = False  # "Non mi serve": scoring leaves the question out for this learner


@dataclass(frozen=True, kw_only=True, slots=True)
class CheckQuestion:
    id: str
    area: str
    kind: str  # knowledge | practice
    question: Translated
    options: tuple[CheckOption, ...]
    line: int = 0  # where the question starts in checkup.yaml (for messages)

    @property
    def max_points(self) -> int:
        return max(option.points for option in self.options)


@dataclass(frozen=True, kw_only=True, slots=True)
class CheckUp:
    id: str
    version: int
    title: Translated
    short_title: Translated
    intro: Translated
    time_limit_seconds: int
    warnings_seconds: tuple[int, ...]
    pass_percent: int
    retake_after_seconds: int
    levels: tuple[Level, ...]
    areas: tuple[Area, ...]
    questions: tuple[CheckQuestion, ...]
    source: str = ""

    def level_for(self, percent: float) -> Level:
        for level in self.levels:
            if level.below_percent is None or percent < level.below_percent:
                return level
        return self.levels[-1]


@dataclass(frozen=True, kw_only=True, slots=True)
class TemplateButton:
    """A template's quick-reply button: its label per language, and the payload a tap brings back."""

    label: Translated
    payload: str


@dataclass(frozen=True, kw_only=True, slots=True)
class BroadcastMessage:
    """A message an admin may broadcast (``broadcasts.yaml``): its text, quick replies, and the template
    (by ``use`` in templates.yaml) sent instead where the learner's 24-hour window is closed."""

    id: str
    text: Translated
    buttons: tuple[TemplateButton, ...] = ()
    template_use: str = ""  # "": nobody outside the window is reached


@dataclass(frozen=True, kw_only=True, slots=True)
class TemplateSpec:
    """A WhatsApp message template declared in ``templates.yaml`` (what ``bottega templates`` submits).

    ``use`` says what Bottega sends it for (``reminder``...); ``params`` name the learner fields that fill
    ``{{1}}``, ``{{2}}``... of ``body`` in order (``bot.flows.templates.PARAM_FIELDS``); ``defaults`` give a
    field's text when the learner's is empty (Meta refuses an empty parameter).
    """

    name: str
    category: str  # utility | marketing | authentication
    use: str
    params: tuple[str, ...]
    body: Translated  # with {{1}}... as Meta writes them
    example: Mapping[str, tuple[str, ...]]  # language -> sample values, sent with a submission
    buttons: tuple[TemplateButton, ...] = ()
    defaults: Mapping[str, Translated] = field(default_factory=dict)
    language_codes: Mapping[str, str] = field(default_factory=dict)  # our language -> Meta's code
    line: int = 0

    def code(self, lang: str) -> str:
        return self.language_codes.get(lang, lang)


@dataclass(frozen=True, kw_only=True, slots=True)
class ReminderSlot:
    """A moment of the day a learner can pick for their reminders (``reminders.yaml``)."""

    id: str
    minute: int  # minutes after local midnight
    label: Translated

    @property
    def time(self) -> str:
        return f"{self.minute // 60:02d}:{self.minute % 60:02d}"


@dataclass(frozen=True, kw_only=True, slots=True)
class Reminders:
    """The reminder choices and the conventions the engine follows (``reminders.yaml``)."""

    slots: tuple[ReminderSlot, ...]
    weekdays: tuple[Translated, ...]  # Monday first
    later_choices: tuple[str, ...] = ("later",)  # a step's choice with one of these ids schedules a follow-up
    task_marker: Translated | None = None  # where a step's say text names the task ("*Prova ora:*")

    def slot(self, slot_id: str) -> ReminderSlot | None:
        return next((slot for slot in self.slots if slot.id == slot_id), None)


@dataclass(frozen=True, kw_only=True, slots=True)
class Audience:
    """Who an Open Day is announced to (``events.yaml``); an empty tuple means everyone."""

    channels: tuple[str, ...] = ()  # channel names: whatsapp, messenger, instagram
    languages: tuple[str, ...] = ()  # it, en
    business_types: tuple[str, ...] = ()  # course.yaml business type ids
    modules_done: tuple[str, ...] = ()  # only learners who finished every one of these modules

    def admits(self, *, channel: str, lang: str, business: str, modules_done: tuple[str, ...]) -> bool:
        return ((not self.channels or channel in self.channels) and (not self.languages or lang in self.languages)
                and (not self.business_types or business in self.business_types)
                and all(module in modules_done for module in self.modules_done))


@dataclass(frozen=True, kw_only=True, slots=True)
class OpenDay:
    """A Business Open Day (``events.yaml``): when, where, how many seats, for whom, and what comes after."""

    id: str
    title: Translated
    start_ms: int  # Unix ms of the start (the YAML gives a local time and its time zone)
    time_zone: str  # IANA name the start was given in: the calendar file and the texts use it
    duration_minutes: int
    capacity: int
    description: Translated
    online_url: str = ""  # the link to join, sent when it starts (at least one of online_url and address)
    address: str = ""
    recording_url: str = ""  # sent with the follow-up, when there is one
    followup_module: str = ""  # a module id: the follow-up's button starts it
    audience: Audience = Audience()
    line: int = 0

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.duration_minutes * 60_000


@dataclass(frozen=True, kw_only=True, slots=True)
class Course:
    title: Translated
    support_email: str
    modules: tuple[str, ...]
    flows: Mapping[str, Flow]
    texts: Mapping[str, Translated] = field(default_factory=dict)
    business_types: tuple[BusinessType, ...] = ()
    checkup: CheckUp | None = None
    templates: tuple[TemplateSpec, ...] = ()  # templates.yaml
    reminders: Reminders | None = None  # reminders.yaml
    open_days: tuple[OpenDay, ...] = ()  # events.yaml
    broadcasts: tuple[BroadcastMessage, ...] = ()  # broadcasts.yaml

    def broadcast(self, message_id: str) -> BroadcastMessage | None:
        return next((message for message in self.broadcasts if message.id == message_id), None)

    def text(self, key: str, lang: str) -> str:
        """A system text; an optional one a release lacks reads as its fallback (``OPTIONAL_TEXT_KEYS``)."""
        while key not in self.texts and key in OPTIONAL_TEXT_KEYS:
            key = OPTIONAL_TEXT_KEYS[key]
            if not key:
                return ""
        return self.texts[key].get(lang)

    def template_for(self, use: str) -> TemplateSpec | None:
        """The template Bottega sends for ``use`` ("reminder"...) outside the window, if one is declared."""
        return next((template for template in self.templates if template.use == use), None)

    def open_day(self, event_id: str) -> OpenDay | None:
        return next((event for event in self.open_days if event.id == event_id), None)

    def business_label(self, business: str, lang: str) -> str:
        for kind in self.business_types:
            if kind.id == business:
                label = kind.label.get(lang)
                return label[:1].lower() + label[1:]
        return ""


SYSTEM_TEXT_KEYS = (
    "welcome", "choose_language", "language_set", "menu_intro", "help", "progress", "nowhere",
    "stop_confirm", "stopped", "stop_cancelled", "restart_confirm", "restarted", "restart_cancelled",
    "not_understood", "stale_button", "media_reply", "resume", "module_done", "course_done",
    "correct_prefix", "wrong_prefix",
    "label_yes", "label_no", "label_menu", "label_next_module", "label_continue", "label_choose",
    "label_italian", "label_english",
    "choose_business", "business_set", "review_intro", "review_done",
    "checkup_offer", "checkup_confirm", "checkup_started", "checkup_warning", "checkup_timeout",
    "checkup_result", "checkup_area_line", "checkup_plan_intro", "checkup_plan_line", "checkup_wait",
    "checkup_in_progress", "label_start_checkup", "label_not_now", "label_review",
    "certificate_ready", "certificate_not_yet", "certificate_caption", "certificate_ask_name",
    "certificate_ask_business",
    "unreadable_reply", "edit_reply", "order_reply", "checkup_abandoned",
    "menu_intro_page", "label_more_modules", "label_previous_modules",
    "revisit_intro", "revisit_quiz_offer", "label_redo_quiz", "label_skip_quiz",
    "checkup_leave_confirm", "label_continue_checkup", "label_submit_checkup",
)

# System texts added after releases were first published: a stored release (or an older system.yaml)
# without one still loads, and reads the fallback instead ("" = say nothing). ``flows check`` warns
# about a missing one. New keys go here, never into SYSTEM_TEXT_KEYS, so no published release breaks.
OPTIONAL_TEXT_KEYS: Mapping[str, str] = {
    "review_intro_one": "review_intro",  # the review with a single question (Italian agrees in number)
    "review_welcome_back": "review_intro",  # the review at the start of a new visit
    "review_welcome_back_one": "review_welcome_back",
    "review_back_to_work": "",  # after the review: where the learner was comes next
    "spaced_intro": "",  # before one question from an earlier module, mixed into a later module's quiz
    "checkup_knowledge_line": "",  # the knowledge questions' percent, which the certificate reads
    # one learner across channels (bot.tutor.linking) and their data (bot.tutor.privacy)
    "link_offer": "", "linked": "", "link_invalid": "not_understood", "link_too_many": "link_invalid",
    "link_same": "", "link_busy": "link_invalid", "unlink_nothing": "", "unlink_confirm": "restart_confirm",
    "unlinked": "", "unlink_cancelled": "restart_cancelled", "privacy_notice": "", "my_data_ready": "",
    "my_data_caption": "", "erase_confirm": "stop_confirm", "erase_cancelled": "stop_cancelled", "erased": "",
    "retention_warning": "",
    "entry_link_text": "",  # the text a wa.me entry link prefills around its start code (`bottega links`)
    "handover_offer": "",  # a person when they need one (bot.tutor.handover)
    "handover_offer_not_understood": "handover_offer",  # after three texts Bottega could not read
    "label_handover_yes": "label_yes",
    "label_handover_no": "label_no",
    "handover_started": "",
    "handover_declined": "",
    "handover_resumed": "resume",
    "handover_handed_back": "resume",
}
