"""Messenger Platform webhook body (``object: "page"``) -> InboundEvents.

Contract: ``parse(payload)`` walks every ``entry[]`` and reads its ``messaging[]`` items, then its
``standby[]`` items, then any ``changes[]`` items in the newer ``{"field", "value"}`` wrapper, each
list in payload order. It returns the events plus short notes about the parts it skipped, and never
raises on odd shapes: an item that cannot be read is skipped with a note and the rest is still read.
Notes and ``detail`` strings hold fixed words and Meta's vocabulary only, never message text or ids.

What each item becomes (first match wins):

* any ``standby[]`` item -> IGNORE "standby" (another app owns the thread: never answer);
* ``message`` with ``is_echo`` -> IGNORE "echo" (our own message; user and Page swap places);
  with ``quick_reply.payload`` -> CHOICE; with ``text`` -> TEXT; with ``attachments`` -> MEDIA;
* ``postback`` -> CHOICE on its payload, else on its ``referral.ref``, else IGNORE;
* ``referral`` -> CHOICE on ``ref`` (``message_id`` stays "": the dispatcher makes one), else IGNORE;
* ``delivery`` / ``read`` -> STATUS "delivered" (``message_id`` = ``mids[0]`` or "") / "read";
* ``message_edit`` -> UNREADABLE "edit" (id ``<mid>#edit<n>``: we answer new messages, not edits);
* ``optin`` of type ``notification_messages`` (marketing messages) -> PREFERENCE (status ``opt_in`` with
  the token, its expiry and the learner's time zone; ``stop``/``resume``);
* ``reaction``, any other ``optin`` and handover items -> IGNORE.

``user_id`` is the PSID (``sender.id``); a chat-plugin guest who has no PSID yet is named by
``sender.user_ref`` and gets the user id ``ref.<user_ref>`` (PSIDs are digits, so the two never
meet; the renderer addresses such a learner with ``recipient.user_ref``). ``reply_from`` is the Page
id (``recipient.id``, else ``entry.id``); an id that is not a plain token (digits, letters, ``._-``)
counts as absent, since ids end up in Redis keys and Graph API paths. ``timestamp_ms`` comes from
the item's ``timestamp`` (int ms, or a string; values too small to be milliseconds are read as
seconds), else the entry's ``time``.

No I/O: plain dict reading into ``bot.model.events.InboundEvent``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from bot.channels.messenger.channel import MESSENGER
from bot.channels.raw import ident as _ident
from bot.channels.raw import items as _list
from bot.channels.raw import mapping as _dict
from bot.channels.raw import text as _text
from bot.model.events import EventKind, InboundEvent, Referral

# Items we recognise and deliberately do not answer, with the detail their IGNORE event carries.
IGNORED_ITEMS = {
    "reaction": "reaction",
    "optin": "optin",  # other than a marketing-messages opt-in (a Send to Messenger plugin tap)
    "pass_thread_control": "pass_thread_control",
    "take_thread_control": "take_thread_control",
    "request_thread_control": "request_thread_control",
    "app_roles": "app_roles",
    "policy_enforcement": "policy_enforcement",
    "account_linking": "account_linking",
}

USER_REF_PREFIX = "ref."  # user id of a chat-plugin guest addressed by user_ref (PSIDs are digits)
_ID = re.compile(r"[0-9A-Za-z._-]{1,200}")  # PSIDs and Page ids are digits; never braces or spaces
_VOCABULARY = re.compile(r"[a-z][a-z0-9_]{0,39}")  # what a Meta field/type name looks like
_MAX_DIGITS = 16  # a time in milliseconds; anything longer is not a number we use
_DIGITS = re.compile(rf"[0-9]{{1,{_MAX_DIGITS}}}")
_SECONDS_LIMIT = 100_000_000_000  # below this a time is in seconds (in ms it would be 1973)
_ZONE = re.compile(r"[A-Za-z_]{1,20}(/[A-Za-z0-9_+-]{1,30}){0,2}")  # an IANA time zone name


class _Skip(Exception):
    """An item that cannot be read; the text is the (data-free) note."""


@dataclass
class _Batch:
    events: list[InboundEvent] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def skip(self, note: str) -> None:
        self.skipped.append(f"messenger: {note}")


@dataclass(frozen=True)
class _Entry:
    page_id: str
    time_ms: int


def parse(payload: dict[str, Any]) -> tuple[list[InboundEvent], list[str]]:
    """Events and skip notes for one webhook body; see the module docstring for the contract."""
    batch = _Batch()
    entries = payload.get("entry")
    if not isinstance(entries, list):
        batch.skip("payload without an entry list skipped")
        return batch.events, batch.skipped
    for entry in entries:
        _read_entry(_dict(entry), batch)
    return batch.events, batch.skipped


def _read_entry(entry: dict[str, Any], batch: _Batch) -> None:
    context = _Entry(page_id=_checked_id(entry.get("id")), time_ms=_time_ms(entry.get("time")))
    lists = [entry.get(name) for name in ("messaging", "standby", "changes")]
    if not any(isinstance(items, list) for items in lists):
        batch.skip("entry without messaging, standby or changes skipped")
        return
    for item in _list(entry.get("messaging")):
        _read_item(_dict(item), context, batch, standby=False)
    for item in _list(entry.get("standby")):
        _read_item(_dict(item), context, batch, standby=True)
    for change in _list(entry.get("changes")):
        _read_change(_dict(change), context, batch)


def _read_change(change: dict[str, Any], context: _Entry, batch: _Batch) -> None:
    """The ``{"field": "messaging_postbacks", "value": {sender, recipient, ...}}`` wrapper."""
    value = _dict(change.get("value"))
    if "sender" not in value:
        batch.skip(f"change field {_word(change.get('field'))!r} skipped")
        return
    _read_item(value, context, batch, standby=False)


def _read_item(item: dict[str, Any], context: _Entry, batch: _Batch, *, standby: bool) -> None:
    try:
        batch.events.append(_item_event(item, context, standby=standby))
    except _Skip as unreadable:
        batch.skip(f"{'standby' if standby else 'messaging'} item {unreadable} skipped")


def _item_event(item: dict[str, Any], context: _Entry, *, standby: bool) -> InboundEvent:
    sender = _party(item.get("sender"))
    recipient = _party(item.get("recipient"))
    if not sender:
        raise _Skip("without sender")
    user_id, reply_from = sender, recipient or context.page_id
    if _is_echo(_dict(item.get("message"))):
        user_id, reply_from = recipient, sender  # an echo travels from the Page to the user
    if not user_id or not reply_from:
        raise _Skip("without user or Page id")
    content = {"kind": EventKind.IGNORE, "detail": "standby"} if standby else _item_content(item)
    # The item's own mid unless the content says otherwise (statuses and reactions carry their own).
    fields = {"message_id": _own_mid(item)} | content
    return InboundEvent(
        channel=MESSENGER,
        user_id=user_id,
        reply_from=reply_from,
        timestamp_ms=_time_ms(item.get("timestamp")) or context.time_ms,
        **fields,
    )


def _item_content(item: dict[str, Any]) -> dict[str, Any]:
    """``kind`` and the kind's fields (text, payload, media_type, status, detail) of one item."""
    if isinstance(item.get("message"), dict):
        return _message_content(item["message"])
    if isinstance(item.get("postback"), dict):
        return _postback_content(item["postback"])
    if isinstance(item.get("referral"), dict):
        return _referral_content(item["referral"])
    if isinstance(item.get("delivery"), dict):
        mids = _list(item["delivery"].get("mids"))
        first_mid = _ident(mids[0]) if mids else ""
        return {"kind": EventKind.STATUS, "status": "delivered", "message_id": first_mid}
    if isinstance(item.get("read"), dict):
        return {"kind": EventKind.STATUS, "status": "read", "message_id": ""}
    optin = item.get("optin")
    if isinstance(optin, dict) and optin.get("type") == "notification_messages":
        return _marketing_optin(optin)
    if isinstance(item.get("message_edit"), dict):
        edit = item["message_edit"]
        edited_mid = _ident(edit.get("mid"))
        number = _ident(edit.get("num_edit")) or "0"
        return {"kind": EventKind.UNREADABLE, "detail": "edit",
                "message_id": f"{edited_mid}#edit{number}" if edited_mid else ""}
    for key, detail in IGNORED_ITEMS.items():
        if isinstance(item.get(key), dict):
            # A reaction's or edit's mid names an earlier message, not this event: leave it out.
            return {"kind": EventKind.IGNORE, "detail": detail, "message_id": ""}
    raise _Skip("of unknown kind")


def _marketing_optin(optin: dict[str, Any]) -> dict[str, Any]:
    """``messaging_optins`` for marketing messages: the token (and its expiry, the learner's time zone), or
    the learner stopping or resuming them (``notification_messages_status``; docs/platform.md §9)."""
    status = _text(optin.get("notification_messages_status")).upper()
    choice = "stop" if status.startswith("STOP") else "resume" if status.startswith("RESUME") else "opt_in"
    zone = _ident(optin.get("notification_messages_timezone"))
    return {"kind": EventKind.PREFERENCE, "detail": "marketing_messages", "status": choice, "message_id": "",
            "token": _ident(optin.get("notification_messages_token")),
            "expires_ms": _time_ms(optin.get("token_expiry_timestamp")),
            "time_zone": zone if _ZONE.fullmatch(zone) else ""}


def _message_content(message: dict[str, Any]) -> dict[str, Any]:
    if _is_echo(message):
        return _ignore("echo")
    text = _text(message.get("text"))
    payload = _ident(_dict(message.get("quick_reply")).get("payload"))
    if payload:
        return {"kind": EventKind.CHOICE, "payload": payload, "text": text}
    if text:
        return {"kind": EventKind.TEXT, "text": text}
    attachments = [_dict(attachment) for attachment in _list(message.get("attachments"))]
    if attachments:
        return {"kind": EventKind.MEDIA, "media_type": _attachment_type(attachments)}
    raise _Skip("with a message without text, quick reply or attachments")


def _attachment_type(attachments: list[dict[str, Any]]) -> str:
    """The first attachment's type, except that any sticker makes the message a sticker.

    During Meta's 2026 transition a sticker arrives as a ``sticker`` attachment, an ``image`` one
    with ``payload.sticker_id``, or both.
    """
    for attachment in attachments:
        attachment_type = attachment.get("type")
        has_sticker_id = _ident(_dict(attachment.get("payload")).get("sticker_id")) != ""
        if attachment_type == "sticker" or (attachment_type == "image" and has_sticker_id):
            return "sticker"
    return _word(attachments[0].get("type"))


def _postback_content(postback: dict[str, Any]) -> dict[str, Any]:
    """Button, Get Started or menu tap; with no payload the referral's ref stands in."""
    title = _text(postback.get("title"))
    payload = _ident(postback.get("payload")) or _ref(postback.get("referral"))
    if not payload:
        return _ignore("postback without payload")
    return {"kind": EventKind.CHOICE, "payload": payload, "text": title,
            "referral": _referral(postback.get("referral"))}


def _referral_content(referral: dict[str, Any]) -> dict[str, Any]:
    ref = _ref(referral)
    if not ref:
        return _ignore("referral without ref")
    return {"kind": EventKind.CHOICE, "payload": ref, "referral": _referral(referral)}


def _referral(value: object) -> Referral | None:
    """An m.me / ig.me link's or an ad's ``referral{ref, source, type}`` (an ad's ``ad_id`` too), or None."""
    referral = _dict(value)
    found = Referral(ref=_ident(referral.get("ref"))[:250], source=_upper_word(referral.get("source")),
                     type=_upper_word(referral.get("type")), source_id=_ident(referral.get("ad_id"))[:100])
    return found if found != Referral() else None


def _upper_word(value: object) -> str:
    """``SHORTLINK``, ``ADS``, ``IGME``, ``OPEN_THREAD``: Meta's upper-case vocabulary, else ""."""
    return value if isinstance(value, str) and _UPPER_WORD.fullmatch(value) else ""


_UPPER_WORD = re.compile(r"[A-Z][A-Z0-9_-]{0,39}")


def _ignore(detail: str) -> dict[str, Any]:
    return {"kind": EventKind.IGNORE, "detail": detail}


def _is_echo(message: dict[str, Any]) -> bool:
    """Our own outbound message coming back (``is_echo``, a bool or, defensively, "true")."""
    return message.get("is_echo") in (True, "true")


def _own_mid(item: dict[str, Any]) -> str:
    """The mid of this event itself: a message's or a postback's (referrals and statuses have none)."""
    for key in ("message", "postback"):
        mid = _ident(_dict(item.get(key)).get("mid"))
        if mid:
            return mid
    return ""


def _party(sender_or_recipient: object) -> str:
    """The ``id`` of a ``sender``/``recipient`` object (PSID or Page id), or ``ref.<user_ref>``."""
    party = _dict(sender_or_recipient)
    own_id = _checked_id(party.get("id"))
    if own_id:
        return own_id
    user_ref = _checked_id(party.get("user_ref"))
    return f"{USER_REF_PREFIX}{user_ref}" if user_ref else ""


def _checked_id(value: object) -> str:
    """A PSID or Page id, or "" when absent or not shaped like one (it becomes a Redis key)."""
    text = _ident(value)
    return text if _ID.fullmatch(text) else ""


def _ref(referral: object) -> str:
    return _ident(_dict(referral).get("ref"))


# --- reading raw values ---------------------------------------------------------------------------


def _word(value: object) -> str:
    """A Meta field or type name, safe to log; anything that does not look like one is "other"."""
    if isinstance(value, str) and _VOCABULARY.fullmatch(value):
        return value
    return "other"


def _time_ms(value: object) -> int:
    """A Messenger time in ms (int, float or digit string; seconds are scaled up); 0 if unreadable."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, float):
        value = int(value) if math.isfinite(value) else 0
    if isinstance(value, str):
        value = int(value) if _DIGITS.fullmatch(value) else 0
    number = value if isinstance(value, int) else 0
    if not 0 <= number < 10**_MAX_DIGITS:
        return 0
    return number * 1000 if number < _SECONDS_LIMIT else number
