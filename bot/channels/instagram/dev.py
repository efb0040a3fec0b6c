"""Playing an Instagram learner (terminal chat, dev server, transcripts, fake Graph API, tests). No I/O.

The webhook bodies and Send API answers are the Messenger Platform's (``bot.channels.messaging_platform``).
"""

from __future__ import annotations

import uuid
from pathlib import Path

from bot.channels.messaging_platform.dev_bodies import DevBodies
from bot.channels.parts import Body, DevParts

DEV_ACCOUNT_ID = "17841400000000001"  # the Instagram professional account a dev learner writes to
_MID_PREFIX = "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOj"  # how Instagram mids begin (base64 of "ig_item:1:IGMessag...")


def _new_mid() -> str:
    return f"{_MID_PREFIX}{uuid.uuid4().hex}"


BODIES = DevBodies(webhook_object="instagram", inbound_mid=_new_mid, accepted_mid=_new_mid)
text_payload = BODIES.text_payload
tap_payload = BODIES.tap_payload
tap_choice = BODIES.tap_choice


def addressed_to(body: Body, user: str) -> bool:
    recipient = body.get("recipient")
    return isinstance(recipient, dict) and recipient.get("id") == user


def owns_body(body: Body) -> bool:
    """A Send API body to an IGSID (the same shape as a Messenger body to a PSID)."""
    recipient = body.get("recipient")
    return isinstance(recipient, dict) and "id" in recipient


DEV = DevParts(
    send_user="6000000000000002", default_user="6000000000000001", draft_user="6000000000000009",
    transcript_user="6000",
    reply_from=lambda settings: DEV_ACCOUNT_ID, phone_of=lambda user_id: "",
    text_payload=text_payload, tap_payload=tap_payload, tap_choice=tap_choice, addressed_to=addressed_to,
    fake_answer=BODIES.fake_answer,
    fixtures=Path(__file__).resolve().parent / "fixtures", owns_body=owns_body)
