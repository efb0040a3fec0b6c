"""Instagram Direct webhook body (``object: "instagram"``, Messenger Platform for Instagram) -> InboundEvents.

Contract: ``parse(payload)`` walks every ``entry[]`` and reads its ``messaging[]`` items, then its
``standby[]`` items, each list in payload order. ``changes[]`` items (comments, mentions: not messages)
are skipped with a note naming their field. It returns the events plus short notes about the parts it
skipped, and never raises on odd shapes: an item that cannot be read is skipped with a note and the
rest is still read. Notes and ``detail`` strings hold fixed words and Meta's vocabulary only, never
message text, URLs or ids.

What each item becomes (first match wins):

* any ``standby[]`` item -> IGNORE "standby" (another app owns the thread: never answer);
* ``message`` with ``is_echo`` -> IGNORE "echo" (our own message; user and account swap places);
  with ``is_deleted`` -> IGNORE "deleted" (the learner unsent a message; its mid names that message);
  with ``is_unsupported`` -> UNREADABLE "unsupported" (a GIF, a sticker, anything the API cannot show);
  with ``quick_reply.payload`` -> CHOICE; with ``reply_to.story`` -> MEDIA "story_reply" (we cannot
  see the story it answers); with ``text`` -> TEXT; with ``attachments`` -> MEDIA of the first
  attachment's type (``image``, ``audio``, ``video``, ``file``, ``share``, ``ig_reel``,
  ``story_mention``...);
* ``postback`` -> CHOICE on its payload, else IGNORE;
* ``referral`` (an ig.me link with ``ref`` in an existing thread) -> CHOICE on ``ref``, else IGNORE;
* ``read`` (the ``messaging_seen`` field) -> IGNORE "read": Instagram names the message seen, and a
  receipt changes nothing for the learner;
* ``reaction``, ``optin`` and conversation-routing items -> IGNORE.

``user_id`` is the Instagram-scoped id (IGSID, ``sender.id``); learner ids are ``ig:<IGSID>``.
``reply_from`` is the Instagram professional account id (``recipient.id``, else ``entry.id``); an id
that is not a plain token (digits, letters, ``._-``) counts as absent, since ids end up in Redis keys.
``timestamp_ms`` comes from the item's ``timestamp`` (int ms, or a string; values too small to be
milliseconds are read as seconds), else the entry's ``time``.

No I/O: plain dict reading into ``bot.model.events.InboundEvent``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from bot.channels.instagram.channel import INSTAGRAM
from bot.channels.raw import ident as _ident
from bot.channels.raw import items as _list
from bot.channels.raw import mapping as _dict
from bot.channels.raw import text as _text
from bot.model.events import EventKind, InboundEvent, Referral

# Items we recognise and deliberately do not answer, with the detail their IGNORE event carries.
IGNORED_ITEMS = {
    "read": "read",
    "reaction": "reaction",
    "optin": "optin",
    "pass_thread_control": "pass_thread_control",
    "take_thread_control": "take_thread_control",
    "request_thread_control": "request_thread_control",
}

_ID = re.compile(r"[0-9A-Za-z._-]{1,200}")  # IGSIDs and account ids are digits; never braces or spaces
_VOCABULARY = re.compile(r"[a-z][a-z0-9_]{0,39}")  # what a Meta field/type name looks like
_MAX_DIGITS = 16  # a time in milliseconds; anything longer is not a number we use
_DIGITS = re.compile(rf"[0-9]{{1,{_MAX_DIGITS}}}")
_SECONDS_LIMIT = 100_000_000_000  # below this a time is in seconds (in ms it would be 1973)


class _Skip(Exception):
    """An item that cannot be read; the text is the (data-free) note."""


@dataclass
class _Batch:
    events: list[InboundEvent] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def skip(self, note: str) -> None:
        self.skipped.append(f"instagram: {note}")


@dataclass(frozen=True)
class _Entry:
    account_id: str
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
    context = _Entry(account_id=_checked_id(entry.get("id")), time_ms=_time_ms(entry.get("time")))
    lists = [entry.get(name) for name in ("messaging", "standby", "changes")]
    if not any(isinstance(items, list) for items in lists):
        batch.skip("entry without messaging, standby or changes skipped")
        return
    for item in _list(entry.get("messaging")):
        _read_item(_dict(item), context, batch, standby=False)
    for item in _list(entry.get("standby")):
        _read_item(_dict(item), context, batch, standby=True)
    for change in _list(entry.get("changes")):
        # comments, live comments, mentions: an Instagram subscription may carry them, Bottega reads messages
        batch.skip(f"change field {_word(_dict(change).get('field'))!r} skipped")


def _read_item(item: dict[str, Any], context: _Entry, batch: _Batch, *, standby: bool) -> None:
    try:
        batch.events.append(_item_event(item, context, standby=standby))
    except _Skip as unreadable:
        batch.skip(f"{'standby' if standby else 'messaging'} item {unreadable} skipped")


def _item_event(item: dict[str, Any], context: _Entry, *, standby: bool) -> InboundEvent:
    sender = _checked_id(_dict(item.get("sender")).get("id"))
    recipient = _checked_id(_dict(item.get("recipient")).get("id"))
    if not sender:
        raise _Skip("without sender")
    user_id, reply_from = sender, recipient or context.account_id
    if _is_echo(_dict(item.get("message"))):
        user_id, reply_from = recipient, sender  # an echo travels from the account to the learner
    if not user_id or not reply_from:
        raise _Skip("without user or account id")
    content = {"kind": EventKind.IGNORE, "detail": "standby"} if standby else _item_content(item)
    # The item's own mid unless the content says otherwise (reactions, reads and deletions name another).
    fields = {"message_id": _own_mid(item)} | content
    return InboundEvent(
        channel=INSTAGRAM,
        user_id=user_id,
        reply_from=reply_from,
        timestamp_ms=_time_ms(item.get("timestamp")) or context.time_ms,
        **fields,
    )


def _item_content(item: dict[str, Any]) -> dict[str, Any]:
    """``kind`` and the kind's fields (text, payload, media_type, detail) of one item."""
    if isinstance(item.get("message"), dict):
        return _message_content(item["message"])
    if isinstance(item.get("postback"), dict):
        return _postback_content(item["postback"])
    if isinstance(item.get("referral"), dict):
        return _referral_content(item["referral"])
    for key, detail in IGNORED_ITEMS.items():
        if isinstance(item.get(key), dict):
            # A reaction's or read's mid names one of our earlier messages, not this event: leave it out.
            return {"kind": EventKind.IGNORE, "detail": detail, "message_id": ""}
    raise _Skip("of unknown kind")


def _message_content(message: dict[str, Any]) -> dict[str, Any]:
    if _is_echo(message):
        return _ignore("echo")
    if _flag(message.get("is_deleted")):
        return {"kind": EventKind.IGNORE, "detail": "deleted", "message_id": ""}
    if _flag(message.get("is_unsupported")):
        return {"kind": EventKind.UNREADABLE, "detail": "unsupported"}
    text = _text(message.get("text"))
    payload = _ident(_dict(message.get("quick_reply")).get("payload"))
    if payload:
        return {"kind": EventKind.CHOICE, "payload": payload, "text": text}
    if isinstance(_dict(message.get("reply_to")).get("story"), dict):
        return {"kind": EventKind.MEDIA, "media_type": "story_reply"}
    if text:
        return {"kind": EventKind.TEXT, "text": text}
    attachments = [_dict(attachment) for attachment in _list(message.get("attachments"))]
    if attachments:
        return {"kind": EventKind.MEDIA, "media_type": _word(attachments[0].get("type"))}
    raise _Skip("with a message without text, quick reply or attachments")


def _postback_content(postback: dict[str, Any]) -> dict[str, Any]:
    """An icebreaker or template button tap."""
    payload = _ident(postback.get("payload")) or _ident(_dict(postback.get("referral")).get("ref"))
    if not payload:
        return _ignore("postback without payload")
    return {"kind": EventKind.CHOICE, "payload": payload, "text": _text(postback.get("title")),
            "referral": _referral(postback.get("referral"))}


def _referral_content(referral: dict[str, Any]) -> dict[str, Any]:
    ref = _ident(referral.get("ref"))
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
    """Our own outbound message coming back (``is_echo``)."""
    return _flag(message.get("is_echo"))


def _flag(value: object) -> bool:
    """A boolean field as Meta sends it (a bool or, defensively, "true")."""
    return value in (True, "true")


def _own_mid(item: dict[str, Any]) -> str:
    """The mid of this event itself: a message's or a postback's (referrals have none)."""
    for key in ("message", "postback"):
        mid = _ident(_dict(item.get(key)).get("mid"))
        if mid:
            return mid
    return ""


def _checked_id(value: object) -> str:
    """An IGSID or account id, or "" when absent or not shaped like one (it becomes a Redis key)."""
    text = _ident(value)
    return text if _ID.fullmatch(text) else ""


# --- reading raw values ---------------------------------------------------------------------------


def _word(value: object) -> str:
    """A Meta field or type name, safe to log; anything that does not look like one is "other"."""
    if isinstance(value, str) and _VOCABULARY.fullmatch(value):
        return value
    return "other"


def _time_ms(value: object) -> int:
    """A time in ms (int, float or digit string; seconds are scaled up); 0 if unreadable."""
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
