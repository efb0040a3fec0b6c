"""Outbound rendering: a channel-neutral ``Reply`` -> the Graph API bodies of one channel. No I/O.

``render(channel, reply, user_id=..., phone=...)`` renders one reply: the channel's own renderer
(``bot/channels/<name>/render.py``) returns the bodies in sending order, each within that channel's
limits (its ``display.check`` verifies that independently). ``render_turn`` is what the dispatcher
uses for a turn's replies: fewer, fuller messages (below). Nothing here imports flask, redis,
dramatiq or requests: sending is ``bot.delivery.graph``'s job.

Fewer, fuller messages: a text said just before a message with options rides on it, and so on back
through a turn's texts, as long as the question's bubble holds them (a WhatsApp interactive body holds
1,024 characters with reply buttons, 4,096 with a list; a Messenger text with quick replies 2,000; an
Instagram one 999 characters and 1,000 bytes): the channel's renderer makes no more bodies of the text
and the question together than of the question alone. Otherwise they stay separate bubbles, as
written. Every Graph call costs the worker CPU and, where Meta charges per message, the shop money.
"""

from __future__ import annotations

from dataclasses import replace
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


def render_turn(channel: Channel | str, replies: tuple[Reply, ...] | list[Reply], *, user_id: str,
                phone: str = "") -> list[tuple[Reply, list[dict[str, Any]]]]:
    """A turn's replies as (reply, its bodies) in sending order, each text folded into the message with options
    that follows it while that makes fewer bodies (module docstring). The texts are joined by a blank line."""
    parts = channels.parts_for(channel)
    rendered: list[tuple[Reply, list[dict[str, Any]]]] = []
    for reply in replies:
        rendered.append((reply, parts.render(reply, user_id=user_id, phone=phone)))
        while len(rendered) > 1 and _can_carry(rendered[-2][0], rendered[-1][0]):  # texts before it, as they fit
            (before, before_bodies), (question, bodies) = rendered[-2:]
            joined = replace(question, text=f"{before.text.strip()}\n\n{question.text.strip()}",
                             ephemeral=before.ephemeral and question.ephemeral)  # a lesson's text is never dropped
            joined_bodies = parts.render(joined, user_id=user_id, phone=phone)
            if len(joined_bodies) > len(bodies):  # it does not fit in the question's bubble: as written
                break
            rendered[-2:] = [(joined, joined_bodies)]
    return rendered


def _can_carry(before: Reply, reply: Reply) -> bool:
    """Whether ``reply`` (a question with options) may carry the plain text said just ``before`` it: the same
    kind of message (the same proactive purpose, window and language), no media. Joined, they are
    ephemeral only if both were (a re-prompt that carries a lesson's text is kept like the lesson)."""
    return (bool(reply.options) and not before.options and reply.media is None and before.media is None
            and before.template is None and reply.template is None
            and bool(before.text.strip()) and bool(reply.text.strip())
            and before.proactive == reply.proactive
            and before.notification_token == reply.notification_token and before.lang == reply.lang)
