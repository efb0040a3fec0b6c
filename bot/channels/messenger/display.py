"""Messenger bodies read back: what the phone shows (``describe``) and which Send API limits they break
(``check``), walking the body as plain JSON independently of the renderer (docs/platform.md §7). No I/O."""

from __future__ import annotations

from typing import Any

from bot.channels import body_checks as checks
from bot.channels.body_checks import Shown
from bot.channels.bubbles import Bubble, BubbleKind, Choice, ChoiceStyle
from bot.channels.messenger import limits

_MS_MEDIA = ("image", "audio", "video", "file")


def describe(body: dict[str, Any]) -> Shown:
    """The visible text and options of one rendered Messenger body."""
    return _describe_messenger(body)


def bubble(body: dict[str, Any]) -> Bubble:
    """How one rendered Messenger body shows on the phone (the browser simulator)."""
    message = body.get("message")
    if not isinstance(message, dict):
        return Bubble(kind=BubbleKind.ACTION, action=str(body.get("sender_action", "")))
    quick = tuple(Choice(id=reply.get("payload", ""), title=reply.get("title", ""), tap="quick_reply")
                  for reply in message.get("quick_replies", []) if reply.get("content_type") == "text")
    chips: dict[str, Any] = {"style": ChoiceStyle.QUICK_REPLIES, "choices": quick} if quick else {}
    if "text" in message:
        return Bubble(kind=BubbleKind.TEXT, text=message["text"], **chips)
    attachment = message.get("attachment") or {}
    payload = attachment.get("payload") or {}
    if attachment.get("type") == "template":
        buttons = tuple(Choice(id=b.get("payload", ""), title=b.get("title", ""), url=b.get("url", ""),
                               tap="postback" if b.get("type") == "postback" else "")
                        for b in payload.get("buttons", []))
        return Bubble(kind=BubbleKind.TEXT, text=payload.get("text", ""), style=ChoiceStyle.BUTTON_TEMPLATE,
                      choices=buttons)
    if attachment.get("type") == "file":
        url = payload.get("url", "")
        return Bubble(kind=BubbleKind.DOCUMENT, media_kind="file", url=url, filename=url.rsplit("/", 1)[-1],
                      **chips)
    if attachment:
        return Bubble(kind=BubbleKind.MEDIA, media_kind=str(attachment.get("type", "")), url=payload.get("url", ""),
                      **chips)
    images = [item.get("payload", {}).get("url", "") for item in message.get("attachments", [])]
    return Bubble(kind=BubbleKind.MEDIA, media_kind="image", url=images[0] if images else "",
                  text="\n".join(images[1:]), **chips)


def check(body: dict[str, Any]) -> list[str]:
    """Every Send API limit this body breaks; ``[]`` if none."""
    problems: list[str] = []
    if not isinstance(body, dict):
        return [f"body: expected a JSON object, got {type(body).__name__}"]
    _check_messenger(body, problems)
    return problems


def _describe_messenger(body: dict[str, Any]) -> Shown:
    message = body.get("message")
    if not message:
        return Shown("")  # a sender action (typing_on, mark_seen)
    options = tuple(
        (reply.get("payload", reply["content_type"]), reply.get("title", reply["content_type"]))
        for reply in message.get("quick_replies", [])
    )
    if "text" in message:
        return Shown(message["text"], options)
    attachment = message.get("attachment") or {}
    payload = attachment.get("payload") or {}
    if attachment.get("type") == "template":
        buttons = payload.get("buttons", [])
        shown = tuple((b.get("payload") or b.get("url", ""), b["title"]) for b in buttons)
        return Shown(payload.get("text", ""), shown + options)
    if attachment:
        return Shown(f"[{attachment.get('type')}: {payload.get('url', '')}]", options)
    images = [f"[image: {a['payload'].get('url', '')}]" for a in message.get("attachments", [])]
    return Shown("\n".join(images), options)


def _check_messenger(body: dict[str, Any], problems: list[str]) -> None:
    recipient = checks.obj(problems, "recipient", body.get("recipient"))
    if "user_ref" in recipient:  # a chat-plugin guest, until Messenger gives them a PSID
        checks.text(problems, "recipient.user_ref", recipient.get("user_ref"), checks.NO_LIMIT)
    elif "notification_messages_token" in recipient:  # a marketing message, outside the window
        checks.text(problems, "recipient.notification_messages_token", recipient["notification_messages_token"],
                    checks.NO_LIMIT)
    else:
        checks.text(problems, "recipient.id", recipient.get("id"), checks.NO_LIMIT)
    messaging_type = body.get("messaging_type")
    if messaging_type is None and "notification_messages_token" in recipient:
        pass  # a marketing message carries no messaging_type
    elif messaging_type not in ("RESPONSE", "UPDATE", "MESSAGE_TAG"):
        problems.append(f"messaging_type: expected RESPONSE, UPDATE or MESSAGE_TAG, got {messaging_type!r}")
    if messaging_type == "MESSAGE_TAG":
        checks.text(problems, "tag", body.get("tag"), checks.NO_LIMIT)
    if ("message" in body) == ("sender_action" in body):
        problems.append("message/sender_action: expected exactly one of them")
    if "message" not in body:
        return
    message = checks.obj(problems, "message", body["message"])
    contents = [key for key in ("text", "attachment", "attachments") if key in message]
    if len(contents) != 1:
        problems.append(f"message: expected exactly one of text, attachment, attachments; got {contents}")
    if "text" in message:
        checks.text(problems, "message.text", message["text"], limits.MS_TEXT_CHARS)
    if "attachment" in message:
        _check_attachment(checks.obj(problems, "message.attachment", message["attachment"]), problems)
    if "attachments" in message:
        items = checks.items(problems, "message.attachments", message["attachments"], 1, limits.MS_ATTACHMENTS_MAX)
        for i, item in enumerate(items):
            if item.get("type") != "image":
                problems.append(f"message.attachments[{i}].type: only images can be sent together")
    if "quick_replies" in message:
        path = "message.quick_replies"
        quick_replies = checks.items(problems, path, message["quick_replies"], 1, limits.MS_QUICK_REPLIES_MAX)
        for i, reply in enumerate(quick_replies):
            content_type = reply.get("content_type")
            if content_type == "text":
                checks.text(problems, f"{path}[{i}].title", reply.get("title"), limits.MS_QUICK_REPLY_TITLE_CHARS)
                checks.text(problems, f"{path}[{i}].payload", reply.get("payload"), limits.MS_PAYLOAD_CHARS)
            elif content_type not in ("user_phone_number", "user_email"):
                problems.append(f"{path}[{i}].content_type: expected text, user_phone_number or user_email")


def _check_attachment(attachment: dict[str, Any], problems: list[str]) -> None:
    kind = attachment.get("type")
    payload = checks.obj(problems, "message.attachment.payload", attachment.get("payload"))
    if kind in _MS_MEDIA:
        if not (payload.get("url") or payload.get("attachment_id")):
            problems.append("message.attachment.payload: expected 'url' or 'attachment_id'")
        return
    if kind != "template" or payload.get("template_type") != "button":
        problems.append(f"message.attachment: {kind!r} is not one Bottega sends (media or button template)")
        return
    text, limit = payload.get("text"), limits.MS_BUTTON_TEMPLATE_TEXT_CHARS
    checks.text(problems, "message.attachment.payload.text", text, limit)
    path = "message.attachment.payload.buttons"
    low, high = limits.MS_BUTTON_TEMPLATE_BUTTONS_MIN, limits.MS_BUTTON_TEMPLATE_BUTTONS_MAX
    for i, button in enumerate(checks.items(problems, path, payload.get("buttons"), low, high)):
        checks.text(problems, f"{path}[{i}].title", button.get("title"), limits.MS_BUTTON_TITLE_CHARS)
        if button.get("type") == "postback":
            checks.text(problems, f"{path}[{i}].payload", button.get("payload"), limits.MS_PAYLOAD_CHARS)
        elif button.get("type") == "web_url":
            checks.text(problems, f"{path}[{i}].url", button.get("url"), checks.NO_LIMIT)
        else:
            problems.append(f"{path}[{i}].type: expected postback or web_url, got {button.get('type')!r}")
