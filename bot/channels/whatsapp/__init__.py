"""WhatsApp Cloud API (``object: "whatsapp_business_account"``): parse, render, limits, the send call, dev parts."""

from __future__ import annotations

from bot.channels.parts import ChannelParts, FlowLimits, OutsideWindow
from bot.channels.whatsapp import dev, display, entry, limits, parse, render, send
from bot.channels.whatsapp.channel import WHATSAPP

__all__ = ["WHATSAPP", "PARTS"]

PARTS = ChannelParts(
    channel=WHATSAPP, title="WhatsApp", webhook_object="whatsapp_business_account",
    parse=parse.parse, render=render.render, read_receipt=render.mark_read,
    describe=display.describe, bubble=display.bubble, check_limits=display.check,
    accepted_id=send.accepted_id, send_path=send.send_path,
    app_secret_setting="whatsapp_app_secret", token_setting="whatsapp_token", token_variable="WHATSAPP_TOKEN",
    token_permissions="whatsapp_business_messaging (a system-user token)",
    flow_limits=FlowLimits(
        label_noun="button", label_chars=limits.WA_BUTTON_TITLE_CHARS, message_chars=limits.WA_TEXT_BODY_CHARS,
        body_with_options_chars=limits.WA_BUTTON_BODY_CHARS,
        caption_chars=limits.WA_CAPTION_CHARS, options_max=limits.WA_LIST_ROWS_MAX),
    entry_link=entry.ENTRY_LINK,
    dev=dev.DEV, outside_window=OutsideWindow.TEMPLATE, billed=True,
)
