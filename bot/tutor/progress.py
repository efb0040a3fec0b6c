"""A learner's progress: the record behind every answer, and its mapping to a Redis hash. No I/O.

Stored as one hash per learner (``bot.storage.keys.learner_key(lid, PROGRESS)``); small values are plain
strings, the structured ones (answers, module scores, modules done) are JSON. ``rev`` is the
optimistic-lock counter: every committed change increments it (see ``bot.storage.store``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace

from bot.model.events import InboundEvent


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
    REVIEW = "review"  # answering missed quiz questions again before the next module
    CERTIFICATE_NAME = "certificate_name"  # typing the name for the certificate
    CERTIFICATE_BUSINESS = "certificate_business"  # typing the business name for the certificate
    REVISIT_QUIZ = "revisit_quiz"  # revisiting a finished module: redo its quiz or skip it? (bot.tutor.revisit)
    CHECKUP_LEAVE = "checkup_leave"  # "menu" during a running check-up: go on, or hand it in now?


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
    module_scores: dict[str, list[int]] = field(default_factory=dict)  # flow -> [score, max score]
    modules_done: list[str] = field(default_factory=list)
    checkup: dict[str, object] = field(default_factory=dict)  # the check-up attempt (bot.tutor.checkup)
    review: dict[str, object] = field(default_factory=dict)  # missed questions: queue, reviewed, then
    certificate: dict[str, object] = field(default_factory=dict)  # name, business, code once issued
    opted_out: bool = False  # bot.tutor.consent: nothing Bottega starts reaches this learner
    opted_out_at_ms: int = 0
    consent: list[dict[str, object]] = field(default_factory=list)  # opt-out/in history (bot.tutor.consent)
    not_understood_at_ms: int = 0  # the last "non ho capito": one per NOT_UNDERSTOOD_PAUSE_MS (bot.tutor.engine)
    reply_from: str = ""  # WhatsApp phone_number_id / Messenger Page id we answer from
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

    def with_changes(self, **changes: object) -> Progress:
        return replace(self, **changes)  # type: ignore[arg-type]

    # -- Redis hash mapping ---------------------------------------------------------------------
    def to_hash(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, kind in _FIELD_KINDS.items():
            value = getattr(self, name)
            if kind == "bool":
                out[name] = "1" if value else "0"
            elif kind == "json":
                out[name] = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
            else:
                out[name] = str(value)
        return out

    @classmethod
    def from_hash(cls, raw: dict[bytes, bytes] | dict[str, str]) -> Progress | None:
        if not raw:
            return None
        values: dict[str, object] = {}
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
            else:
                values[name] = text
        for name, default in _JSON_DEFAULTS.items():
            if values.get(name) is None:
                values[name] = default()
        return cls(**values)  # type: ignore[arg-type]


def _kind(annotation: str) -> str:
    if annotation.startswith(("dict", "list")):
        return "json"
    return annotation if annotation in ("bool", "int") else "str"


# How each field maps to a hash value, worked out once (annotations are strings here).
_FIELD_KINDS = {f.name: _kind(str(f.type)) for f in fields(Progress)}
_JSON_DEFAULTS = {f.name: f.default_factory for f in fields(Progress) if _FIELD_KINDS[f.name] == "json"}
