"""A learner's progress: the record behind every answer, and its mapping to a Redis hash. No I/O.

Stored as one hash per learner (``bot.storage.keys.learner_key(lid, PROGRESS)``); small values are plain
strings, the structured ones (answers, module scores, modules done) are JSON, and the typed parts
(the check-up attempt, the review, the certificate request, the consent history:
``bot.tutor.progress_parts``) are JSON through their ``to_json``/``from_json``. ``rev`` is the
optimistic-lock counter: every committed change increments it (see ``bot.storage.store``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from bot.model.events import InboundEvent
from bot.proactive.record import ProactiveRecord
from bot.tutor.entry_record import EntryRecord
from bot.tutor.handover_record import HandoverState
from bot.tutor.progress_parts import (
    CertificateRequest,
    ChannelConversation,
    CheckupAttempt,
    ConsentEntry,
    NoticeShown,
    OpenDayState,
    ReminderState,
    ReviewState,
)


class Pending:
    """What the learner is being asked outside the flow (a closed vocabulary stored as text)."""

    NONE = ""
    LANGUAGE = "language"
    BUSINESS = "business"
    MENU = "menu"
    CONFIRM_STOP = "confirm_stop"
    CONFIRM_RESTART = "confirm_restart"
    CHECKUP_CONFIRM = "checkup_confirm"  # asked whether to start the timed check-up
    CHECKUP = "checkup"  # answering the check-up's questions
    REVIEW = "review"  # answering missed quiz questions again, or one mixed in from an earlier module
    CERTIFICATE_NAME = "certificate_name"  # typing the name for the certificate
    CERTIFICATE_BUSINESS = "certificate_business"  # typing the business name for the certificate
    REVISIT_QUIZ = "revisit_quiz"  # revisiting a finished module: redo its quiz or skip it? (bot.tutor.revisit)
    CHECKUP_LEAVE = "checkup_leave"  # "menu" during a running check-up: go on, or hand it in now?
    REMINDER_SLOT = "reminder_slot"  # when to be reminded (bot.tutor.reminders)
    REMINDER_DAYS = "reminder_days"  # on which days
    REMINDER_CLOSED_DAY = "reminder_closed_day"  # which is the shop's closing day
    HANDOVER_CONFIRM = "handover_confirm"  # asked whether a person should answer (bot.tutor.handover)
    CONFIRM_UNLINK = "confirm_unlink"  # "scollega": split the linked channels apart again? (bot.tutor.linking)
    CONFIRM_ERASE = "confirm_erase"  # "cancella i miei dati": erase everything? (bot.tutor.privacy)


@dataclass(frozen=True, kw_only=True)
class Progress:
    learner_id: str
    channel: str  # the channel's name (bot.model.events.Channel.name): where this learner writes from
    user_id: str
    phone: str = ""  # WhatsApp only; replies go to "+phone", or to the BSUID when empty
    bsuid: str = ""  # WhatsApp business-scoped user id, when known
    name: str = ""  # the profile name the platform sent
    lang: str = "it"
    lang_chosen: bool = False
    business: str = ""  # the learner's kind of business (course.yaml business_types), "" = not asked yet
    variables: dict[str, str] = field(default_factory=dict)  # set by choices (``set:``)
    flow: str = ""  # the module in progress ("" = none)
    flow_version: int = 0
    step: str = ""
    pending: str = Pending.NONE
    menu_page: int = 0  # the menu page on screen (bot.tutor.menu)
    revisiting: str = ""  # going through a finished module again: "lessons" | "quiz" (bot.tutor.revisit)
    answers: dict[str, dict[str, str]] = field(default_factory=dict)  # flow -> step -> option id
    module_scores: dict[str, list[int]] = field(default_factory=dict)  # flow -> [score, max score] (bot.tutor.scoring)
    marks: dict[str, dict[str, list[int]]] = field(default_factory=dict)  # flow -> step -> [points, out of, version]
    modules_done: list[str] = field(default_factory=list)
    checkup: CheckupAttempt = field(default_factory=CheckupAttempt)  # bot.tutor.checkup
    review: ReviewState = field(default_factory=ReviewState)  # missed questions asked again (bot.tutor.review)
    certificate: CertificateRequest = field(default_factory=CertificateRequest)  # bot.tutor.graduation
    opted_out: bool = False  # bot.tutor.consent: nothing Bottega starts reaches this learner
    opted_out_at_ms: int = 0
    consent: tuple[ConsentEntry, ...] = ()  # opt-out/in history (bot.tutor.consent)
    notices: tuple[NoticeShown, ...] = ()  # privacy notice and opt-in questions shown: what, when, where (consent)
    conversations: tuple[ChannelConversation, ...] = ()  # the other channels linked to this learner (conversations)
    lang_chosen_at_ms: int = 0  # when the language was last chosen (a merge keeps the most recent choice)
    reminders_chosen_at_ms: int = 0  # when the reminders were last chosen (likewise)
    retention_warned_at_ms: int = 0  # warned of erasure after a long silence (bot.tutor.retention); 0 = not
    seen_ms: int = 0  # the learner's last message the tutor handled: a long gap starts a new visit (bot.tutor.review)
    reminders: ReminderState = field(default_factory=ReminderState)  # bot.tutor.reminders
    proactive: ProactiveRecord = field(default_factory=ProactiveRecord)  # bot.proactive: what went out first
    entry: EntryRecord = field(default_factory=EntryRecord)  # how they came in: source, ad (bot.tutor.entry)
    handover: HandoverState = field(default_factory=HandoverState)  # a person answers (bot.tutor.handover)
    open_days: OpenDayState = field(default_factory=OpenDayState)  # Business Open Days (bot.tutor.open_days)
    not_understood_at_ms: int = 0  # the last "non ho capito": one per NOT_UNDERSTOOD_PAUSE_MS (bot.tutor.engine)
    reply_from: str = ""  # WhatsApp phone_number_id / Messenger Page id we answer from
    via: str = ""  # the id the channel in ``channel`` knows the learner by, when not ``learner_id`` (a linked channel)
    created_at_ms: int = 0
    updated_at_ms: int = 0
    last_inbound_at_ms: int = 0  # opens WhatsApp's 24-hour customer-service window
    rev: int = 0  # 0 = never stored

    @classmethod
    def new(cls, event: InboundEvent, now_ms: int) -> Progress:
        lang = "it"
        if event.phone and not event.phone.startswith("39"):  # a phone number from abroad: English first
            lang = "en"
        return cls(learner_id=event.learner_id, channel=event.channel.name, user_id=event.user_id,
                   phone=event.phone, bsuid=event.bsuid, lang=lang, created_at_ms=now_ms)

    @property
    def is_new(self) -> bool:
        return self.rev == 0

    def flow_score(self, flow_id: str) -> int:
        return self.module_scores.get(flow_id, [0, 0])[0]

    def with_changes(self, **changes: Any) -> Progress:
        """A copy with ``changes`` (as ``dataclasses.replace``, without re-running ``__init__`` over ~40 fields:
        a turn makes several of these, and the fields need no validation)."""
        unknown = changes.keys() - _FIELD_KINDS.keys()
        if unknown:
            raise TypeError(f"Progress has no field {sorted(unknown)[0]!r}")
        copy = object.__new__(Progress)
        copy.__dict__.update(self.__dict__)
        copy.__dict__.update(changes)
        return copy

    # -- Redis hash mapping ---------------------------------------------------------------------
    def to_hash(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, kind in _FIELD_KINDS.items():
            value = getattr(self, name)
            if kind == "bool":
                out[name] = "1" if value else "0"
            elif kind == "json":
                out[name] = _json(value)
            elif kind == "part":  # an untouched part (most learners, most turns) is stored as ""
                out[name] = "" if value == _UNTOUCHED[name] else _json(value.to_json())
            elif kind == "parts":
                out[name] = _json([item.to_json() for item in value]) if value else ""
            else:
                out[name] = str(value)
        return out

    @classmethod
    def from_hash(cls, raw: dict[bytes, bytes] | dict[str, str]) -> Progress | None:
        if not raw:
            return None
        values: dict[str, Any] = {}
        for key, value in raw.items():
            name = key.decode() if isinstance(key, bytes) else key
            kind = _FIELD_KINDS.get(name)
            if kind is None:
                continue  # a field this version does not know: ignored, kept in Redis
            text = value.decode() if isinstance(value, bytes) else value
            if kind == "bool":
                values[name] = text == "1"
            elif kind == "int":
                values[name] = int(text or 0)
            elif kind == "json":
                values[name] = json.loads(text) if text else None
            elif kind == "part":
                values[name] = _PARTS[name].from_json(json.loads(text)) if text else _UNTOUCHED[name]
            elif kind == "parts":
                items = json.loads(text) if text else ()
                values[name] = tuple(_LISTS[name].from_json(item) for item in items if isinstance(item, dict))
            else:
                values[name] = text
        for name, default in _JSON_DEFAULTS.items():
            if values.get(name) is None:
                values[name] = default()
        return cls(**values)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


_PARTS: dict[str, Any] = {"checkup": CheckupAttempt, "review": ReviewState, "certificate": CertificateRequest,
                          "reminders": ReminderState, "proactive": ProactiveRecord, "entry": EntryRecord,
                          "open_days": OpenDayState, "handover": HandoverState}
_UNTOUCHED: dict[str, Any] = {name: part() for name, part in _PARTS.items()}  # frozen: shared safely


_LISTS: dict[str, Any] = {"consent": ConsentEntry, "notices": NoticeShown, "conversations": ChannelConversation}


def _kind(name: str, annotation: str) -> str:
    if name in _PARTS:
        return "part"
    if name in _LISTS:
        return "parts"
    if annotation.startswith(("dict", "list")):
        return "json"
    return annotation if annotation in ("bool", "int") else "str"


# How each field maps to a hash value, worked out once (annotations are strings here).
_FIELD_KINDS = {f.name: _kind(f.name, str(f.type)) for f in fields(Progress)}
_JSON_DEFAULTS: dict[str, Callable[[], object]] = {
    f.name: dict if str(f.type).startswith("dict") else list
    for f in fields(Progress) if _FIELD_KINDS[f.name] == "json"}
