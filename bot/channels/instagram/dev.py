"""Playing an Instagram learner (terminal chat, dev server, transcripts, fake Graph API, tests). No I/O."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from bot.channels.parts import Body, DevParts

DEV_ACCOUNT_ID = "17841400000000001"  # the Instagram professional account a dev learner writes to
_MID_PREFIX = "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOj"  # how Instagram mids begin (base64 of "ig_item:1:IGMessag...")


def text_payload(text: str, user: str, reply_from: str, *, at_ms: int = 0) -> dict[str, Any]:
    """An Instagram text-message webhook body, as Meta sends it."""
    return _payload(user, reply_from, {"mid": _new_mid(), "text": text}, at_ms)


def tap_payload(option_id: str, title: str, user: str, reply_from: str, shown: int, *,
                at_ms: int = 0) -> dict[str, Any]:
    """A tap on a quick reply: its title as text, its payload beside it."""
    return _payload(user, reply_from, {"mid": _new_mid(), "text": title, "quick_reply": {"payload": option_id}},
                    at_ms)


def _payload(user: str, account_id: str, message: dict[str, Any], at_ms: int = 0) -> dict[str, Any]:
    now = at_ms or int(time.time() * 1000)
    return {"object": "instagram", "entry": [{"id": account_id, "time": now, "messaging": [{
        "sender": {"id": user}, "recipient": {"id": account_id}, "timestamp": now, "message": message}]}]}


def _new_mid() -> str:
    return f"{_MID_PREFIX}{uuid.uuid4().hex}"


def addressed_to(body: Body, user: str) -> bool:
    recipient = body.get("recipient")
    return isinstance(recipient, dict) and recipient.get("id") == user


def fake_answer(body: Body) -> tuple[Body, str]:
    recipient = body.get("recipient")
    igsid = recipient.get("id", "") if isinstance(recipient, dict) else ""
    if "sender_action" in body:
        return {"recipient_id": igsid}, ""
    mid = _new_mid()
    return {"recipient_id": igsid, "message_id": mid}, mid


def owns_body(body: Body) -> bool:
    """A Send API body to an IGSID (the same shape as a Messenger body to a PSID)."""
    recipient = body.get("recipient")
    return isinstance(recipient, dict) and "id" in recipient


DEV = DevParts(
    send_user="6000000000000002", default_user="6000000000000001", draft_user="6000000000000009",
    transcript_user="6000",
    reply_from=lambda settings: DEV_ACCOUNT_ID, phone_of=lambda user_id: "",
    text_payload=text_payload, tap_payload=tap_payload, addressed_to=addressed_to, fake_answer=fake_answer,
    fixtures=Path(__file__).resolve().parent / "fixtures", owns_body=owns_body)
