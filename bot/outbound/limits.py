"""The send-API limits of both channels, as named constants. Plain numbers, no I/O.

Source: /work/shared/PLATFORM.md section 0 fact 9, section 6 (WhatsApp Cloud API: [S7] text,
[S8] reply buttons, [S9] lists, [S10] media) and section 7 (Messenger Send API: [M10] text,
[M11] quick replies, [M12] button template). When Meta's docs disagree with that page, Meta wins:
change the number here and nowhere else.

Lengths are ``*_CHARS``: Meta counts characters; we count Python characters (code points), see
``bot.outbound.splitting``. Counts are ``*_MAX`` / ``*_MIN`` (items in a list).
"""

from __future__ import annotations

# --- WhatsApp Cloud API (PLATFORM.md section 6) -------------------------------------------------
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

# --- Messenger Send API (PLATFORM.md section 7) -------------------------------------------------
MS_TEXT_CHARS = 2000  # message.text [M20]; very old docs said 640
MS_QUICK_REPLIES_MAX = 13  # message.quick_replies [M11]
MS_QUICK_REPLY_TITLE_CHARS = 20  # quick_replies[].title; Meta truncates longer titles [M11]
MS_PAYLOAD_CHARS = 1000  # quick reply payload and postback button payload [M11][M12]
MS_BUTTON_TEMPLATE_TEXT_CHARS = 640  # attachment template_type=button, payload.text [M12]
MS_BUTTON_TEMPLATE_BUTTONS_MIN = 1  # [M12]
MS_BUTTON_TEMPLATE_BUTTONS_MAX = 3  # [M12]
MS_BUTTON_TITLE_CHARS = 20  # postback / web_url button title [M12]
MS_ATTACHMENTS_MAX = 30  # message.attachments[]: several images in one message [M10]
