"""What a dev learner's messages look like on a Messenger Platform channel, and the fake Send API's answers.

For the terminal chat, the dev server, transcripts, the fake Graph API and the tests; never on the
request path. Messenger and Instagram Direct post the same webhook envelope (``object`` aside) and answer
a send the same way; only the look of their mids differs. No I/O.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.channels.bubbles import Choice
from bot.channels.parts import Body


@dataclass(frozen=True, kw_only=True, slots=True)
class DevBodies:
    """One channel's webhook bodies (``object: webhook_object``) and Send API answers.

    The methods fit ``bot.channels.parts.DevParts`` (``text_payload``, ``tap_payload``, ``tap_choice``,
    ``fake_answer``); ``at_ms`` 0 means now.
    """

    webhook_object: str  # "page", "instagram"
    inbound_mid: Callable[[], str]  # a new mid for a message the learner sends
    accepted_mid: Callable[[], str]  # a new mid for a message the fake Send API accepts

    def text_payload(self, text: str, user: str, reply_from: str, *, at_ms: int = 0) -> dict[str, Any]:
        """A text-message webhook body, as Meta sends it."""
        return self._payload(user, reply_from, {"mid": self.inbound_mid(), "text": text}, at_ms)

    def tap_payload(self, option_id: str, title: str, user: str, reply_from: str, shown: int, *,
                    at_ms: int = 0) -> dict[str, Any]:
        """A tap on a quick reply: its title as text, its payload beside it."""
        return self._payload(user, reply_from, {"mid": self.inbound_mid(), "text": title,
                                                "quick_reply": {"payload": option_id}}, at_ms)

    def tap_choice(self, choice: Choice, user: str, reply_from: str, *, at_ms: int = 0) -> dict[str, Any]:
        """A tap on a choice as ``display.bubble`` showed it: a quick reply, or a button template's postback."""
        if choice.tap != "postback":
            return self.tap_payload(choice.id, choice.title, user, reply_from, 0, at_ms=at_ms)
        postback = {"mid": self.inbound_mid(), "title": choice.title, "payload": choice.id}
        body = self._payload(user, reply_from, postback, at_ms)
        event = body["entry"][0]["messaging"][0]
        event["postback"] = event.pop("message")  # a postback comes in its own field, not as a message
        return body

    def fake_answer(self, body: Body) -> tuple[Body, str]:
        """Meta's answer to a sent body and the mid it gives (``""`` for a sender action)."""
        recipient = body.get("recipient")
        recipient_id = recipient.get("id", "") if isinstance(recipient, dict) else ""
        if "sender_action" in body:
            return {"recipient_id": recipient_id}, ""
        mid = self.accepted_mid()
        return {"recipient_id": recipient_id, "message_id": mid}, mid

    def _payload(self, user: str, owner_id: str, message: dict[str, Any], at_ms: int) -> dict[str, Any]:
        now = at_ms or int(time.time() * 1000)
        return {"object": self.webhook_object, "entry": [{"id": owner_id, "time": now, "messaging": [{
            "sender": {"id": user}, "recipient": {"id": owner_id}, "timestamp": now, "message": message}]}]}
