"""What a Messenger Platform item says, where Messenger and Instagram Direct agree. No I/O.

Each reader returns ``kind`` and the kind's fields (text, payload, media_type, referral, detail), the
keyword arguments of an ``InboundEvent`` besides who and when:

* ``postback`` (a button, Get Started, a menu item or an icebreaker tap) -> CHOICE on its payload, else
  on its ``referral.ref``, else IGNORE "postback without payload";
* ``referral`` (an m.me / ig.me link or an ad, in an existing thread) -> CHOICE on ``ref``, else IGNORE;
* a ``message``'s quick reply -> CHOICE (``quick_reply_choice``); its text -> TEXT, else its attachments
  -> MEDIA (``text_or_attachments``); the rest of a message (echoes, stickers, deletions, story replies)
  is the channel's to read.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from bot.channels.raw import ident, items, mapping, text
from bot.channels.webhook_body import UnreadableItem
from bot.model.events import EventKind, Referral

_UPPER_WORD = re.compile(r"[A-Z][A-Z0-9_-]{0,39}")


def postback_content(postback: dict[str, Any]) -> dict[str, Any]:
    """Button, Get Started, menu or icebreaker tap; with no payload the referral's ref stands in."""
    title = text(postback.get("title"))
    payload = ident(postback.get("payload")) or _ref(postback.get("referral"))
    if not payload:
        return ignore("postback without payload")
    return {"kind": EventKind.CHOICE, "payload": payload, "text": title,
            "referral": _referral(postback.get("referral"))}


def referral_content(referral: dict[str, Any]) -> dict[str, Any]:
    ref = _ref(referral)
    if not ref:
        return ignore("referral without ref")
    return {"kind": EventKind.CHOICE, "payload": ref, "referral": _referral(referral)}


def quick_reply_choice(message: dict[str, Any]) -> dict[str, Any] | None:
    """A quick reply tap (its payload, with its title as text), or None when the message is not one."""
    payload = ident(mapping(message.get("quick_reply")).get("payload"))
    if not payload:
        return None
    return {"kind": EventKind.CHOICE, "payload": payload, "text": text(message.get("text"))}


def text_or_attachments(message: dict[str, Any],
                        media_type: Callable[[list[dict[str, Any]]], str]) -> dict[str, Any]:
    """TEXT when the message has text, else MEDIA of ``media_type(attachments)``; unreadable with neither."""
    message_text = text(message.get("text"))
    if message_text:
        return {"kind": EventKind.TEXT, "text": message_text}
    attachments = [mapping(attachment) for attachment in items(message.get("attachments"))]
    if attachments:
        return {"kind": EventKind.MEDIA, "media_type": media_type(attachments)}
    raise UnreadableItem("with a message without text, quick reply or attachments")


def ignore(detail: str) -> dict[str, Any]:
    return {"kind": EventKind.IGNORE, "detail": detail}


def is_echo(message: dict[str, Any]) -> bool:
    """Our own outbound message coming back (``is_echo``)."""
    return flag(message.get("is_echo"))


def flag(value: object) -> bool:
    """A boolean field as Meta sends it (a bool or, defensively, "true")."""
    return value in (True, "true")


def own_mid(item: dict[str, Any]) -> str:
    """The mid of this event itself: a message's or a postback's (referrals and statuses have none)."""
    for key in ("message", "postback"):
        mid = ident(mapping(item.get(key)).get("mid"))
        if mid:
            return mid
    return ""


def _referral(value: object) -> Referral | None:
    """An m.me / ig.me link's or an ad's ``referral{ref, source, type}`` (an ad's ``ad_id`` too), or None."""
    referral = mapping(value)
    found = Referral(ref=ident(referral.get("ref"))[:250], source=_upper_word(referral.get("source")),
                     type=_upper_word(referral.get("type")), source_id=ident(referral.get("ad_id"))[:100])
    return found if found != Referral() else None


def _ref(referral: object) -> str:
    return ident(mapping(referral).get("ref"))


def _upper_word(value: object) -> str:
    """``SHORTLINK``, ``ADS``, ``IGME``, ``OPEN_THREAD``: Meta's upper-case vocabulary, else ""."""
    return value if isinstance(value, str) and _UPPER_WORD.fullmatch(value) else ""
