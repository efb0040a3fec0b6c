"""Playing a WhatsApp learner (terminal chat, dev server, transcripts, fake Graph API, tests). No I/O."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from bot.channels.parts import Body, DevParts


def text_payload(text: str, user: str, reply_from: str, *, at_ms: int = 0) -> dict[str, Any]:
    """A Cloud API text-message webhook body, as Meta sends it."""
    return _payload(user, reply_from, {"type": "text", "text": {"body": text}}, at_ms)


def tap_payload(option_id: str, title: str, user: str, reply_from: str, shown: int, *,
                at_ms: int = 0) -> dict[str, Any]:
    """A tap on a reply button (up to 3 options shown) or a list row (more)."""
    kind = "button_reply" if shown <= 3 else "list_reply"
    return _payload(user, reply_from, {"type": "interactive", "interactive": {
        "type": kind, kind: {"id": option_id, "title": title}}}, at_ms)


def _payload(user: str, reply_from: str, content: dict[str, Any], at_ms: int = 0) -> dict[str, Any]:
    seconds = at_ms // 1000 if at_ms else int(time.time())
    message = {"from": user, "id": f"wamid.dev{uuid.uuid4().hex}", "timestamp": str(seconds), **content}
    return {"object": "whatsapp_business_account", "entry": [{"id": "WABA_ID", "changes": [{
        "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "390200000000", "phone_number_id": reply_from},
            "contacts": [{"profile": {"name": "Dev"}, "wa_id": user}],
            "messages": [message]}}]}]}


def addressed_to(body: Body, user: str) -> bool:
    return body.get("to") == f"+{user}" or body.get("recipient") == user


def fake_answer(body: Body) -> tuple[Body, str]:
    if body.get("status") == "read":
        return {"success": True}, ""
    wamid = f"wamid.{uuid.uuid4().hex}"
    if body.get("to"):
        contact = {"input": body["to"], "wa_id": str(body["to"]).lstrip("+")}
    else:
        contact = {"input": body.get("recipient", ""), "user_id": body.get("recipient", "")}
    return {"messaging_product": "whatsapp", "contacts": [contact], "messages": [{"id": wamid}]}, wamid


def phone_of(user_id: str) -> str:
    return user_id if user_id.isascii() and user_id.isdigit() else ""


DEV = DevParts(
    send_user="393330000002", default_user="393330000001", draft_user="393330000009",
    transcript_user="39333",
    reply_from=lambda settings: settings.whatsapp_phone_number_id, phone_of=phone_of,
    text_payload=text_payload, tap_payload=tap_payload, addressed_to=addressed_to, fake_answer=fake_answer,
    fixtures=Path(__file__).resolve().parent / "fixtures",
    owns_body=lambda body: "messaging_product" in body, pair_limited=True)
