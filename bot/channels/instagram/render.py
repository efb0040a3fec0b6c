"""Instagram Direct Send API renderer: one channel-neutral ``Reply`` -> message bodies. No I/O.

``render(reply, user_id=IGSID)`` returns, in sending order, the JSON bodies for ``POST /me/messages``
with the Page access token (``bot.channels.instagram.send``), each
``{"recipient": {"id": igsid}, "messaging_type": "RESPONSE", "message": {...}}`` and within the
limits in ``bot.channels.instagram.limits``:

1. the media, if any: an image or a video as ``attachment{type, payload{url}}``; a document as a
   text with its name and link, since Instagram's "Send a Message" lists images, video and audio
   only (the link opens in the in-app browser). Instagram has no captions: the caption follows as
   text;
2. the text, split at paragraph/sentence/word boundaries into parts that each stay under both of
   Instagram's text rules (fewer than 1000 characters, at most 1000 UTF-8 bytes).

Options are always readable in the text too: Instagram shows no quick replies on desktop, so the
text (or, with no text, the list label ``reply.choose_label``) ends with one numbered line per
option ("1. Titolo"), and the engine reads a typed number or label as the choice. With 1-13 options
the last part also carries them as ``quick_replies`` (``content_type: text``, title, payload = option
id); with more, the numbered lines alone.

Option titles are guaranteed <= 20 characters by the flow check; a longer title, an empty one or a
payload over 1000 characters raises ``ValueError`` naming the option: a renderer never cuts.
"""

from __future__ import annotations

from typing import Any

from bot.channels.instagram import limits
from bot.channels.messaging_platform.send_api import quick_replies
from bot.channels.splitting import split_text
from bot.model.replies import Media, MediaKind, Reply

_ATTACHMENT_TYPE = {MediaKind.IMAGE: "image", MediaKind.VIDEO: "video"}


def render(reply: Reply, *, user_id: str, phone: str = "") -> list[dict[str, Any]]:
    """The Send API bodies for ``reply``, in order; ``[]`` if the reply is empty."""
    igsid = user_id  # Instagram learners have no phone to send to
    if not igsid:
        raise ValueError("an Instagram reply needs the learner's Instagram-scoped id (IGSID); got ''")
    messages: list[dict[str, Any]] = []
    if reply.media is not None:
        messages.extend(_media(reply.media))
        messages.extend({"text": part} for part in split_for_instagram(reply.media.caption))
    messages.extend(_text_and_options(reply))
    kind = "UPDATE" if reply.proactive else "RESPONSE"  # Bottega writing first inside the window
    return [{"recipient": {"id": igsid}, "messaging_type": kind, "message": m} for m in messages]


def split_for_instagram(text: str) -> list[str]:
    """``text`` in parts of fewer than 1000 characters and at most 1000 UTF-8 bytes each.

    ``split_text`` counts characters; a part whose bytes are over the limit (accents are 2 bytes,
    emoji 4) is split again with a character limit shrunk by its bytes per character, so the cuts stay
    at paragraph, sentence and word boundaries.
    """
    return [piece for part in split_text(text, limits.IG_TEXT_CHARS) for piece in _within_bytes(part)]


def _within_bytes(part: str) -> list[str]:
    size_bytes = len(part.encode("utf-8"))
    if size_bytes <= limits.IG_TEXT_UTF8_BYTES:
        return [part]
    # Fewer characters than the part has (its bytes are over the limit), and at least one: each round
    # works on shorter text, and a single code point is at most 4 bytes, so this ends.
    chars = max(1, len(part) * limits.IG_TEXT_UTF8_BYTES // size_bytes)
    return [piece for sub in split_text(part, chars) for piece in _within_bytes(sub)]


def _media(media: Media) -> list[dict[str, Any]]:
    if media.kind in _ATTACHMENT_TYPE:
        return [{"attachment": {"type": _ATTACHMENT_TYPE[media.kind], "payload": {"url": media.url}}}]
    shown = f"📄 {media.filename}\n{media.url}" if media.filename else f"📄 {media.url}"
    return [{"text": part} for part in split_for_instagram(shown)]


def _text_and_options(reply: Reply) -> list[dict[str, Any]]:
    options = reply.options
    text = reply.text.strip()
    if options:
        lead = text or reply.choose_label.strip()
        numbered = "\n".join(f"{number}. {option.title}" for number, option in enumerate(options, start=1))
        text = f"{lead}\n\n{numbered}" if lead else numbered
    messages: list[dict[str, Any]] = [{"text": part} for part in split_for_instagram(text)]
    if options and len(options) <= limits.IG_QUICK_REPLIES_MAX:
        messages[-1]["quick_replies"] = quick_replies(
            options, channel_title="Instagram", title_chars=limits.IG_QUICK_REPLY_TITLE_CHARS,
            payload_chars=limits.IG_PAYLOAD_CHARS)
    return messages
