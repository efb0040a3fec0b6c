"""What a learner's record keeps about a handover to a person: open or not, since when, the conversation. No I/O.

Stored as JSON in the ``handover`` field of the progress hash (``bot.tutor.progress``), read tolerantly like
the other typed parts. While a handover is open the tutor answers nothing and keeps what the learner writes
here, with the admins' replies, for the inbox (``bot.handover``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Self

from bot.model.stored_json import integer, text

MESSAGES_MAX = 100  # the conversation kept for the inbox, newest last
TEXT_MAX = 2000  # characters kept of one message


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
        return cls(at_ms=integer(data, "at_ms"), who=text(data, "who"), text=text(data, "text"), by=text(data, "by"),
                   tag=text(data, "tag"))


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
        return cls(open=data.get("open") is True, requested_ms=integer(data, "requested_ms"),
                   reason=text(data, "reason"), answered_ms=integer(data, "answered_ms"),
                   closed_ms=integer(data, "closed_ms"), closed_by=text(data, "closed_by"),
                   unrecognised=integer(data, "unrecognised"), before=text(data, "before"),
                   count=integer(data, "count"),
                   messages=tuple(InboxMessage.from_json(item) for item in
                                  (messages if isinstance(messages, list) else [])))


_NO_HANDOVER = HandoverState()
