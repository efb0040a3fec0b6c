"""The Instagram Direct Send API call: its path. No I/O.

Its answer names the accepted message as on Messenger (``bot.channels.messaging_platform.send_api.accepted_id``).

Messenger Platform for Instagram: the call goes to the Graph API with the Page access token of the
Facebook Page linked to the Instagram professional account (``Settings.instagram_page_token``).
Meta's "Send a Message" page names the endpoint ``/PAGE-ID/messages`` and shows it as
``POST /me/messages?access_token=<PAGE_ACCESS_TOKEN>``; the webhook names the Instagram account
(``entry.id``), not the Page, so the call uses ``me``: with a Page token, ``me`` is that Page.
"""

from __future__ import annotations


def send_path(sender_id: str) -> str:
    """``me/messages``: the Page token picks the Page; ``sender_id`` (the Instagram account) is not in the path."""
    del sender_id  # one Page token per deployment, as for Messenger (MESSENGER_PAGE_TOKEN)
    return "me/messages"
