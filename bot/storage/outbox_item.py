"""One rendered API call waiting in a learner's outbox: typed, with its JSON form. No I/O.

Written by the dispatcher (``bot.dispatch``) in the atomic commit, read and rewritten by the sender
(``bot.delivery.outbox``). The JSON keys are the contract between the two (and with the Lua scripts in
``bot.storage.store``, which read ``ephemeral`` and ``proactive``); a field this version does not know is
kept on rewrite.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True, kw_only=True, slots=True)
class OutboxItem:
    id: str
    channel: str  # bot.model.events.Channel value
    sender_id: str  # WhatsApp phone_number_id / Messenger Page id: the path of the send call
    body: dict[str, Any]  # the Graph API request body
    created_ms: int
    ephemeral: bool = False  # a re-prompt: dropped unsent once a later turn adds replies (bot.model.replies.Reply)
    proactive: str = ""  # Bottega wrote first ("reminder"...): dropped unsent when the learner opts out
    attempts: int = 0  # transient failures so far
    not_before_ms: int = 0  # backing off until then
    last_error_code: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # keys written by a newer version, kept as they were

    @classmethod
    def new(cls, *, channel: str, sender_id: str, body: dict[str, Any], created_ms: int,
            ephemeral: bool = False, proactive: str = "") -> OutboxItem:
        return cls(id=uuid.uuid4().hex, channel=channel, sender_id=sender_id, body=body,
                   created_ms=created_ms, ephemeral=ephemeral, proactive=proactive)

    def to_json(self) -> str:
        data: dict[str, Any] = {**self.extra, "id": self.id, "channel": self.channel, "sender_id": self.sender_id,
                                "body": self.body, "created_ms": self.created_ms}
        if self.ephemeral:
            data["ephemeral"] = True
        if self.proactive:
            data["proactive"] = self.proactive
        if self.attempts:
            data.update(attempts=self.attempts, not_before_ms=self.not_before_ms,
                        last_error_code=self.last_error_code)
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: bytes | str) -> OutboxItem | None:
        """The item, or None when ``raw`` is not the JSON object the contract describes."""
        try:
            data = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        required = {"id": str, "channel": str, "sender_id": str, "body": dict, "created_ms": int}
        if not all(isinstance(data.get(name), kind) for name, kind in required.items()) or not data["id"]:
            return None

        def number(name: str, default: int | None) -> Any:
            value = data.get(name)
            return value if isinstance(value, int) and not isinstance(value, bool) else default

        known = {*required, "ephemeral", "proactive", "attempts", "not_before_ms", "last_error_code"}
        proactive = data.get("proactive")
        return cls(id=data["id"], channel=data["channel"], sender_id=data["sender_id"], body=data["body"],
                   created_ms=data["created_ms"], ephemeral=data.get("ephemeral") is True,
                   proactive=proactive if isinstance(proactive, str) else "",
                   attempts=number("attempts", 0) or 0, not_before_ms=number("not_before_ms", 0) or 0,
                   last_error_code=number("last_error_code", None),
                   extra={k: v for k, v in data.items() if k not in known})

    def failed(self, *, code: int, not_before_ms: int) -> OutboxItem:
        """This item after one more transient failure."""
        return replace(self, attempts=self.attempts + 1, last_error_code=code, not_before_ms=not_before_ms)
