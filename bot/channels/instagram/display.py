"""Instagram Direct bodies read back: what the phone shows (``describe``) and which Send API limits they break
(``check``), walking the body as plain JSON independently of the renderer. No I/O.

``check`` accepts what Bottega sends on Instagram and nothing else: a text (with text quick replies) or
one image, video or audio attachment, to an IGSID. Templates are refused: Instagram does not show the
button or generic template in its web version (``limits`` [IG-TEMPLATES]), and every choice must be
answerable there.
"""

from __future__ import annotations

from typing import Any

from bot.channels import body_checks as checks
from bot.channels.body_checks import Shown
from bot.channels.bubbles import Bubble, BubbleKind, Choice, ChoiceStyle
from bot.channels.instagram import limits


def describe(body: dict[str, Any]) -> Shown:
    """The visible text and options of one rendered Instagram body."""
    message = body.get("message")
    if not message:
        return Shown("")  # a sender action (typing_on, mark_seen)
    options = tuple((reply.get("payload", ""), reply.get("title", "")) for reply in message.get("quick_replies", []))
    if "text" in message:
        return Shown(message["text"], options)
    attachment = message.get("attachment") or {}
    payload = attachment.get("payload") or {}
    return Shown(f"[{attachment.get('type')}: {payload.get('url', '')}]", options)


def bubble(body: dict[str, Any]) -> Bubble:
    """How one rendered Instagram body shows on the phone (the browser simulator)."""
    message = body.get("message")
    if not isinstance(message, dict):
        return Bubble(kind=BubbleKind.ACTION, action=str(body.get("sender_action", "")))
    quick = tuple(Choice(id=reply.get("payload", ""), title=reply.get("title", ""), tap="quick_reply")
                  for reply in message.get("quick_replies", []))
    chips: dict[str, Any] = {"style": ChoiceStyle.QUICK_REPLIES, "choices": quick} if quick else {}
    if "text" in message:
        return Bubble(kind=BubbleKind.TEXT, text=message["text"], **chips)
    attachment = message.get("attachment") or {}
    payload = attachment.get("payload") or {}
    return Bubble(kind=BubbleKind.MEDIA, media_kind=str(attachment.get("type", "")), url=payload.get("url", ""),
                  **chips)


def check(body: dict[str, Any]) -> list[str]:
    """Every Send API limit this body breaks; ``[]`` if none."""
    if not isinstance(body, dict):
        return [f"body: expected a JSON object, got {type(body).__name__}"]
    problems: list[str] = []
    recipient = checks.obj(problems, "recipient", body.get("recipient"))
    checks.text(problems, "recipient.id", recipient.get("id"), checks.NO_LIMIT)
    messaging_type = body.get("messaging_type")
    if messaging_type not in ("RESPONSE", "UPDATE", "MESSAGE_TAG"):
        problems.append(f"messaging_type: expected RESPONSE, UPDATE or MESSAGE_TAG, got {messaging_type!r}")
    if messaging_type == "MESSAGE_TAG":
        checks.text(problems, "tag", body.get("tag"), checks.NO_LIMIT)
    if ("message" in body) == ("sender_action" in body):
        problems.append("message/sender_action: expected exactly one of them")
    if "message" in body:
        _check_message(checks.obj(problems, "message", body["message"]), problems)
    return problems


def _check_message(message: dict[str, Any], problems: list[str]) -> None:
    contents = [key for key in ("text", "attachment", "attachments") if key in message]
    if contents not in (["text"], ["attachment"]):
        problems.append(f"message: expected exactly one of text or attachment; got {contents}")
    if "text" in message:
        _check_text(message["text"], problems)
    if "attachment" in message:
        _check_attachment(checks.obj(problems, "message.attachment", message["attachment"]), problems)
    if "quick_replies" in message:
        path = "message.quick_replies"
        quick_replies = checks.items(problems, path, message["quick_replies"], 1, limits.IG_QUICK_REPLIES_MAX)
        for i, reply in enumerate(quick_replies):
            if reply.get("content_type") != "text":
                problems.append(f"{path}[{i}].content_type: expected text (Instagram quick replies are plain text)")
            checks.text(problems, f"{path}[{i}].title", reply.get("title"), limits.IG_QUICK_REPLY_TITLE_CHARS)
            checks.text(problems, f"{path}[{i}].payload", reply.get("payload"), limits.IG_PAYLOAD_CHARS)


def _check_text(text: Any, problems: list[str]) -> None:
    checks.text(problems, "message.text", text, limits.IG_TEXT_CHARS)
    if isinstance(text, str) and len(text.encode("utf-8")) > limits.IG_TEXT_UTF8_BYTES:
        problems.append(f"message.text: {len(text.encode('utf-8'))} UTF-8 bytes, limit {limits.IG_TEXT_UTF8_BYTES}")


def _check_attachment(attachment: dict[str, Any], problems: list[str]) -> None:
    kind = attachment.get("type")
    if kind not in limits.IG_ATTACHMENT_TYPES:
        problems.append(f"message.attachment.type: {kind!r} is not one Bottega sends on Instagram "
                        f"(expected one of {', '.join(limits.IG_ATTACHMENT_TYPES)}; templates do not show on the web)")
        return
    payload = checks.obj(problems, "message.attachment.payload", attachment.get("payload"))
    if not (payload.get("url") or payload.get("attachment_id")):
        problems.append("message.attachment.payload: expected 'url' or 'attachment_id'")
