"""The structured parts of a learner's progress, typed: the check-up attempt, the review of missed
questions, the certificate being asked for, the consent history, the reminders. No I/O.

Each part is stored as JSON in one field of the progress hash (``bot.tutor.progress``); ``to_json``
gives the plain value to store and ``from_json`` reads it back, tolerating keys a newer version wrote
and missing ones an older version did not (they take their defaults), so stored learners never break.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Self

from bot.model.stored_json import integer, mapping, strings, text_map


@dataclass(frozen=True, kw_only=True, slots=True)
class CheckupResult:
    """One finished attempt: overall and per-area percentages, the level, how it ended."""

    percent: int = 0  # overall, on every scored question
    level: str = ""
    areas: dict[str, int] = field(default_factory=dict)  # area id -> percent
    knowledge_percent: int = 0  # on the knowledge questions only: what the certificate's pass mark reads
    timed_out: bool = False
    answered: int = 0
    finished_ms: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"percent": self.percent, "level": self.level, "areas": dict(self.areas),
                "knowledge_percent": self.knowledge_percent, "timed_out": self.timed_out,
                "answered": self.answered, "finished_ms": self.finished_ms}

    @classmethod
    def from_json(cls, data: Any) -> Self:
        if not isinstance(data, dict):
            return cls()
        areas = mapping(data, "areas")
        percent = integer(data, "percent")
        return cls(percent=percent, level=str(data.get("level", "")),
                   areas={str(k): int(v) for k, v in areas.items() if isinstance(v, int | float)},
                   knowledge_percent=integer(data, "knowledge_percent") if "knowledge_percent" in data else percent,
                   timed_out=data.get("timed_out") is True, answered=integer(data, "answered"),
                   finished_ms=integer(data, "finished_ms"))


@dataclass(frozen=True, kw_only=True, slots=True)
class CheckupAttempt:
    """The learner's check-up: the attempt running now (``running``) or the last one, and every result."""

    attempt: int = 0  # attempts started so far (timers carry it: one from an older attempt does nothing)
    running: bool = False
    started_ms: int = 0
    deadline_ms: int = 0
    order: tuple[str, ...] = ()  # question ids, shuffled reproducibly per learner and attempt
    index: int = 0  # the question on screen
    answers: dict[str, str] = field(default_factory=dict)  # question id -> option id
    ms: dict[str, int] = field(default_factory=dict)  # question id -> time spent on it
    shown_ms: int = 0  # when the question on screen was shown
    finished_ms: int = 0  # when the last attempt ended (the retake pause counts from it)
    result: CheckupResult | None = None  # the last attempt's
    history: tuple[CheckupResult, ...] = ()  # every finished attempt's

    @property
    def question_id(self) -> str:
        """The id of the question on screen ("" when none is)."""
        return self.order[self.index] if self.running and self.index < len(self.order) else ""

    def with_changes(self, **changes: Any) -> CheckupAttempt:
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"attempt": self.attempt, "running": self.running, "started_ms": self.started_ms,
                                "deadline_ms": self.deadline_ms, "order": list(self.order), "index": self.index,
                                "answers": dict(self.answers), "ms": dict(self.ms), "shown_ms": self.shown_ms,
                                "finished_ms": self.finished_ms,
                                "history": [result.to_json() for result in self.history]}
        data["result"] = self.result.to_json() if self.result else {}
        return data

    @classmethod
    def from_json(cls, data: Any) -> Self:
        if not isinstance(data, dict):
            return cls()
        spent = mapping(data, "ms")
        history = data.get("history")
        history = history if isinstance(history, list) else []
        return cls(attempt=integer(data, "attempt"), running=data.get("running") is True,
                   started_ms=integer(data, "started_ms"), deadline_ms=integer(data, "deadline_ms"),
                   order=strings(data, "order"), index=integer(data, "index"), answers=text_map(data, "answers"),
                   ms={str(k): int(v) for k, v in spent.items() if isinstance(v, int | float)},
                   shown_ms=integer(data, "shown_ms"), finished_ms=integer(data, "finished_ms"),
                   result=CheckupResult.from_json(data["result"]) if data.get("result") else None,
                   history=tuple(CheckupResult.from_json(item) for item in history))


@dataclass(frozen=True, kw_only=True, slots=True)
class ReviewState:
    """Questions asked again (``bot.tutor.review``): missed ones at the start of a visit, and one from an
    earlier module mixed into a later module's quiz. The queue, those done, what comes after."""

    queue: tuple[str, ...] = ()  # "flow:step" of the questions still to ask, in order
    reviewed: tuple[str, ...] = ()  # "flow:step" of the missed questions already asked again
    then: str = ""  # the module that starts when the queue is done ("" = back to where the learner was)
    kind: str = ""  # what the queue is: "visit" (missed questions) | "spaced" (one from an earlier module)
    owed: bool = False  # a visit started with missed questions to review: asked at the next fitting moment
    mixed: tuple[str, ...] = ()  # "into_flow>from_flow:step": the earlier question mixed into each module's quiz

    def with_changes(self, **changes: Any) -> ReviewState:
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        return {"queue": list(self.queue), "reviewed": list(self.reviewed), "then": self.then, "kind": self.kind,
                "owed": self.owed, "mixed": list(self.mixed)}

    @classmethod
    def from_json(cls, data: Any) -> Self:
        if not isinstance(data, dict):
            return cls()
        return cls(queue=strings(data, "queue"), reviewed=strings(data, "reviewed"), then=str(data.get("then", "")),
                   kind=str(data.get("kind", "")), owed=data.get("owed") is True, mixed=strings(data, "mixed"))


@dataclass(frozen=True, kw_only=True, slots=True)
class CertificateRequest:
    """What the learner typed for their certificate, and its code once issued (``bot.tutor.graduation``)."""

    name: str = ""
    business_name: str = ""
    code: str = ""  # set when the certificate is issued
    issued_ms: int = 0

    def with_changes(self, **changes: Any) -> CertificateRequest:
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "business_name": self.business_name, "code": self.code,
                "issued_ms": self.issued_ms}

    @classmethod
    def from_json(cls, data: Any) -> Self:
        if not isinstance(data, dict):
            return cls()
        return cls(name=str(data.get("name", "")), business_name=str(data.get("business_name", "")),
                   code=str(data.get("code", "")), issued_ms=integer(data, "issued_ms"))


@dataclass(frozen=True, kw_only=True, slots=True)
class ConsentEntry:
    """One change of the learner's consent to Bottega writing first (``bot.tutor.consent``)."""

    state: str  # "opted_out" | "opted_in"
    how: str  # "typed stop", "tapped template_button", "typed riprendi"...
    at_ms: int
    channel: str

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state, "how": self.how, "at_ms": self.at_ms, "channel": self.channel}

    @classmethod
    def from_json(cls, data: Any) -> Self:
        data = data if isinstance(data, dict) else {}
        return cls(state=str(data.get("state", "")), how=str(data.get("how", "")), at_ms=integer(data, "at_ms"),
                   channel=str(data.get("channel", "")))


@dataclass(frozen=True, kw_only=True, slots=True)
class FollowUp:
    """A "Lo faccio dopo" on a *Prova ora* step: the task to ask about, and the answer once given."""

    flow: str
    step: str
    at_ms: int  # when the learner chose "later" (or answered)
    answer: str = ""  # "" waiting; "done" | "not_yet" once asked and answered (a learning signal)

    def to_json(self) -> dict[str, Any]:
        return {"flow": self.flow, "step": self.step, "at_ms": self.at_ms, "answer": self.answer}

    @classmethod
    def from_json(cls, data: Any) -> Self:
        data = data if isinstance(data, dict) else {}
        return cls(flow=str(data.get("flow", "")), step=str(data.get("step", "")), at_ms=integer(data, "at_ms"),
                   answer=str(data.get("answer", "")))


FOLLOWUP_LOG_MAX = 30  # answered follow-ups kept per learner, newest last


@dataclass(frozen=True, kw_only=True, slots=True)
class ReminderState:
    """The learner's reminders (``bot.tutor.reminders``): their choice, the one planned, the unanswered ones."""

    slot: str = ""  # a slot id of reminders.yaml; "never"; "" = not chosen yet
    days: str = "every"  # every | weekdays | except:<0-6> (Monday = 0)
    offered: bool = False  # the choice was offered after the first module
    seq: int = 0  # the timer that counts is "rem:<seq>"; an older one does nothing
    moment_ms: int = 0  # the moment the planned reminder is for (the slot, that day)
    unanswered: int = 0  # reminders sent since the learner last wrote
    paused: bool = False  # after REMINDER_STOP_AFTER_IGNORED unanswered ones; ``promemoria`` resumes
    tell_paused: bool = False  # say so (and how to resume) when the learner next writes
    followup: FollowUp | None = None  # the task to ask about with the next reminder
    followups: tuple[FollowUp, ...] = ()  # answered ones

    @property
    def active(self) -> bool:
        return bool(self.slot) and self.slot != "never" and not self.paused

    def with_changes(self, **changes: Any) -> ReminderState:
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        if self == _NO_REMINDERS:
            return {}  # most learners: two bytes in the hash, not a hundred and fifty
        return {"slot": self.slot, "days": self.days, "offered": self.offered, "seq": self.seq,
                "moment_ms": self.moment_ms, "unanswered": self.unanswered, "paused": self.paused,
                "tell_paused": self.tell_paused, "followup": self.followup.to_json() if self.followup else None,
                "followups": [item.to_json() for item in self.followups]}

    @classmethod
    def from_json(cls, data: Any) -> Self:
        if not isinstance(data, dict):
            return cls()
        done = data.get("followups")
        return cls(slot=str(data.get("slot", "")), days=str(data.get("days", "every")) or "every",
                   offered=data.get("offered") is True, seq=integer(data, "seq"), moment_ms=integer(data, "moment_ms"),
                   unanswered=integer(data, "unanswered"), paused=data.get("paused") is True,
                   tell_paused=data.get("tell_paused") is True,
                   followup=FollowUp.from_json(data["followup"]) if isinstance(data.get("followup"), dict) else None,
                   followups=tuple(FollowUp.from_json(item) for item in (done if isinstance(done, list) else [])))


_NO_REMINDERS = ReminderState()


@dataclass(frozen=True, kw_only=True, slots=True)
class ChannelConversation:
    """One channel linked to a learner, other than the one they wrote from last (``bot.tutor.conversations``).

    The learner's record holds the conversation they wrote from last in its top-level fields (``channel``,
    ``user_id``, ``phone``, ``bsuid``, ``reply_from``, ``last_inbound_at_ms``: where replies go, whose window
    is known); each other linked channel waits here with the same facts, its own 24-hour window included.
    """

    channel: str  # the channel's name
    learner_id: str  # the id this channel knows the person by ("wa:39333..."): it is an alias of the learner
    user_id: str
    phone: str = ""
    bsuid: str = ""
    reply_from: str = ""
    last_inbound_at_ms: int = 0
    linked_at_ms: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"channel": self.channel, "learner_id": self.learner_id, "user_id": self.user_id, "phone": self.phone,
                "bsuid": self.bsuid, "reply_from": self.reply_from, "last_inbound_at_ms": self.last_inbound_at_ms,
                "linked_at_ms": self.linked_at_ms}

    @classmethod
    def from_json(cls, data: Any) -> Self:
        data = data if isinstance(data, dict) else {}
        return cls(channel=str(data.get("channel", "")), learner_id=str(data.get("learner_id", "")),
                   user_id=str(data.get("user_id", "")), phone=str(data.get("phone", "")),
                   bsuid=str(data.get("bsuid", "")), reply_from=str(data.get("reply_from", "")),
                   last_inbound_at_ms=integer(data, "last_inbound_at_ms"), linked_at_ms=integer(data, "linked_at_ms"))


NOTICES_MAX = 30  # notices and opt-ins kept per learner, newest last


@dataclass(frozen=True, kw_only=True, slots=True)
class NoticeShown:
    """A privacy notice (or an opt-in question) shown to the learner: what, when, on which channel."""

    what: str  # "privacy_notice", "reminders_offer"...
    version: str  # the notice's URL (or the text key) as shown
    at_ms: int
    channel: str

    def to_json(self) -> dict[str, Any]:
        return {"what": self.what, "version": self.version, "at_ms": self.at_ms, "channel": self.channel}

    @classmethod
    def from_json(cls, data: Any) -> Self:
        data = data if isinstance(data, dict) else {}
        return cls(what=str(data.get("what", "")), version=str(data.get("version", "")), at_ms=integer(data, "at_ms"),
                   channel=str(data.get("channel", "")))
OPEN_DAYS_KEPT = 24  # events whose RSVP a learner's record keeps, newest last (two years of monthly Open Days)


@dataclass(frozen=True, kw_only=True, slots=True)
class OpenDayState:
    """The learner's Business Open Days (``bot.tutor.open_days``): their RSVP per event, as the ledger said.

    ``rsvps`` maps an event id to invited | maybe | seated | waiting | declined | missed (the event's ledger in
    Redis is the source of truth; this is its consequence, plus what only the learner's side knows: invited,
    maybe, and missed: still waiting when it started, and told so). ``last`` is the latest event Bottega wrote
    to them about: a template's quick reply carries no event id and answers that one.
    """

    rsvps: dict[str, str] = field(default_factory=dict)
    last: str = ""

    def state(self, event_id: str) -> str:
        return self.rsvps.get(event_id, "")

    def with_rsvp(self, event_id: str, state: str, *, last: bool = False) -> OpenDayState:
        rsvps = {key: value for key, value in self.rsvps.items() if key != event_id}
        rsvps[event_id] = state
        kept = dict(list(rsvps.items())[-OPEN_DAYS_KEPT:])
        return replace(self, rsvps=kept, last=event_id if last else self.last)

    def to_json(self) -> dict[str, Any]:
        return {"rsvps": dict(self.rsvps), "last": self.last}

    @classmethod
    def from_json(cls, data: Any) -> Self:
        if not isinstance(data, dict):
            return cls()
        return cls(rsvps=text_map(data, "rsvps"), last=str(data.get("last", "")))
