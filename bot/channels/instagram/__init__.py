"""Instagram Direct (Messenger Platform for Instagram, ``object: "instagram"``): parse, render, limits, the send
call, dev parts."""

from __future__ import annotations

from bot.channels.instagram import dev, display, entry, limits, parse, render, send
from bot.channels.instagram.channel import INSTAGRAM
from bot.channels.messaging_platform import send_api
from bot.channels.parts import ChannelParts, FlowLimits

__all__ = ["INSTAGRAM", "PARTS"]

PARTS = ChannelParts(
    channel=INSTAGRAM, title="Instagram", webhook_object="instagram",
    parse=parse.parse, render=render.render,
    read_receipt=None,  # a mark_seen sender action names the learner, not the message: none is sent
    describe=display.describe, bubble=display.bubble, check_limits=display.check,
    accepted_id=send_api.accepted_id, send_path=send.send_path,
    app_secret_setting="instagram_app_secret", token_setting="instagram_page_token",
    token_variable="INSTAGRAM_PAGE_TOKEN",
    token_permissions="instagram_basic, instagram_manage_messages and pages_manage_metadata (a Page access token)",
    flow_limits=FlowLimits(
        # Texts are split into parts (render.split_for_instagram) and options are appended as numbered lines,
        # so every text limit here is the text part's: fewer than 1000 characters.
        label_noun="quick reply", label_chars=limits.IG_QUICK_REPLY_TITLE_CHARS, message_chars=limits.IG_TEXT_CHARS,
        body_with_options_chars=limits.IG_TEXT_CHARS, caption_chars=limits.IG_TEXT_CHARS,
        options_max=limits.IG_QUICK_REPLIES_MAX),
    entry_link=entry.ENTRY_LINK,
    dev=dev.DEV,
)
