"""The WhatsApp Cloud API limits, named with their units (docs/platform.md §6). Plain numbers.

When Meta's docs disagree with docs/platform.md, Meta wins: change the number here and nowhere else.
"""

from __future__ import annotations

# --- WhatsApp Cloud API (docs/platform.md §6) -------------------------------------------------
WA_TEXT_BODY_CHARS = 4096  # text.body [S7]
WA_CAPTION_CHARS = 1024  # image/video/document caption [S10]
WA_FOOTER_CHARS = 60  # interactive.footer.text, buttons and lists [S8][S9]
WA_HEADER_TEXT_CHARS = 60  # interactive.header.text: stated for lists [S9]; unverified for buttons [S8]

WA_BUTTON_BODY_CHARS = 1024  # interactive(type=button).body.text [S8]
WA_BUTTONS_MAX = 3  # reply buttons per message [S8]
WA_BUTTON_TITLE_CHARS = 20  # buttons[].reply.title [S8]
WA_BUTTON_ID_CHARS = 256  # buttons[].reply.id, unique within the message [S8]

WA_LIST_BODY_CHARS = 4096  # interactive(type=list).body.text [S9]
WA_LIST_BUTTON_CHARS = 20  # action.button: the label of the button that opens the list [S9]
WA_LIST_SECTIONS_MAX = 10  # action.sections [S9]
WA_LIST_ROWS_MAX = 10  # rows across all sections together [S9]
WA_SECTION_TITLE_CHARS = 24  # sections[].title, required when there is more than one section [S9]
WA_ROW_TITLE_CHARS = 24  # rows[].title [S9]
WA_ROW_DESCRIPTION_CHARS = 72  # rows[].description [S9]
WA_ROW_ID_CHARS = 200  # rows[].id [S9]
