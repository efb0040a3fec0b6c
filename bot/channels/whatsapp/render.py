"""WhatsApp Cloud API renderer: one channel-neutral ``Reply`` -> message bodies. No I/O.

``render(reply, user_id=..., phone=...)`` returns, in sending order, the JSON bodies for
``POST /{phone_number_id}/messages`` (docs/platform.md §6), each within the limits in
``bot.channels.limits``:

1. the media message, if any (``image``/``video``/``document`` by ``link``; a document carries its
   ``filename``); a caption longer than 1024 characters is not cut but sent as text after it;
2. the text, split at paragraph/sentence/word boundaries, with the options on the last part:

   * no options: ``text`` messages of at most 4096 characters;
   * 1-3 options: reply buttons; the body holds the last <= 1024 characters' worth of text
     (leading parts go first as plain text);
   * 4-10 options: a list with one section, its button labelled ``reply.choose_label``;
     body <= 4096 characters;
   * more than 10: plain text with one numbered line ("1. Titolo") per option appended; the
     engine reads a typed number as the choice.

A reply with a ``template`` (Bottega writing first outside the 24-hour window) is one ``template`` body
instead: its name and language, the body parameters, and each quick reply's payload by index.

Every body is addressed ``to: "+<phone>"`` when the phone number is known, else
``recipient: <BSUID>`` (docs/platform.md §4). ``preview_url`` is true only when the
part contains an http(s) URL. A title, id or label over its limit raises ``ValueError`` naming
it: the flow check should have caught it, and a renderer never silently cuts.
"""

from __future__ import annotations

from typing import Any

from bot.channels.splitting import split_keeping_tail, split_text
from bot.channels.whatsapp import limits
from bot.model.replies import Media, Option, Reply, TemplateMessage

_URL_MARKERS = ("http://", "https://")


def render(reply: Reply, *, user_id: str, phone: str = "") -> list[dict[str, Any]]:
    """The Cloud API bodies for ``reply``, in order; ``[]`` if the reply is empty."""
    envelope = _envelope(user_id=user_id, phone=phone)
    if reply.template is not None:
        return [{**envelope, **_template(reply.template)}]
    bodies: list[dict[str, Any]] = []
    texts_after_media: list[str] = []
    if reply.media is not None:
        media_body, caption_overflow = _media(reply.media)
        bodies.append({**envelope, **media_body})
        texts_after_media = split_text(caption_overflow, limits.WA_TEXT_BODY_CHARS)
    bodies.extend({**envelope, **_text(part)} for part in texts_after_media)
    bodies.extend({**envelope, **message} for message in _text_and_options(reply))
    return bodies


def mark_read(message_id: str) -> dict[str, Any]:
    """The body that marks the learner's message ``message_id`` (a wamid) as read."""
    if not message_id:
        raise ValueError("mark_read needs the wamid of the message to mark as read, got ''")
    return {"messaging_product": "whatsapp", "status": "read", "message_id": message_id}


def _envelope(*, user_id: str, phone: str) -> dict[str, Any]:
    envelope: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual"}
    digits = phone.strip().lstrip("+")
    if digits:
        # Always "+" and country code: without "+" Meta prepends the business number's country code.
        envelope["to"] = f"+{digits}"
    elif user_id:
        envelope["recipient"] = user_id
    else:
        raise ValueError("a WhatsApp reply needs the learner's phone number or BSUID; both are empty")
    return envelope


def _template(template: TemplateMessage) -> dict[str, Any]:
    """An approved template (outside the 24-hour window): body parameters, and the quick replies' payloads."""
    components: list[dict[str, Any]] = []
    if template.params:
        components.append({"type": "body", "parameters": [{"type": "text", "text": value}
                                                          for value in template.params]})
    for index, payload in enumerate(template.payloads):
        components.append({"type": "button", "sub_type": "quick_reply", "index": str(index),
                           "parameters": [{"type": "payload", "payload": payload}]})
    content: dict[str, Any] = {"name": template.name,
                               "language": {"code": template.language, "policy": "deterministic"}}
    if components:
        content["components"] = components
    return {"type": "template", "template": content}


def _media(media: Media) -> tuple[dict[str, Any], str]:
    """The media message, and the caption text that did not fit into it (``""`` if it did)."""
    kind = media.kind.value
    content: dict[str, Any] = {"link": media.url}
    overflow = ""
    if len(media.caption) <= limits.WA_CAPTION_CHARS:
        if media.caption:
            content["caption"] = media.caption
    else:
        overflow = media.caption
    if kind == "document" and media.filename:
        content["filename"] = media.filename
    return {"type": kind, kind: content}, overflow


def _text(part: str) -> dict[str, Any]:
    return {"type": "text", "text": {"body": part, "preview_url": _has_url(part)}}


def _has_url(text: str) -> bool:
    return any(marker in text for marker in _URL_MARKERS)


def _text_and_options(reply: Reply) -> list[dict[str, Any]]:
    options = reply.options
    if not options:
        return [_text(part) for part in split_text(reply.text, limits.WA_TEXT_BODY_CHARS)]
    if len(options) > limits.WA_LIST_ROWS_MAX:
        numbered = _numbered(reply.text, options)
        return [_text(part) for part in split_text(numbered, limits.WA_TEXT_BODY_CHARS)]
    _check_unique_ids(options)
    # Buttons and lists need a body: with no text, the list label ("Scegli") stands in.
    text = reply.text if reply.text.strip() else reply.choose_label
    if len(options) <= limits.WA_BUTTONS_MAX:
        body_limit, interactive = limits.WA_BUTTON_BODY_CHARS, _buttons(options)
    else:
        body_limit, interactive = limits.WA_LIST_BODY_CHARS, _list(options, reply.choose_label)
    parts = split_keeping_tail(text, limit=limits.WA_TEXT_BODY_CHARS, tail_limit=body_limit)
    if not parts:
        raise ValueError("options need a body text: Reply.text and Reply.choose_label are blank")
    messages = [_text(part) for part in parts[:-1]]
    body = {"type": interactive["type"], "body": {"text": parts[-1]}, "action": interactive["action"]}
    messages.append({"type": "interactive", "interactive": body})
    return messages


def _buttons(options: tuple[Option, ...]) -> dict[str, Any]:
    titles = [option.title for option in options]
    if len(set(titles)) != len(titles):
        raise ValueError(f"WhatsApp reply button titles must be unique within a message, got {titles}")
    buttons = []
    for option in options:
        _check_length(option, "title", option.title, limits.WA_BUTTON_TITLE_CHARS)
        _check_length(option, "id", option.id, limits.WA_BUTTON_ID_CHARS)
        buttons.append({"type": "reply", "reply": {"id": option.id, "title": option.title}})
    return {"type": "button", "action": {"buttons": buttons}}


def _list(options: tuple[Option, ...], choose_label: str) -> dict[str, Any]:
    if not choose_label.strip() or len(choose_label) > limits.WA_LIST_BUTTON_CHARS:
        raise ValueError(
            f"the list button label {choose_label!r} must be 1-{limits.WA_LIST_BUTTON_CHARS} characters;"
            " shorten Reply.choose_label"
        )
    rows = []
    for option in options:
        _check_length(option, "title", option.title, limits.WA_ROW_TITLE_CHARS)
        _check_length(option, "id", option.id, limits.WA_ROW_ID_CHARS)
        row = {"id": option.id, "title": option.title}
        if option.description:
            _check_length(option, "description", option.description, limits.WA_ROW_DESCRIPTION_CHARS)
            row["description"] = option.description
        rows.append(row)
    return {"type": "list", "action": {"button": choose_label, "sections": [{"rows": rows}]}}


def _numbered(text: str, options: tuple[Option, ...]) -> str:
    lines = "\n".join(f"{number}. {option.title}" for number, option in enumerate(options, start=1))
    return f"{text.strip()}\n\n{lines}" if text.strip() else lines


def _check_unique_ids(options: tuple[Option, ...]) -> None:
    ids = [option.id for option in options]
    if len(set(ids)) != len(ids):
        raise ValueError(f"option ids must be unique within a message, got {ids}")


def _check_length(option: Option, field: str, value: str, limit: int) -> None:
    if not value or len(value) > limit:
        raise ValueError(
            f"option {option.id!r} ({option.title!r}): {field} must be 1-{limit} characters on WhatsApp,"
            f" got {len(value)}; fix it in the flow (renderers never cut)"
        )
