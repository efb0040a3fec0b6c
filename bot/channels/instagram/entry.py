"""An ``ig.me`` link that opens a chat with the Instagram account and passes a start code as ``ref``. No I/O.

``https://ig.me/m/<username>?ref=<ref>``: the ref comes back in a ``messaging_referral`` webhook
(``referral{ref, source: "IGME", type: "OPEN_THREAD"}``) (Meta, "Using ig.me links").
"""

from __future__ import annotations

import re
from urllib.parse import quote

from bot.channels.parts import EntryLink

_HANDLE = re.compile(r"[A-Za-z0-9._]{1,30}")


def link(username: str, code: str, text: str) -> str:
    username = username.strip().removeprefix("@")
    if not _HANDLE.fullmatch(username):
        raise ValueError(f"Instagram account {username!r}: expected its handle, e.g. bottega_corso")
    return f"https://ig.me/m/{username}?ref={quote(code, safe='')}"


ENTRY_LINK = EntryLink(build=link, account_setting="instagram_username", account_variable="INSTAGRAM_USERNAME")
