"""The Messenger Send API call: its path. No I/O.

Its answer names the accepted message as Instagram Direct's does
(``bot.channels.messaging_platform.send_api.accepted_id``).
"""

from __future__ import annotations


def send_path(sender_id: str) -> str:
    """``{page_id}/messages``: replies go from the Page that received the message."""
    return f"{sender_id}/messages"
