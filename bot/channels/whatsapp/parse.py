"""WhatsApp Cloud API webhook body (``object: "whatsapp_business_account"``) -> InboundEvents.

Contract: ``parse(payload)`` walks every ``entry[]`` -> ``changes[]`` (field ``messages``) ->
``value.messages[]`` then ``value.statuses[]``, in payload order (field ``user_preferences``: a learner
stopping or resuming marketing messages becomes a PREFERENCE event), and returns the events plus short
notes about the parts it skipped. It never raises on odd shapes: whatever cannot be read (a missing
key, a null, a wrong type) is skipped with a note and the rest of the batch is still read. Notes and
``detail`` strings are built from fixed words and Meta's own vocabulary only (field and type names
that look like identifiers), never from message text, phone numbers, names or ids.

Identity: ``user_id`` is the BSUID (``messages[].from_user_id`` or the sender's ``contacts[].user_id``)
when present, else the phone (``from`` or ``contacts[].wa_id``); a message with neither is skipped.
``phone`` and ``bsuid`` carry both whenever the payload has them, so the store can keep one learner
across the two. A ``system`` message ``user_changed_number`` / ``user_changed_user_id`` becomes an
IDENTITY event: the new ids in ``user_id``/``phone``/``bsuid``, the former ones in ``previous_ids``.
``reply_from`` is ``value.metadata.phone_number_id``; a change without it is skipped, since we could
not answer from it. Statuses are keyed on ``recipient_user_id`` or ``recipient_id`` the same way.
Ids end up in Redis keys and Graph API paths, so one not shaped like its kind (digits for phones and
number ids; ``CC.alnum`` for BSUIDs, no braces or spaces) counts as absent.

No I/O: plain dict reading into ``bot.model.events.InboundEvent``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bot.channels.raw import ident as _ident
from bot.channels.raw import items as _list
from bot.channels.raw import mapping as _dict
from bot.channels.raw import number
from bot.channels.raw import text as _text
from bot.channels.raw import word as _word
from bot.channels.webhook_body import Batch, UnreadableItem, read_entries
from bot.channels.whatsapp.channel import WHATSAPP
from bot.model.events import EventKind, InboundEvent, Referral

# Message types that are media to us, read by name; audio is separate (voice notes).
MEDIA_TYPES = frozenset({"image", "video", "document", "sticker", "location", "contacts"})
CHOICE_REPLIES = frozenset({"button_reply", "list_reply"})  # interactive replies that carry an id

_PHONE = re.compile(r"[0-9]{4,20}")  # wa_id / from: digits only, no "+"
_NUMBER_ID = re.compile(r"[0-9]{1,30}")  # metadata.phone_number_id: it goes into Graph API paths
_BSUID = re.compile(r"[A-Za-z0-9._-]{1,200}")  # "IT.1349...", "US.ENT.1349...": no braces, no spaces
_MAX_DIGITS = 15  # a Unix time or an error code; anything longer is not a number we use


def parse(payload: dict[str, Any]) -> tuple[list[InboundEvent], list[str]]:
    """Events and skip notes for one webhook body; see the module docstring for the contract."""
    return read_entries(payload, WHATSAPP, _read_entry)


def _read_entry(entry: dict[str, Any], batch: Batch) -> None:
    changes = entry.get("changes")
    if not isinstance(changes, list):
        batch.skip("entry without a changes list skipped")
        return
    for change in changes:
        _read_change(_dict(change), batch)


def _read_change(change: dict[str, Any], batch: Batch) -> None:
    field_name = change.get("field")
    if field_name == "user_preferences":
        _read_preferences(_dict(change.get("value")), batch)
        return
    if field_name != "messages":
        batch.skip(f"change field {_word(field_name)!r} skipped")
        return
    value = _dict(change.get("value"))
    reply_from = _ident(_dict(value.get("metadata")).get("phone_number_id"))
    if not _NUMBER_ID.fullmatch(reply_from):
        batch.skip("messages change without metadata.phone_number_id skipped")
        return
    contacts = _Contacts.of(_list(value.get("contacts")))
    messages = _list(value.get("messages"))
    statuses = _list(value.get("statuses"))
    errors = _list(value.get("errors"))
    if errors:
        codes = ", ".join(str(_number(_dict(error).get("code"))) for error in errors[:5])
        batch.skip(f"{len(errors)} value-level error(s) skipped (codes: {codes})")
    if not messages and not statuses and not errors:
        batch.skip("messages change with no messages or statuses skipped")
    for message in messages:
        try:
            batch.events.append(_message_event(_dict(message), contacts, reply_from))
        except UnreadableItem as unreadable:
            batch.skip(f"message {unreadable} skipped")
    for status in statuses:
        try:
            batch.events.append(_status_event(_dict(status), reply_from))
        except UnreadableItem as unreadable:
            batch.skip(f"status {unreadable} skipped")


def _read_preferences(value: dict[str, Any], batch: Batch) -> None:
    """``user_preferences``: a learner stopped or resumed marketing messages (docs/platform.md §9)."""
    reply_from = _ident(_dict(value.get("metadata")).get("phone_number_id"))
    if not _NUMBER_ID.fullmatch(reply_from):
        batch.skip("user_preferences change without metadata.phone_number_id skipped")
        return
    for item in _list(value.get("user_preferences")):
        preference = _dict(item)
        phone = _phone(preference.get("wa_id"))
        bsuid = _bsuid(preference.get("user_id"))
        choice = _word(preference.get("value"))
        if not (phone or bsuid) or choice not in ("stop", "resume"):
            batch.skip("user_preferences item without a user or a stop/resume value skipped")
            continue
        category = _word(preference.get("category"))
        batch.events.append(InboundEvent(
            channel=WHATSAPP, kind=EventKind.PREFERENCE, user_id=bsuid or phone, phone=phone, bsuid=bsuid,
            reply_from=reply_from, timestamp_ms=_seconds_to_ms(preference.get("timestamp")), detail=category,
            status=choice, message_id=f"pref:{category}:{choice}:{_number(preference.get('timestamp'))}"))


# --- messages -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Contacts:
    """A change's ``contacts[]``, indexed once: a batch of 1,000 senders is read in linear time."""

    by_phone: dict[str, dict[str, Any]]
    by_bsuid: dict[str, dict[str, Any]]
    only: dict[str, Any]  # the one contact when there is exactly one (Meta sends one per message)

    @classmethod
    def of(cls, raw: list[Any]) -> _Contacts:
        contacts = [_dict(contact) for contact in raw]
        by_phone: dict[str, dict[str, Any]] = {}
        by_bsuid: dict[str, dict[str, Any]] = {}
        for contact in contacts:
            by_phone.setdefault(_phone(contact.get("wa_id")), contact)
            by_bsuid.setdefault(_bsuid(contact.get("user_id")), contact)
        by_phone.pop("", None)
        by_bsuid.pop("", None)
        return cls(by_phone=by_phone, by_bsuid=by_bsuid, only=contacts[0] if len(contacts) == 1 else {})


def _message_event(message: dict[str, Any], contacts: _Contacts, reply_from: str) -> InboundEvent:
    phone = _phone(message.get("from"))
    bsuid = _bsuid(message.get("from_user_id"))
    if _text(message.get("type")) == "system":  # system messages come without a contacts array
        return _system_event(message, phone, bsuid, reply_from)
    contact = _contact_for(phone, bsuid, contacts)
    phone = phone or _phone(contact.get("wa_id"))
    bsuid = bsuid or _bsuid(contact.get("user_id"))
    user_id = bsuid or phone
    if not user_id:
        raise UnreadableItem("without phone or BSUID")
    return InboundEvent(
        channel=WHATSAPP,
        user_id=user_id,
        phone=phone,
        bsuid=bsuid,
        profile_name=_text(_dict(contact.get("profile")).get("name")),
        reply_from=reply_from,
        message_id=_ident(message.get("id")),
        timestamp_ms=_seconds_to_ms(message.get("timestamp")),
        referral=_referral(message.get("referral")),
        **_message_content(message),
    )


def _referral(value: object) -> Referral | None:
    """A Click-to-WhatsApp ad's (or post's) ``referral`` on the learner's first message, or None.

    Kept: what identifies the ad and the click (``source_type``, ``source_id``, ``source_url``, ``ctwa_clid``)
    and its ``headline``; the ad's body and media are not the learner's and are left out.
    """
    referral = _dict(value)
    if not referral:
        return None
    found = Referral(source_url=_text(referral.get("source_url"))[:500],
                     source_id=_ident(referral.get("source_id"))[:100],
                     source_type=_word(referral.get("source_type"), ""),
                     headline=_text(referral.get("headline"))[:200],
                     ctwa_clid=_ident(referral.get("ctwa_clid"))[:500])
    return found if found != Referral() else None


def _contact_for(phone: str, bsuid: str, contacts: _Contacts) -> dict[str, Any]:
    """The ``contacts[]`` item of the sender: matched by id, else the only one (Meta sends one)."""
    return contacts.by_phone.get(phone) or contacts.by_bsuid.get(bsuid) or contacts.only


def _message_content(message: dict[str, Any]) -> dict[str, Any]:
    """``kind`` and the kind's fields (text, payload, media_type, detail) of one message."""
    message_type = _text(message.get("type"))
    if message_type == "text":
        return _text_content(_dict(message.get("text")))
    if message_type == "interactive":
        return _interactive_content(_dict(message.get("interactive")))
    if message_type == "button":
        return _button_content(_dict(message.get("button")))
    if message_type == "audio":
        voice = _dict(message.get("audio")).get("voice") is True
        return {"kind": EventKind.MEDIA, "media_type": "voice" if voice else "audio"}
    if message_type in MEDIA_TYPES:
        return {"kind": EventKind.MEDIA, "media_type": message_type}
    if message_type == "reaction":
        return _ignore("reaction")
    if message_type == "request_welcome":
        return {"kind": EventKind.OPENED, "detail": "request_welcome"}
    if message_type in ("order", "edit"):
        return _unreadable(message_type)
    if message_type in ("unsupported", "unknown"):
        sub_type = _word(_dict(message.get("unsupported")).get("type"), "unknown")
        return _unreadable("edit" if sub_type == "edit" else f"unsupported:{sub_type}")
    return _unreadable(f"type:{_word(message_type)}")  # a type newer than this parser: still the learner's


def _text_content(text: dict[str, Any]) -> dict[str, Any]:
    body = text.get("body")
    if not isinstance(body, str):
        raise UnreadableItem("of type text without a body")
    return {"kind": EventKind.TEXT, "text": body}


def _interactive_content(interactive: dict[str, Any]) -> dict[str, Any]:
    sub_type = _text(interactive.get("type"))
    if sub_type in CHOICE_REPLIES:
        reply = _dict(interactive.get(sub_type))
        reply_id = _ident(reply.get("id"))
        if not reply_id:
            raise UnreadableItem(f"of type interactive {sub_type} without an id")
        return {"kind": EventKind.CHOICE, "payload": reply_id, "text": _text(reply.get("title"))}
    if sub_type == "nfm_reply":
        return _unreadable("flow_reply")  # a WhatsApp Flow form: no lesson sends one
    return _unreadable(f"interactive:{_word(sub_type)}")


def _button_content(button: dict[str, Any]) -> dict[str, Any]:
    """A tap on a template quick-reply button; Meta echoes the label as payload when none was set."""
    label = _text(button.get("text"))
    payload = _ident(button.get("payload")) or label
    if not payload:
        raise UnreadableItem("of type button without payload or text")
    return {"kind": EventKind.CHOICE, "payload": payload, "text": label, "detail": "template_button"}


def _system_event(message: dict[str, Any], phone: str, bsuid: str, reply_from: str) -> InboundEvent:
    """``user_changed_number`` (new phone in ``system.wa_id``) or ``user_changed_user_id`` (new BSUID).

    The message's ``from``/``from_user_id`` are the former ids; ``system.user_id`` is the new BSUID and
    ``system.previous_user_id`` the former one (Meta, system messages reference, 2026-08-11).
    """
    system = _dict(message.get("system"))
    change = _word(system.get("type"))
    if change not in ("user_changed_number", "user_changed_user_id"):
        if not (bsuid or phone):
            raise UnreadableItem(f"system {change} without phone or BSUID")
        return InboundEvent(channel=WHATSAPP, kind=EventKind.IGNORE, user_id=bsuid or phone,
                            phone=phone, bsuid=bsuid, reply_from=reply_from, message_id=_ident(message.get("id")),
                            timestamp_ms=_seconds_to_ms(message.get("timestamp")), detail=f"system:{change}")
    old_bsuid = _bsuid(system.get("previous_user_id")) or bsuid
    new_bsuid = _bsuid(system.get("user_id"))
    new_phone = _phone(system.get("wa_id")) or _phone(system.get("new_wa_id"))
    if change == "user_changed_user_id":
        new_phone = new_phone or phone  # the number stays; only the BSUID changed
    previous = tuple(dict.fromkeys(i for i in (phone if change == "user_changed_number" else "", old_bsuid)
                                   if i and i not in (new_phone, new_bsuid)))
    user_id = new_bsuid or new_phone
    if not user_id or not previous:
        raise UnreadableItem(f"system {change} without the former and the new id")
    return InboundEvent(channel=WHATSAPP, kind=EventKind.IDENTITY, user_id=user_id, phone=new_phone,
                        bsuid=new_bsuid, reply_from=reply_from, message_id=_ident(message.get("id")),
                        timestamp_ms=_seconds_to_ms(message.get("timestamp")), detail=change,
                        previous_ids=previous)


def _unreadable(detail: str) -> dict[str, Any]:
    return {"kind": EventKind.UNREADABLE, "detail": detail}


def _ignore(detail: str) -> dict[str, Any]:
    return {"kind": EventKind.IGNORE, "detail": detail}


# --- statuses -------------------------------------------------------------------------------------


def _status_event(status: dict[str, Any], reply_from: str) -> InboundEvent:
    wamid = _ident(status.get("id"))
    if not wamid:
        raise UnreadableItem("without an id")
    value = status.get("status")
    if not isinstance(value, str) or not value:
        raise UnreadableItem("without a status value")
    phone = _phone(status.get("recipient_id"))
    user_id = _bsuid(status.get("recipient_user_id")) or phone
    if not user_id:
        raise UnreadableItem("without recipient phone or BSUID")
    return InboundEvent(
        channel=WHATSAPP,
        kind=EventKind.STATUS,
        user_id=user_id,
        phone=phone,
        bsuid=_bsuid(status.get("recipient_user_id")),
        reply_from=reply_from,
        message_id=wamid,
        timestamp_ms=_seconds_to_ms(status.get("timestamp")),
        status=_word(value),
        error_code=_first_error_code(status) if value == "failed" else 0,
        pricing=_pricing(status),
    )


def _pricing(status: dict[str, Any]) -> str:
    """``category:type`` of the status's ``pricing`` block (what Meta charges for), or ""."""
    pricing = _dict(status.get("pricing"))
    category = pricing.get("category")
    if not category:
        return ""
    return f"{_word(category)}:{_word(pricing.get('type'), '')}"


def _first_error_code(status: dict[str, Any]) -> int:
    errors = _list(status.get("errors"))
    if not errors:
        return 0
    return _number(_dict(errors[0]).get("code"))


# --- reading raw values ---------------------------------------------------------------------------


def _phone(value: object) -> str:
    """A WhatsApp phone number (``from``/``wa_id``/``recipient_id``) as digits, or ""."""
    digits = _ident(value).removeprefix("+")
    return digits if _PHONE.fullmatch(digits) else ""


def _bsuid(value: object) -> str:
    """A business-scoped user id, or "" when absent or not shaped like one (it becomes a Redis key)."""
    text = _ident(value)
    return text if _BSUID.fullmatch(text) else ""


def _number(value: object) -> int:
    """A non-negative integer sent as a number or a digit string; 0 when it is neither."""
    return number(value, max_digits=_MAX_DIGITS)


def _seconds_to_ms(value: object) -> int:
    """WhatsApp ``timestamp`` (Unix seconds, a string) in milliseconds; 0 when unreadable."""
    return _number(value) * 1000
