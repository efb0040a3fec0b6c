"""A ``wa.me`` link that opens a chat with the business number, its text prefilled with a start code. No I/O.

``https://wa.me/<number>?text=<text>``: the number in international form, digits only (no ``+``, spaces or
leading zeros), the text URL-encoded; the learner sends it as their first message (docs/platform.md §3).
"""

from __future__ import annotations

import re
from urllib.parse import quote

from bot.channels.parts import EntryLink


def link(number: str, code: str, text: str) -> str:
    digits = re.sub(r"[^0-9]", "", number).lstrip("0")
    if not 6 <= len(digits) <= 15:
        raise ValueError(f"WhatsApp number {number!r}: expected the international number, e.g. +39 02 1234 5678")
    return f"https://wa.me/{digits}?text={quote(text or code, safe='')}"


ENTRY_LINK = EntryLink(build=link, account_setting="whatsapp_display_number",
                       account_variable="WHATSAPP_DISPLAY_NUMBER", carries_text=True)
