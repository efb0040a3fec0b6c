"""Playing a Messenger learner (terminal chat, dev server, transcripts, fake Graph API, tests). No I/O."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from bot.channels.parts import Body, DevParts

DEV_PAGE_ID = "200000000000002"  # the Page a dev learner writes to


def text_payload(text: str, user: str, reply_from: str, *, at_ms: int = 0) -> dict[str, Any]:
    """A Messenger text-message webhook body, as Meta sends it."""
    return _payload(user, reply_from, {"mid": f"m_dev{uuid.uuid4().hex}", "text": text}, at_ms)


def tap_payload(option_id: str, title: str, user: str, reply_from: str, shown: int, *,
                at_ms: int = 0) -> dict[str, Any]:
    """A tap on a quick reply: its title as text, its payload beside it."""
    return _payload(user, reply_from, {"mid": f"m_dev{uuid.uuid4().hex}", "text": title,
                                       "quick_reply": {"payload": option_id}}, at_ms)


def _payload(user: str, page_id: str, message: dict[str, Any], at_ms: int = 0) -> dict[str, Any]:
    now = at_ms or int(time.time() * 1000)
    return {"object": "page", "entry": [{"id": page_id, "time": now, "messaging": [{
        "sender": {"id": user}, "recipient": {"id": page_id}, "timestamp": now, "message": message}]}]}


def addressed_to(body: Body, user: str) -> bool:
    recipient = body.get("recipient")
    if not isinstance(recipient, dict):
        return False
    user_ref = recipient.get("user_ref")
    return user in (recipient.get("id"), f"ref.{user_ref}")


def fake_answer(body: Body) -> tuple[Body, str]:
    recipient = body.get("recipient")
    recipient = recipient if isinstance(recipient, dict) else {}
    if "sender_action" in body:
        return {"recipient_id": recipient.get("id", "")}, ""
    mid = f"m_{uuid.uuid4().hex}"
    return {"recipient_id": recipient.get("id", ""), "message_id": mid}, mid


DEV = DevParts(
    send_user="7000000000000002", default_user="7000000000000001", draft_user="7000000000000009",
    transcript_user="7000",
    reply_from=lambda settings: DEV_PAGE_ID, phone_of=lambda user_id: "",
    text_payload=text_payload, tap_payload=tap_payload, addressed_to=addressed_to, fake_answer=fake_answer,
    fixtures=Path(__file__).resolve().parent / "fixtures",
    owns_body=lambda body: isinstance(body.get("recipient"), dict))
