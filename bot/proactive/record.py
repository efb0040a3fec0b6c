"""What a learner's record keeps about Bottega writing first. No I/O.

Stored as JSON in the ``proactive`` field of the progress hash (``bot.tutor.progress``), read tolerantly
like the other typed parts: keys a newer version wrote are ignored, missing ones take their defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Self

from bot.model.stored_json import integer, text

SENT_LOG_MAX = 20  # proactive messages remembered per learner, newest last
REFUSAL_LOG_MAX = 10


@dataclass(frozen=True, kw_only=True, slots=True)
class Sent:
    """One proactive message as it was decided: when, what for, how it went, its category and cost."""

    at_ms: int
    kind: str  # "reminder", "followup"...
    how: str  # bot.proactive.placement.How: free_form | moved | template | opt_in_token
    category: str  # what Meta bills: service | utility | marketing...
    cost: float  # from the price table, in ``currency``
    currency: str = ""
    template: str = ""  # the template's name, when one was sent

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"at_ms": self.at_ms, "kind": self.kind, "how": self.how, "category": self.category,
                                "cost": self.cost, "currency": self.currency}
        if self.template:
            data["template"] = self.template
        return data

    @classmethod
    def from_json(cls, data: Any) -> Self:
        data = data if isinstance(data, dict) else {}
        cost = data.get("cost", 0)
        return cls(at_ms=integer(data, "at_ms"), kind=text(data, "kind"), how=text(data, "how"),
                   category=text(data, "category"), cost=float(cost) if isinstance(cost, int | float) else 0.0,
                   currency=text(data, "currency"), template=text(data, "template"))


@dataclass(frozen=True, kw_only=True, slots=True)
class Refusal:
    """Meta refused one of our proactive messages (131047, 131049, 131050...): when, and the code."""

    code: int
    at_ms: int

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "at_ms": self.at_ms}

    @classmethod
    def from_json(cls, data: Any) -> Self:
        data = data if isinstance(data, dict) else {}
        return cls(code=integer(data, "code"), at_ms=integer(data, "at_ms"))


@dataclass(frozen=True, kw_only=True, slots=True)
class ProactiveRecord:
    day: str = ""  # the learner's local date of the last proactive message
    day_count: int = 0  # proactive messages on that date (the daily cap counts these)
    sent: tuple[Sent, ...] = ()
    time_zone: str = ""  # what a platform told us (Messenger's opt-in); "" = the default
    marketing_stopped: bool = False  # WhatsApp user_preferences "stop" or error 131050; Messenger STOP
    marketing_changed_ms: int = 0
    marketing_retry_ms: int = 0  # error 131049 (per-user marketing limit): no marketing template before this
    window_refused_ms: int = 0  # error 131047: Meta said the window was closed; messages before this don't reopen it
    optin_token: str = ""  # Messenger marketing-messages token (messaging_optins)
    optin_expires_ms: int = 0  # 0: does not expire
    refusals: tuple[Refusal, ...] = ()

    def with_changes(self, **changes: Any) -> ProactiveRecord:
        return replace(self, **changes)

    def count_on(self, day: str) -> int:
        return self.day_count if day == self.day else 0

    def with_sent(self, entry: Sent, day: str) -> ProactiveRecord:
        return replace(self, day=day, day_count=self.count_on(day) + 1, sent=(*self.sent, entry)[-SENT_LOG_MAX:])

    def with_refusal(self, code: int, at_ms: int) -> ProactiveRecord:
        return replace(self, refusals=(*self.refusals, Refusal(code=code, at_ms=at_ms))[-REFUSAL_LOG_MAX:])

    def to_json(self) -> dict[str, Any]:
        if self == _NOTHING_YET:
            return {}  # most learners: two bytes in the hash, not two hundred
        return {"day": self.day, "day_count": self.day_count, "sent": [entry.to_json() for entry in self.sent],
                "time_zone": self.time_zone, "marketing_stopped": self.marketing_stopped,
                "marketing_changed_ms": self.marketing_changed_ms, "marketing_retry_ms": self.marketing_retry_ms,
                "window_refused_ms": self.window_refused_ms, "optin_token": self.optin_token,
                "optin_expires_ms": self.optin_expires_ms,
                "refusals": [refusal.to_json() for refusal in self.refusals]}

    @classmethod
    def from_json(cls, data: Any) -> Self:
        if not isinstance(data, dict):
            return cls()
        sent = data.get("sent")
        refusals = data.get("refusals")
        return cls(day=text(data, "day"), day_count=integer(data, "day_count"),
                   sent=tuple(Sent.from_json(item) for item in (sent if isinstance(sent, list) else [])),
                   time_zone=text(data, "time_zone"), marketing_stopped=data.get("marketing_stopped") is True,
                   marketing_changed_ms=integer(data, "marketing_changed_ms"),
                   marketing_retry_ms=integer(data, "marketing_retry_ms"),
                   window_refused_ms=integer(data, "window_refused_ms"), optin_token=text(data, "optin_token"),
                   optin_expires_ms=integer(data, "optin_expires_ms"),
                   refusals=tuple(Refusal.from_json(item) for item in
                                  (refusals if isinstance(refusals, list) else [])))


_NOTHING_YET = ProactiveRecord()
