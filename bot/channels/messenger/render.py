"""Messenger Send API renderer: one channel-neutral ``Reply`` -> message bodies. No I/O.

``render(reply, user_id=PSID)`` returns, in sending order, the JSON bodies for
``POST /{page_id}/messages`` (docs/platform.md §7), each
``{"recipient": {"id": psid}, "messaging_type": "RESPONSE", "message": {...}}`` and within the
limits in ``bot.channels.limits``. A proactive reply (``Reply.proactive``) goes as ``UPDATE``; one with a
``notification_token`` (outside the window, the learner's marketing-messages opt-in) goes to
``recipient.notification_messages_token`` instead of the PSID. A ``template`` is WhatsApp's: its text is sent.

1. the media, if any, as ``attachment{type: image|video|file, payload{url, is_reusable: true}}``
   (Messenger has no captions: the caption follows as text; a document's filename is not sent);
2. the text, split at paragraph/sentence/word boundaries into parts of at most 2000 characters:

   * 1-13 options: ``quick_replies`` (``content_type: text``, title, payload = option id) on the
     last part; with no text, the list label (``reply.choose_label``) carries them;
   * more than 13: plain text with one numbered line ("1. Titolo") per option appended; the
     engine reads a typed number as the choice.

Option titles are guaranteed <= 20 characters by the flow check; a longer title, an empty one or a
payload over 1000 characters raises ``ValueError`` naming the option: a renderer never cuts.
"""

from __future__ import annotations

from typing import Any

from bot.channels.messaging_platform.send_api import quick_replies
from bot.channels.messenger import limits
from bot.channels.messenger.parse import USER_REF_PREFIX
from bot.channels.splitting import split_text
from bot.model.replies import Media, MediaKind, Reply

_ATTACHMENT_TYPE = {MediaKind.IMAGE: "image", MediaKind.VIDEO: "video", MediaKind.DOCUMENT: "file"}


def render(reply: Reply, *, user_id: str, phone: str = "") -> list[dict[str, Any]]:
    """The Send API bodies for ``reply``, in order; ``[]`` if the reply is empty."""
    psid = user_id  # a PSID (or ref.<user_ref>); Messenger learners have no phone to send to
    if not psid:
        raise ValueError("a Messenger reply needs the learner's page-scoped id (PSID); got ''")
    messages: list[dict[str, Any]] = []
    if reply.media is not None:
        messages.append(_attachment(reply.media))
        messages.extend({"text": part} for part in split_text(reply.media.caption, limits.MS_TEXT_CHARS))
    messages.extend(_text_and_options(reply))
    if reply.notification_token:  # outside the window: the learner's marketing-messages token (docs/platform.md §9)
        return [{"recipient": {"notification_messages_token": reply.notification_token}, "message": m}
                for m in messages]
    if reply.human_agent:  # a person answering after the window closed: the HUMAN_AGENT tag (7 days)
        return [{"recipient": recipient(psid), "messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT", "message": m}
                for m in messages]
    kind = "UPDATE" if reply.proactive else "RESPONSE"  # Bottega writing first inside the window
    return [{"recipient": recipient(psid), "messaging_type": kind, "message": m} for m in messages]


def recipient(user_id: str) -> dict[str, str]:
    """The Send API ``recipient``: ``{"id": PSID}``, or ``{"user_ref": ...}`` for a chat-plugin guest
    (``bot.channels.messenger.parse`` names them ``ref.<user_ref>``)."""
    if user_id.startswith(USER_REF_PREFIX):
        return {"user_ref": user_id.removeprefix(USER_REF_PREFIX)}
    return {"id": user_id}


def _attachment(media: Media) -> dict[str, Any]:
    payload = {"url": media.url, "is_reusable": True}
    return {"attachment": {"type": _ATTACHMENT_TYPE[media.kind], "payload": payload}}


def _text_and_options(reply: Reply) -> list[dict[str, Any]]:
    options = reply.options
    if len(options) > limits.MS_QUICK_REPLIES_MAX:
        numbered = "\n".join(f"{number}. {option.title}" for number, option in enumerate(options, start=1))
        text = f"{reply.text.strip()}\n\n{numbered}" if reply.text.strip() else numbered
        return [{"text": part} for part in split_text(text, limits.MS_TEXT_CHARS)]
    text = reply.text if (reply.text.strip() or not options) else reply.choose_label
    messages: list[dict[str, Any]] = [{"text": part} for part in split_text(text, limits.MS_TEXT_CHARS)]
    if options and not messages:
        raise ValueError("options need a text to carry them: Reply.text and Reply.choose_label are blank")
    if options:
        messages[-1]["quick_replies"] = quick_replies(
            options, channel_title="Messenger", title_chars=limits.MS_QUICK_REPLY_TITLE_CHARS,
            payload_chars=limits.MS_PAYLOAD_CHARS)
    return messages
