"""A learner's progress: the record behind every answer, and its mapping to a Redis hash. No I/O.

Stored as one hash per learner (``bot.keys.learner_key(lid, PROGRESS)``); small values are plain
strings, the structured ones (answers, module scores, modules done) are JSON. ``rev`` is the
optimistic-lock counter: every committed change increments it (see ``bot.store``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace

from bot.events import Channel, InboundEvent


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


@dataclass(frozen=True, kw_only=True)
class Progress:
    learner_id: str
    channel: Channel
    user_id: str
    phone: str = ""  # WhatsApp only; replies go to "+phone", or to the BSUID when empty
    name: str = ""  # the profile name the platform sent
    lang: str = "it"
    lang_chosen: bool = False
    business: str = ""  # the learner's kind of business (course.yaml business_types), "" = not asked yet
    variables: dict[str, str] = field(default_factory=dict)  # set by choices (``set:``)
    flow: str = ""  # the module in progress ("" = none)
    flow_version: int = 0
    step: str = ""
    pending: str = Pending.NONE
    answers: dict[str, dict[str, str]] = field(default_factory=dict)  # flow -> step -> option id
    module_scores: dict[str, list[int]] = field(default_factory=dict)  # flow -> [score, max score]
    modules_done: list[str] = field(default_factory=list)
    checkup: dict[str, object] = field(default_factory=dict)  # the check-up attempt (bot.checkup)
    review: dict[str, object] = field(default_factory=dict)  # missed questions: queue, reviewed, then
    certificate: dict[str, object] = field(default_factory=dict)  # name, business, code once issued
    opted_out: bool = False
    opted_out_at_ms: int = 0
    reply_from: str = ""  # WhatsApp phone_number_id / Messenger Page id we answer from
    created_at_ms: int = 0
    updated_at_ms: int = 0
    last_inbound_at_ms: int = 0  # opens WhatsApp's 24-hour customer-service window
    rev: int = 0  # 0 = never stored

    @classmethod
    def new(cls, event: InboundEvent, now_ms: int) -> Progress:
        lang = "it"
        if event.channel is Channel.WHATSAPP and event.phone and not event.phone.startswith("39"):
            lang = "en"
        return cls(learner_id=event.learner_id, channel=event.channel, user_id=event.user_id,
                   lang=lang, created_at_ms=now_ms)

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
        for name, value in asdict(self).items():
            if isinstance(value, bool):
                out[name] = "1" if value else "0"
            elif isinstance(value, dict | list):
                out[name] = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
            elif isinstance(value, Channel):
                out[name] = value.value
            else:
                out[name] = str(value)
        return out

    @classmethod
    def from_hash(cls, raw: dict[bytes, bytes] | dict[str, str]) -> Progress | None:
        if not raw:
            return None
        data = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
                for k, v in raw.items()}
        values: dict[str, object] = {}
        for f in fields(cls):
            if f.name not in data:
                continue
            text = data[f.name]
            kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
            if f.name == "channel":
                values[f.name] = Channel(text)
            elif kind == "bool":
                values[f.name] = text == "1"
            elif kind == "int":
                values[f.name] = int(text or 0)
            elif kind.startswith(("dict", "list")):
                values[f.name] = json.loads(text or "null") or ({} if kind.startswith("dict") else [])
            else:
                values[f.name] = text
        return cls(**values)  # type: ignore[arg-type]
