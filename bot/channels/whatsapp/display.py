"""WhatsApp bodies read back: what the phone shows (``describe``) and which Cloud API limits they break
(``check``), walking the body as plain JSON independently of the renderer (docs/platform.md §6). No I/O."""

from __future__ import annotations

import re
from typing import Any

from bot.channels import body_checks as checks
from bot.channels.body_checks import Shown
from bot.channels.bubbles import Bubble, BubbleKind, Choice, ChoiceStyle
from bot.channels.whatsapp import limits

_WA_MEDIA = ("image", "video", "document", "audio", "sticker")
_WA_CAPTIONED = ("image", "video", "document")
_E164 = re.compile(r"\+\d{5,15}")


def describe(body: dict[str, Any]) -> Shown:
    """The visible text and options of one rendered WhatsApp body."""
    return _describe_whatsapp(body)


def bubble(body: dict[str, Any]) -> Bubble:
    """How one rendered WhatsApp body shows on the phone (the browser simulator)."""
    if "status" in body:  # mark as read (and maybe a typing indicator): the learner's ticks turn blue
        return Bubble(kind=BubbleKind.RECEIPT, read_message_id=str(body.get("message_id", "")))
    kind = str(body.get("type", ""))
    found = body.get(kind)
    content: dict[str, Any] = found if isinstance(found, dict) else {}
    if kind == "text":
        return Bubble(kind=BubbleKind.TEXT, text=content.get("body", ""))
    if kind == "document":
        url = content.get("link") or content.get("id", "")
        return Bubble(kind=BubbleKind.DOCUMENT, media_kind=kind, url=url, text=content.get("caption", ""),
                      filename=content.get("filename") or url.rsplit("/", 1)[-1])
    if kind in _WA_MEDIA:
        return Bubble(kind=BubbleKind.MEDIA, media_kind=kind, url=content.get("link") or content.get("id", ""),
                      text=content.get("caption", ""))
    if kind == "interactive":
        return _interactive_bubble(content)
    if kind == "template":
        return _template_bubble(content)
    return Bubble(kind=BubbleKind.UNKNOWN, text=f"[{kind}]")


def _interactive_bubble(content: dict[str, Any]) -> Bubble:
    action = content.get("action") or {}
    shown: dict[str, Any] = {"kind": BubbleKind.TEXT, "text": (content.get("body") or {}).get("text", ""),
             "header": (content.get("header") or {}).get("text", ""),
             "footer": (content.get("footer") or {}).get("text", "")}
    if content.get("type") == "list":
        rows = tuple(Choice(id=row["id"], title=row["title"], description=row.get("description", ""),
                            tap="list_reply", section=section.get("title", ""))
                     for section in action.get("sections", []) for row in section.get("rows", []))
        return Bubble(**shown, style=ChoiceStyle.LIST, choices=rows, list_label=action.get("button", ""))
    buttons = tuple(Choice(id=b["reply"]["id"], title=b["reply"]["title"], tap="button_reply")
                    for b in action.get("buttons", []))
    return Bubble(**shown, style=ChoiceStyle.BUTTONS if buttons else ChoiceStyle.NONE, choices=buttons)


def _template_bubble(content: dict[str, Any]) -> Bubble:
    """A template names its approved text; the body carries only its parameters and button payloads."""
    language = (content.get("language") or {}).get("code", "")
    parameters: list[str] = []
    buttons: list[Choice] = []
    for component in content.get("components", []):
        values = [p.get("text") or p.get("payload") or "" for p in component.get("parameters", [])]
        if component.get("type") == "button" and component.get("sub_type") == "quick_reply":
            buttons += [Choice(id=value, title=value, tap="template_button") for value in values]
        else:
            parameters += [value for value in values if value]
    return Bubble(kind=BubbleKind.TEMPLATE, template=f"{content.get('name', '')}/{language}",
                  text="\n".join(parameters), style=ChoiceStyle.BUTTONS if buttons else ChoiceStyle.NONE,
                  choices=tuple(buttons))


def check(body: dict[str, Any]) -> list[str]:
    """Every Cloud API limit this body breaks; ``[]`` if none."""
    problems: list[str] = []
    if not isinstance(body, dict):
        return [f"body: expected a JSON object, got {type(body).__name__}"]
    _check_whatsapp(body, problems)
    return problems


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
        params: list[str] = []
        payloads: list[str] = []
        for component in content.get("components") or []:
            values = [p.get("text") or p.get("payload") or "" for p in component.get("parameters") or []]
            (payloads if component.get("type") == "button" else params).extend(values)
        text = f"[template: {content.get('name', '')}] " + " | ".join(params)
        return Shown(text.strip(), tuple((payload, payload) for payload in payloads))
    return Shown(f"[{kind}]")


def _check_whatsapp(body: dict[str, Any], problems: list[str]) -> None:
    if body.get("messaging_product") != "whatsapp":
        problems.append(f"messaging_product: expected 'whatsapp', got {body.get('messaging_product')!r}")
    if "status" in body:  # mark as read (optionally with a typing indicator)
        if body["status"] != "read":
            problems.append(f"status: expected 'read', got {body['status']!r}")
        checks.text(problems, "message_id", body.get("message_id"), checks.NO_LIMIT)
        return
    to, recipient = body.get("to"), body.get("recipient")
    if to is None and recipient is None:
        problems.append("to/recipient: missing, expected 'to' (+phone) or 'recipient' (BSUID)")
    if to is not None and not (isinstance(to, str) and _E164.fullmatch(to)):
        problems.append(f"to: expected '+' and country code then digits, got {to!r}")
    if recipient is not None:
        checks.text(problems, "recipient", recipient, checks.NO_LIMIT)
    if body.get("recipient_type", "individual") != "individual":
        problems.append(f"recipient_type: expected 'individual', got {body['recipient_type']!r}")
    kind = body.get("type")
    content = checks.obj(problems, f"{kind}", body.get(kind)) if isinstance(kind, str) else {}
    if kind == "text":
        checks.text(problems, "text.body", content.get("body"), limits.WA_TEXT_BODY_CHARS)
        if not isinstance(content.get("preview_url", False), bool):
            problems.append("text.preview_url: expected true or false")
    elif kind in _WA_MEDIA:
        if ("link" in content) == ("id" in content):
            problems.append(f"{kind}: expected exactly one of 'link' or 'id'")
        if kind in _WA_CAPTIONED:
            caption = content.get("caption")
            checks.text(problems, f"{kind}.caption", caption, limits.WA_CAPTION_CHARS, required=False)
        elif "caption" in content:
            problems.append(f"{kind}.caption: {kind} messages take no caption")
    elif kind == "interactive":
        _check_interactive(content, problems)
    elif kind == "template":
        checks.text(problems, "template.name", content.get("name"), checks.NO_LIMIT)
        language = checks.obj(problems, "template.language", content.get("language"))
        checks.text(problems, "template.language.code", language.get("code"), checks.NO_LIMIT)
        for i, component in enumerate(content.get("components") or []):
            for j, parameter in enumerate(component.get("parameters") or []):
                field = "payload" if component.get("type") == "button" else "text"
                checks.text(problems, f"template.components[{i}].parameters[{j}].{field}", parameter.get(field),
                            limits.WA_BUTTON_ID_CHARS if field == "payload" else limits.WA_TEXT_BODY_CHARS)
    else:
        problems.append(f"type: {kind!r} is not a message type Bottega sends (text, media, interactive)")


def _check_interactive(content: dict[str, Any], problems: list[str]) -> None:
    kind = content.get("type")
    body_limit = limits.WA_BUTTON_BODY_CHARS if kind == "button" else limits.WA_LIST_BODY_CHARS
    checks.text(problems, "interactive.body.text", (content.get("body") or {}).get("text"), body_limit)
    if "footer" in content:
        footer = checks.obj(problems, "interactive.footer", content["footer"])
        checks.text(problems, "interactive.footer.text", footer.get("text"), limits.WA_FOOTER_CHARS)
    header = content.get("header")
    if isinstance(header, dict) and header.get("type") == "text":
        checks.text(problems, "interactive.header.text", header.get("text"), limits.WA_HEADER_TEXT_CHARS)
    action = checks.obj(problems, "interactive.action", content.get("action"))
    if kind == "button":
        _check_buttons(action, problems)
    elif kind == "list":
        _check_list(action, problems)
    else:
        problems.append(f"interactive.type: {kind!r} is not one Bottega sends (button, list)")


def _check_buttons(action: dict[str, Any], problems: list[str]) -> None:
    path = "interactive.action.buttons"
    buttons = checks.items(problems, path, action.get("buttons"), 1, limits.WA_BUTTONS_MAX)
    for i, button in enumerate(buttons):
        if button.get("type") != "reply":
            problems.append(f"{path}[{i}].type: expected 'reply', got {button.get('type')!r}")
        reply = checks.obj(problems, f"{path}[{i}].reply", button.get("reply"))
        checks.text(problems, f"{path}[{i}].reply.id", reply.get("id"), limits.WA_BUTTON_ID_CHARS)
        checks.text(problems, f"{path}[{i}].reply.title", reply.get("title"), limits.WA_BUTTON_TITLE_CHARS)
    replies = [b.get("reply") or {} for b in buttons]
    checks.unique(problems, f"{path}[].reply.id", [r.get("id") for r in replies])
    checks.unique(problems, f"{path}[].reply.title", [r.get("title") for r in replies])


def _check_list(action: dict[str, Any], problems: list[str]) -> None:
    checks.text(problems, "interactive.action.button", action.get("button"), limits.WA_LIST_BUTTON_CHARS)
    path = "interactive.action.sections"
    sections = checks.items(problems, path, action.get("sections"), 1, limits.WA_LIST_SECTIONS_MAX)
    row_ids: list[Any] = []
    for i, section in enumerate(sections):
        title, limit = section.get("title"), limits.WA_SECTION_TITLE_CHARS
        checks.text(problems, f"{path}[{i}].title", title, limit, required=len(sections) > 1)
        rows = checks.items(problems, f"{path}[{i}].rows", section.get("rows"), 1, limits.WA_LIST_ROWS_MAX)
        for j, row in enumerate(rows):
            row_path = f"{path}[{i}].rows[{j}]"
            checks.text(problems, f"{row_path}.id", row.get("id"), limits.WA_ROW_ID_CHARS)
            checks.text(problems, f"{row_path}.title", row.get("title"), limits.WA_ROW_TITLE_CHARS)
            description, limit = row.get("description"), limits.WA_ROW_DESCRIPTION_CHARS
            checks.text(problems, f"{row_path}.description", description, limit, required=False)
            row_ids.append(row.get("id"))
    if len(row_ids) > limits.WA_LIST_ROWS_MAX:
        total = f"{len(row_ids)} rows in all sections, limit {limits.WA_LIST_ROWS_MAX}"
        problems.append(f"{path}[].rows: {total}")
    checks.unique(problems, f"{path}[].rows[].id", row_ids)
