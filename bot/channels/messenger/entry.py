"""An ``m.me`` link that opens a chat with the Page and passes a start code as ``ref``. No I/O.

``https://m.me/<page username or id>?ref=<ref>``: the ref comes back in a ``messaging_referrals`` webhook
(an existing thread) or inside the Get Started ``postback.referral`` (a new one) (docs/platform.md §5).
"""

from __future__ import annotations

import re
from urllib.parse import quote

from bot.channels.parts import EntryLink

_ACCOUNT = re.compile(r"[A-Za-z0-9.]{1,100}")


def link(page: str, code: str, text: str) -> str:
    page = page.strip().removeprefix("@")
    if not _ACCOUNT.fullmatch(page):
        raise ValueError(f"Messenger Page {page!r}: expected the Page's username or id, e.g. bottega.corso")
    return f"https://m.me/{page}?ref={quote(code, safe='')}"


ENTRY_LINK = EntryLink(build=link, account_setting="messenger_page_username",
                       account_variable="MESSENGER_PAGE_USERNAME")
