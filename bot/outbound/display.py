"""Read rendered API bodies back: what the phone would show, and which platform limits they break.

* ``describe(channel, body) -> Shown``: the visible text and the tappable options (id, title) of
  one outbound body, for the terminal chat (``bottega chat``) and for tests. Media shows as
  ``[image: <link>]`` followed by its caption; a read receipt or sender action shows as ``""``.
* ``check_limits(channel, body) -> list[str]``: every violation of the send-API rules in
  PLATFORM.md sections 6-7 (lengths, counts, required keys, unique button ids), each naming the
  path in the body, what was found and what is allowed; ``[]`` means the body is fine.

The checker walks the body as plain JSON, independently of the renderers' code paths, and reads
its numbers from ``bot.outbound.limits`` only. No I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bot.events import Channel
from bot.outbound import limits

_WA_MEDIA = ("image", "video", "document", "audio", "sticker")
_WA_CAPTIONED = ("image", "video", "document")
_MS_MEDIA = ("image", "audio", "video", "file")
_E164 = re.compile(r"\+\d{5,15}")
_NO_LIMIT = 10**9  # required strings without a documented length limit


@dataclass(frozen=True, slots=True)
class Shown:
    """What one message looks like on the phone: its text and its options as (id, title)."""

    text: str
    options: tuple[tuple[str, str], ...] = ()


def describe(channel: Channel, body: dict[str, Any]) -> Shown:
    """The visible text and options of one rendered body of ``channel``."""
    if Channel(channel) is Channel.WHATSAPP:
        return _describe_whatsapp(body)
    return _describe_messenger(body)


def _describe_whatsapp(body: dict[str, Any]) -> Shown:
    kind = body.get("type", "")
    content = body.get(kind) or {}
    if "status" in body or not kind:
        return Shown("")
    if kind == "text":
        return Shown(content.get("body", ""))
    if kind in _WA_MEDIA:
        label = content.get("filename") or content.get("link") or content.get("id", "")
        return Shown("\n".join(filter(None, [f"[{kind}: {label}]", content.get("caption", "")])))
    if kind == "interactive":
        header = (content.get("header") or {}).get("text", "")
        footer = (content.get("footer") or {}).get("text", "")
        text = "\n".join(filter(None, [header, (content.get("body") or {}).get("text", ""), footer]))
        action = content.get("action") or {}
        options = [(b["reply"]["id"], b["reply"]["title"]) for b in action.get("buttons", [])]
        for section in action.get("sections", []):
            options.extend((row["id"], row["title"]) for row in section.get("rows", []))
        return Shown(text, tuple(options))
    if kind == "template":
        return Shown(f"[template: {content.get('name', '')}]")
    return Shown(f"[{kind}]")


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


def check_limits(channel: Channel, body: dict[str, Any]) -> list[str]:
    """Every platform-limit violation in one outbound body of ``channel``; ``[]`` if none."""
    problems: list[str] = []
    if not isinstance(body, dict):
        return [f"body: expected a JSON object, got {type(body).__name__}"]
    if Channel(channel) is Channel.WHATSAPP:
        _check_whatsapp(body, problems)
    else:
        _check_messenger(body, problems)
    return problems


# --- the walker's small steps ------------------------------------------------------------------


def _text(problems: list[str], path: str, value: Any, limit: int, *, required: bool = True) -> None:
    """A string of 1..limit characters (or absent, when not required)."""
    if value is None or value == "":
        if required:
            problems.append(f"{path}: missing or empty, expected 1-{limit} characters")
    elif not isinstance(value, str):
        problems.append(f"{path}: expected a string, got {type(value).__name__}")
    elif len(value) > limit:
        problems.append(f"{path}: {len(value)} characters, limit {limit}")


def _items(problems: list[str], path: str, value: Any, low: int, high: int) -> list[dict[str, Any]]:
    """A list of low..high objects; returns the objects to walk further."""
    if not isinstance(value, list):
        problems.append(f"{path}: expected a list of {low}-{high} items, got {type(value).__name__}")
        return []
    if not low <= len(value) <= high:
        problems.append(f"{path}: {len(value)} items, allowed {low}-{high}")
    objects = [item for item in value if isinstance(item, dict)]
    if len(objects) != len(value):
        problems.append(f"{path}: every item must be a JSON object")
    return objects


def _obj(problems: list[str], path: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        problems.append(f"{path}: missing, expected a JSON object")
        return {}
    return value


def _unique(problems: list[str], path: str, values: list[Any]) -> None:
    duplicates = sorted({str(v) for v in values if values.count(v) > 1})
    if duplicates:
        problems.append(f"{path}: must be unique within the message, repeated {duplicates}")


# --- WhatsApp Cloud API (PLATFORM.md section 6) ------------------------------------------------


def _check_whatsapp(body: dict[str, Any], problems: list[str]) -> None:
    if body.get("messaging_product") != "whatsapp":
        problems.append(f"messaging_product: expected 'whatsapp', got {body.get('messaging_product')!r}")
    if "status" in body:  # mark as read (optionally with a typing indicator)
        if body["status"] != "read":
            problems.append(f"status: expected 'read', got {body['status']!r}")
        _text(problems, "message_id", body.get("message_id"), _NO_LIMIT)
        return
    to, recipient = body.get("to"), body.get("recipient")
    if to is None and recipient is None:
        problems.append("to/recipient: missing, expected 'to' (+phone) or 'recipient' (BSUID)")
    if to is not None and not (isinstance(to, str) and _E164.fullmatch(to)):
        problems.append(f"to: expected '+' and country code then digits, got {to!r}")
    if recipient is not None:
        _text(problems, "recipient", recipient, _NO_LIMIT)
    if body.get("recipient_type", "individual") != "individual":
        problems.append(f"recipient_type: expected 'individual', got {body['recipient_type']!r}")
    kind = body.get("type")
    content = _obj(problems, f"{kind}", body.get(kind)) if isinstance(kind, str) else {}
    if kind == "text":
        _text(problems, "text.body", content.get("body"), limits.WA_TEXT_BODY_CHARS)
        if not isinstance(content.get("preview_url", False), bool):
            problems.append("text.preview_url: expected true or false")
    elif kind in _WA_MEDIA:
        if ("link" in content) == ("id" in content):
            problems.append(f"{kind}: expected exactly one of 'link' or 'id'")
        if kind in _WA_CAPTIONED:
            caption = content.get("caption")
            _text(problems, f"{kind}.caption", caption, limits.WA_CAPTION_CHARS, required=False)
        elif "caption" in content:
            problems.append(f"{kind}.caption: {kind} messages take no caption")
    elif kind == "interactive":
        _check_interactive(content, problems)
    elif kind == "template":
        _text(problems, "template.name", content.get("name"), _NO_LIMIT)
        language = _obj(problems, "template.language", content.get("language"))
        _text(problems, "template.language.code", language.get("code"), _NO_LIMIT)
    else:
        problems.append(f"type: {kind!r} is not a message type Bottega sends (text, media, interactive)")


def _check_interactive(content: dict[str, Any], problems: list[str]) -> None:
    kind = content.get("type")
    body_limit = limits.WA_BUTTON_BODY_CHARS if kind == "button" else limits.WA_LIST_BODY_CHARS
    _text(problems, "interactive.body.text", (content.get("body") or {}).get("text"), body_limit)
    if "footer" in content:
        footer = _obj(problems, "interactive.footer", content["footer"])
        _text(problems, "interactive.footer.text", footer.get("text"), limits.WA_FOOTER_CHARS)
    header = content.get("header")
    if isinstance(header, dict) and header.get("type") == "text":
        _text(problems, "interactive.header.text", header.get("text"), limits.WA_HEADER_TEXT_CHARS)
    action = _obj(problems, "interactive.action", content.get("action"))
    if kind == "button":
        _check_buttons(action, problems)
    elif kind == "list":
        _check_list(action, problems)
    else:
        problems.append(f"interactive.type: {kind!r} is not one Bottega sends (button, list)")


def _check_buttons(action: dict[str, Any], problems: list[str]) -> None:
    path = "interactive.action.buttons"
    buttons = _items(problems, path, action.get("buttons"), 1, limits.WA_BUTTONS_MAX)
    for i, button in enumerate(buttons):
        if button.get("type") != "reply":
            problems.append(f"{path}[{i}].type: expected 'reply', got {button.get('type')!r}")
        reply = _obj(problems, f"{path}[{i}].reply", button.get("reply"))
        _text(problems, f"{path}[{i}].reply.id", reply.get("id"), limits.WA_BUTTON_ID_CHARS)
        _text(problems, f"{path}[{i}].reply.title", reply.get("title"), limits.WA_BUTTON_TITLE_CHARS)
    replies = [b.get("reply") or {} for b in buttons]
    _unique(problems, f"{path}[].reply.id", [r.get("id") for r in replies])
    _unique(problems, f"{path}[].reply.title", [r.get("title") for r in replies])


def _check_list(action: dict[str, Any], problems: list[str]) -> None:
    _text(problems, "interactive.action.button", action.get("button"), limits.WA_LIST_BUTTON_CHARS)
    path = "interactive.action.sections"
    sections = _items(problems, path, action.get("sections"), 1, limits.WA_LIST_SECTIONS_MAX)
    row_ids: list[Any] = []
    for i, section in enumerate(sections):
        title, limit = section.get("title"), limits.WA_SECTION_TITLE_CHARS
        _text(problems, f"{path}[{i}].title", title, limit, required=len(sections) > 1)
        rows = _items(problems, f"{path}[{i}].rows", section.get("rows"), 1, limits.WA_LIST_ROWS_MAX)
        for j, row in enumerate(rows):
            row_path = f"{path}[{i}].rows[{j}]"
            _text(problems, f"{row_path}.id", row.get("id"), limits.WA_ROW_ID_CHARS)
            _text(problems, f"{row_path}.title", row.get("title"), limits.WA_ROW_TITLE_CHARS)
            description, limit = row.get("description"), limits.WA_ROW_DESCRIPTION_CHARS
            _text(problems, f"{row_path}.description", description, limit, required=False)
            row_ids.append(row.get("id"))
    if len(row_ids) > limits.WA_LIST_ROWS_MAX:
        total = f"{len(row_ids)} rows in all sections, limit {limits.WA_LIST_ROWS_MAX}"
        problems.append(f"{path}[].rows: {total}")
    _unique(problems, f"{path}[].rows[].id", row_ids)


# --- Messenger Send API (PLATFORM.md section 7) ------------------------------------------------


def _check_messenger(body: dict[str, Any], problems: list[str]) -> None:
    recipient = _obj(problems, "recipient", body.get("recipient"))
    if "user_ref" in recipient:  # a chat-plugin guest, until Messenger gives them a PSID
        _text(problems, "recipient.user_ref", recipient.get("user_ref"), _NO_LIMIT)
    else:
        _text(problems, "recipient.id", recipient.get("id"), _NO_LIMIT)
    messaging_type = body.get("messaging_type")
    if messaging_type not in ("RESPONSE", "UPDATE", "MESSAGE_TAG"):
        problems.append(f"messaging_type: expected RESPONSE, UPDATE or MESSAGE_TAG, got {messaging_type!r}")
    if messaging_type == "MESSAGE_TAG":
        _text(problems, "tag", body.get("tag"), _NO_LIMIT)
    if ("message" in body) == ("sender_action" in body):
        problems.append("message/sender_action: expected exactly one of them")
    if "message" not in body:
        return
    message = _obj(problems, "message", body["message"])
    contents = [key for key in ("text", "attachment", "attachments") if key in message]
    if len(contents) != 1:
        problems.append(f"message: expected exactly one of text, attachment, attachments; got {contents}")
    if "text" in message:
        _text(problems, "message.text", message["text"], limits.MS_TEXT_CHARS)
    if "attachment" in message:
        _check_attachment(_obj(problems, "message.attachment", message["attachment"]), problems)
    if "attachments" in message:
        items = _items(problems, "message.attachments", message["attachments"], 1, limits.MS_ATTACHMENTS_MAX)
        for i, item in enumerate(items):
            if item.get("type") != "image":
                problems.append(f"message.attachments[{i}].type: only images can be sent together")
    if "quick_replies" in message:
        path = "message.quick_replies"
        quick_replies = _items(problems, path, message["quick_replies"], 1, limits.MS_QUICK_REPLIES_MAX)
        for i, reply in enumerate(quick_replies):
            content_type = reply.get("content_type")
            if content_type == "text":
                _text(problems, f"{path}[{i}].title", reply.get("title"), limits.MS_QUICK_REPLY_TITLE_CHARS)
                _text(problems, f"{path}[{i}].payload", reply.get("payload"), limits.MS_PAYLOAD_CHARS)
            elif content_type not in ("user_phone_number", "user_email"):
                problems.append(f"{path}[{i}].content_type: expected text, user_phone_number or user_email")


def _check_attachment(attachment: dict[str, Any], problems: list[str]) -> None:
    kind = attachment.get("type")
    payload = _obj(problems, "message.attachment.payload", attachment.get("payload"))
    if kind in _MS_MEDIA:
        if not (payload.get("url") or payload.get("attachment_id")):
            problems.append("message.attachment.payload: expected 'url' or 'attachment_id'")
        return
    if kind != "template" or payload.get("template_type") != "button":
        problems.append(f"message.attachment: {kind!r} is not one Bottega sends (media or button template)")
        return
    text, limit = payload.get("text"), limits.MS_BUTTON_TEMPLATE_TEXT_CHARS
    _text(problems, "message.attachment.payload.text", text, limit)
    path = "message.attachment.payload.buttons"
    low, high = limits.MS_BUTTON_TEMPLATE_BUTTONS_MIN, limits.MS_BUTTON_TEMPLATE_BUTTONS_MAX
    for i, button in enumerate(_items(problems, path, payload.get("buttons"), low, high)):
        _text(problems, f"{path}[{i}].title", button.get("title"), limits.MS_BUTTON_TITLE_CHARS)
        if button.get("type") == "postback":
            _text(problems, f"{path}[{i}].payload", button.get("payload"), limits.MS_PAYLOAD_CHARS)
        elif button.get("type") == "web_url":
            _text(problems, f"{path}[{i}].url", button.get("url"), _NO_LIMIT)
        else:
            problems.append(f"{path}[{i}].type: expected postback or web_url, got {button.get('type')!r}")
