"""Outbound rendering: a channel-neutral ``Reply`` -> the Graph API bodies of one channel. No I/O.

``render(channel, reply, user_id=..., phone=...)`` is the one entry point the dispatcher uses; the
channel's own renderer (``bot/channels/<name>/render.py``) returns the bodies in sending order, each
within that channel's limits (its ``display.check`` verifies that independently). Nothing here
imports flask, redis, dramatiq or requests: sending is ``bot.delivery.graph``'s job.
"""

from __future__ import annotations

from typing import Any

from bot import channels
from bot.model.events import Channel
from bot.model.replies import Reply


def render(channel: Channel | str, reply: Reply, *, user_id: str, phone: str = "") -> list[dict[str, Any]]:
    """The API bodies for ``reply`` on ``channel``, in sending order.

    ``user_id`` is the learner's id on the channel (WhatsApp BSUID or phone; Messenger PSID);
    ``phone`` (digits) is preferred as the recipient where the channel sends to phones.
    """
    return channels.parts_for(channel).render(reply, user_id=user_id, phone=phone)
