"""What a learner's record keeps about a handover to a person: open or not, since when, the conversation. No I/O.

Stored as JSON in the ``handover`` field of the progress hash (``bot.tutor.progress``), read tolerantly like
the other typed parts. While a handover is open the tutor answers nothing and keeps what the learner writes
here, with the admins' replies, for the inbox (``bot.handover``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Self

MESSAGES_MAX = 100  # the conversation kept for the inbox, newest last
TEXT_MAX = 2000  # characters kept of one message


def _int(data: dict[str, Any], key: str) -> int:
    value = data.get(key, 0)
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _str(data: dict[str, Any], key: str) -> str:
    value = data.get(key, "")
    return value if isinstance(value, str) else ""


@dataclass(frozen=True, kw_only=True, slots=True)
class InboxMessage:
    """One message of a handed-over conversation."""

    at_ms: int
    who: str  # "learner" | "admin" | "bot" (what Bottega said when it handed over)
    text: str
    by: str = ""  # the admin's name, for an admin's reply
    tag: str = ""  # how an admin's reply went: "" inside the window, "HUMAN_AGENT" after it (Messenger)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"at_ms": self.at_ms, "who": self.who, "text": self.text}
        data.update({name: getattr(self, name) for name in ("by", "tag") if getattr(self, name)})
        return data

    @classmethod
    def from_json(cls, data: Any) -> Self:
        data = data if isinstance(data, dict) else {}
        return cls(at_ms=_int(data, "at_ms"), who=_str(data, "who"), text=_str(data, "text"), by=_str(data, "by"),
                   tag=_str(data, "tag"))


@dataclass(frozen=True, kw_only=True, slots=True)
class HandoverState:
    open: bool = False  # the bot is paused for this learner: a person answers
    requested_ms: int = 0  # when the learner accepted the handover (the inbox shows its age from here)
    reason: str = ""  # "asked" (operatore/persona/human) | "not_understood" (three texts in a row)
    answered_ms: int = 0  # the first admin reply of this handover (0: nobody answered yet)
    closed_ms: int = 0  # when the last handover ended
    closed_by: str = ""  # "learner" (riprendi) | "admin" (hand back)
    unrecognised: int = 0  # texts in a row Bottega could not read (three offer a handover)
    before: str = ""  # what the learner was being asked when the offer came (restored on "no")
    messages: tuple[InboxMessage, ...] = ()  # this handover's conversation
    count: int = 0  # handovers so far

    def with_changes(self, **changes: Any) -> HandoverState:
        return replace(self, **changes)

    def with_message(self, message: InboxMessage) -> HandoverState:
        kept = replace(message, text=message.text[:TEXT_MAX])
        return replace(self, messages=(*self.messages, kept)[-MESSAGES_MAX:])

    def to_json(self) -> dict[str, Any]:
        if self == _NO_HANDOVER:
            return {}
        return {"open": self.open, "requested_ms": self.requested_ms, "reason": self.reason,
                "answered_ms": self.answered_ms, "closed_ms": self.closed_ms, "closed_by": self.closed_by,
                "unrecognised": self.unrecognised, "before": self.before, "count": self.count,
                "messages": [message.to_json() for message in self.messages]}

    @classmethod
    def from_json(cls, data: Any) -> Self:
        if not isinstance(data, dict):
            return cls()
        messages = data.get("messages")
        return cls(open=data.get("open") is True, requested_ms=_int(data, "requested_ms"),
                   reason=_str(data, "reason"), answered_ms=_int(data, "answered_ms"),
                   closed_ms=_int(data, "closed_ms"), closed_by=_str(data, "closed_by"),
                   unrecognised=_int(data, "unrecognised"), before=_str(data, "before"), count=_int(data, "count"),
                   messages=tuple(InboxMessage.from_json(item) for item in
                                  (messages if isinstance(messages, list) else [])))


_NO_HANDOVER = HandoverState()
