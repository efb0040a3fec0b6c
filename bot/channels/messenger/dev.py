"""Playing a Messenger learner (terminal chat, dev server, transcripts, fake Graph API, tests). No I/O.

The webhook bodies and Send API answers are the Messenger Platform's (``bot.channels.messaging_platform``).
"""

from __future__ import annotations

import uuid
from pathlib import Path

from bot.channels.messaging_platform.dev_bodies import DevBodies
from bot.channels.parts import Body, DevParts

DEV_PAGE_ID = "200000000000002"  # the Page a dev learner writes to

BODIES = DevBodies(webhook_object="page", inbound_mid=lambda: f"m_dev{uuid.uuid4().hex}",
                   accepted_mid=lambda: f"m_{uuid.uuid4().hex}")
text_payload = BODIES.text_payload
tap_payload = BODIES.tap_payload
tap_choice = BODIES.tap_choice


def addressed_to(body: Body, user: str) -> bool:
    recipient = body.get("recipient")
    if not isinstance(recipient, dict):
        return False
    user_ref = recipient.get("user_ref")
    return user in (recipient.get("id"), f"ref.{user_ref}")


DEV = DevParts(
    send_user="7000000000000002", default_user="7000000000000001", draft_user="7000000000000009",
    transcript_user="7000",
    reply_from=lambda settings: DEV_PAGE_ID, phone_of=lambda user_id: "",
    text_payload=text_payload, tap_payload=tap_payload, tap_choice=tap_choice, addressed_to=addressed_to,
    fake_answer=BODIES.fake_answer,
    fixtures=Path(__file__).resolve().parent / "fixtures",
    owns_body=lambda body: isinstance(body.get("recipient"), dict))
