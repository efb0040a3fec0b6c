"""The Instagram Direct Send API call: its path and how its answer names the accepted message. No I/O.

Messenger Platform for Instagram: the call goes to the Graph API with the Page access token of the
Facebook Page linked to the Instagram professional account (``Settings.instagram_page_token``).
Meta's "Send a Message" page names the endpoint ``/PAGE-ID/messages`` and shows it as
``POST /me/messages?access_token=<PAGE_ACCESS_TOKEN>``; the webhook names the Instagram account
(``entry.id``), not the Page, so the call uses ``me``: with a Page token, ``me`` is that Page.
"""

from __future__ import annotations

from typing import Any


def send_path(sender_id: str) -> str:
    """``me/messages``: the Page token picks the Page; ``sender_id`` (the Instagram account) is not in the path."""
    del sender_id  # one Page token per deployment, as for Messenger (MESSENGER_PAGE_TOKEN)
    return "me/messages"


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
