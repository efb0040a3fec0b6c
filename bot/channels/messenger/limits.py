"""The Messenger Send API limits, named with their units (docs/platform.md §7). Plain numbers.

When Meta's docs disagree with docs/platform.md, Meta wins: change the number here and nowhere else.
"""

from __future__ import annotations

# --- Messenger Send API (docs/platform.md §7) -------------------------------------------------
MS_TEXT_CHARS = 2000  # message.text [M20]; very old docs said 640
MS_QUICK_REPLIES_MAX = 13  # message.quick_replies [M11]
MS_QUICK_REPLY_TITLE_CHARS = 20  # quick_replies[].title; Meta truncates longer titles [M11]
MS_PAYLOAD_CHARS = 1000  # quick reply payload and postback button payload [M11][M12]
MS_BUTTON_TEMPLATE_TEXT_CHARS = 640  # attachment template_type=button, payload.text [M12]
MS_BUTTON_TEMPLATE_BUTTONS_MIN = 1  # [M12]
MS_BUTTON_TEMPLATE_BUTTONS_MAX = 3  # [M12]
MS_BUTTON_TITLE_CHARS = 20  # postback / web_url button title [M12]
MS_ATTACHMENTS_MAX = 30  # message.attachments[]: several images in one message [M10]
