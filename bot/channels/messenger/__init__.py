"""Messenger Platform (``object: "page"``): parse, render, limits, the send call, dev parts."""

from __future__ import annotations

from bot.channels.messaging_platform import send_api
from bot.channels.messenger import dev, display, entry, limits, parse, render, send
from bot.channels.messenger.channel import MESSENGER
from bot.channels.parts import ChannelParts, FlowLimits, OutsideWindow

__all__ = ["MESSENGER", "PARTS"]

PARTS = ChannelParts(
    channel=MESSENGER, title="Messenger", webhook_object="page",
    parse=parse.parse, render=render.render, read_receipt=None,
    describe=display.describe, bubble=display.bubble, check_limits=display.check,
    accepted_id=send_api.accepted_id, send_path=send.send_path,
    app_secret_setting="messenger_app_secret", token_setting="messenger_page_token",
    token_variable="MESSENGER_PAGE_TOKEN", token_permissions="pages_messaging (a Page access token)",
    flow_limits=FlowLimits(
        label_noun="quick reply", label_chars=limits.MS_QUICK_REPLY_TITLE_CHARS, message_chars=limits.MS_TEXT_CHARS,
        body_with_options_chars=limits.MS_TEXT_CHARS, caption_chars=limits.MS_TEXT_CHARS,
        options_max=limits.MS_QUICK_REPLIES_MAX),
    entry_link=entry.ENTRY_LINK, human_agent_ms=7 * 24 * 3_600_000,
    dev=dev.DEV, outside_window=OutsideWindow.OPT_IN_TOKEN,
)
