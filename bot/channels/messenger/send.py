"""The Messenger Send API call: its path and how its answer names the accepted message. No I/O."""

from __future__ import annotations

from typing import Any


def send_path(sender_id: str) -> str:
    """``{page_id}/messages``: replies go from the Page that received the message."""
    return f"{sender_id}/messages"


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
