"""The Send API parts Messenger and Instagram Direct share: quick replies and the call's answer. No I/O.

Both take ``message.quick_replies[]`` of ``{"content_type": "text", "title", "payload"}`` (the limits are
each channel's, in its ``limits``), and both answer an accepted message with
``{"recipient_id", "message_id"}`` (docs/platform.md §7).
"""

from __future__ import annotations

from typing import Any

from bot.model.replies import Option


def quick_replies(options: tuple[Option, ...], *, channel_title: str, title_chars: int,
                  payload_chars: int) -> list[dict[str, Any]]:
    """One text quick reply per option (title, payload = option id), in order.

    A title that is empty or over ``title_chars``, an id that is empty or over ``payload_chars``, or two
    options with one id raise ``ValueError`` naming the option and ``channel_title``: a renderer never cuts.
    """
    payloads = [option.id for option in options]
    if len(set(payloads)) != len(payloads):
        raise ValueError(f"option ids must be unique within a message, got {payloads}")
    replies = []
    for option in options:
        if not option.title or len(option.title) > title_chars:
            raise ValueError(
                f"option {option.id!r}: title {option.title!r} has {len(option.title)} characters;"
                f" {channel_title} quick replies need 1-{title_chars}."
                " Shorten it in the flow (renderers never cut)"
            )
        if not option.id or len(option.id) > payload_chars:
            raise ValueError(
                f"option {option.title!r}: id has {len(option.id)} characters; {channel_title} payloads need"
                f" 1-{payload_chars}. Shorten it in the flow"
            )
        replies.append({"content_type": "text", "title": option.title, "payload": option.id})
    return replies


def accepted_id(answer: Any) -> str | None:
    """``message_id`` (a mid); "" for a sender action (answered with ``recipient_id`` only); None if unreadable."""
    if not isinstance(answer, dict):
        return None
    mid = answer.get("message_id")
    if isinstance(mid, str) and mid:
        return mid
    if "recipient_id" in answer and "message_id" not in answer:
        return ""
    return None
