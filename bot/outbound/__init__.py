"""Outbound rendering: channel-neutral ``Reply`` -> the Graph API bodies of one channel. No I/O.

``render(channel, reply, user_id=..., phone=...)`` is the one entry point the dispatcher uses; it
returns the bodies in sending order, each within the platform limits of ``bot.outbound.limits``
(``bot.outbound.display.check_limits`` verifies that independently). Modules:

    limits.py     the platform limits, named with their units
    splitting.py  long text -> parts at paragraph/sentence/word boundaries
    whatsapp.py   Cloud API bodies (text, reply buttons, lists, media, mark-as-read)
    messenger.py  Send API bodies (text, quick replies, attachments)
    display.py    body -> what the phone shows (terminal chat, tests) and the limit checker

Nothing here imports flask, redis, dramatiq or requests: sending is ``bot.sender``'s job.
"""

from __future__ import annotations

from typing import Any

from bot.events import Channel
from bot.outbound import messenger, whatsapp
from bot.replies import Reply


def render(channel: Channel, reply: Reply, *, user_id: str, phone: str = "") -> list[dict[str, Any]]:
    """The API bodies for ``reply`` on ``channel``, in sending order.

    ``user_id`` is the learner's id on the channel (WhatsApp BSUID or phone; Messenger PSID);
    ``phone`` (WhatsApp only, digits) is preferred as the recipient when known.
    """
    channel = Channel(channel)
    if channel is Channel.WHATSAPP:
        return whatsapp.render(reply, user_id=user_id, phone=phone)
    return messenger.render(reply, psid=user_id)
