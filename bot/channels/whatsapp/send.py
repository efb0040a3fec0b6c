"""The WhatsApp Cloud API send call: its path and how its answer names the accepted message. No I/O."""

from __future__ import annotations

from typing import Any


def send_path(sender_id: str) -> str:
    """``{phone_number_id}/messages``: replies go from the number that received the message."""
    return f"{sender_id}/messages"


def accepted_id(answer: Any) -> str | None:
    """``messages[0].id`` (a wamid); "" for a mark-read or typing indicator (``success``); None if unreadable."""
    if not isinstance(answer, dict):
        return None
    if answer.get("success") is True:
        return ""
    messages = answer.get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[0], dict):
        wamid = messages[0].get("id")
        return wamid if isinstance(wamid, str) and wamid else None
    return None
