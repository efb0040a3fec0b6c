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
seconds), else the entry's ``time``. The walk, the ids and times, postbacks and referrals are the
Messenger Platform's, shared with Instagram Direct (``bot.channels.messaging_platform``).

No I/O: plain dict reading into ``bot.model.events.InboundEvent``.
"""

from __future__ import annotations

import re
from typing import Any

from bot.channels.messaging_platform.content import ignore, is_echo, quick_reply_choice, text_or_attachments
from bot.channels.messaging_platform.webhook import MessagingWebhook, checked_id, time_ms
from bot.channels.messenger.channel import MESSENGER
from bot.channels.raw import ident, items, mapping, text, word
from bot.model.events import EventKind, InboundEvent

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
_ZONE = re.compile(r"[A-Za-z_]{1,20}(/[A-Za-z0-9_+-]{1,30}){0,2}")  # an IANA time zone name


def parse(payload: dict[str, Any]) -> tuple[list[InboundEvent], list[str]]:
    """Events and skip notes for one webhook body; see the module docstring for the contract."""
    return _WEBHOOK.parse(payload)


def _message_content(message: dict[str, Any]) -> dict[str, Any]:
    if is_echo(message):
        return ignore("echo")
    return quick_reply_choice(message) or text_or_attachments(message, _attachment_type)


def _attachment_type(attachments: list[dict[str, Any]]) -> str:
    """The first attachment's type, except that any sticker makes the message a sticker.

    During Meta's 2026 transition a sticker arrives as a ``sticker`` attachment, an ``image`` one
    with ``payload.sticker_id``, or both.
    """
    for attachment in attachments:
        attachment_type = attachment.get("type")
        has_sticker_id = ident(mapping(attachment.get("payload")).get("sticker_id")) != ""
        if attachment_type == "sticker" or (attachment_type == "image" and has_sticker_id):
            return "sticker"
    return word(attachments[0].get("type"))


def _messenger_content(item: dict[str, Any]) -> dict[str, Any] | None:
    """Delivery and read receipts, marketing-messages opt-ins and edits; None for any other item."""
    if isinstance(item.get("delivery"), dict):
        mids = items(item["delivery"].get("mids"))
        first_mid = ident(mids[0]) if mids else ""
        return {"kind": EventKind.STATUS, "status": "delivered", "message_id": first_mid}
    if isinstance(item.get("read"), dict):
        return {"kind": EventKind.STATUS, "status": "read", "message_id": ""}
    optin = item.get("optin")
    if isinstance(optin, dict) and optin.get("type") == "notification_messages":
        return _marketing_optin(optin)
    if isinstance(item.get("message_edit"), dict):
        edit = item["message_edit"]
        edited_mid = ident(edit.get("mid"))
        number = ident(edit.get("num_edit")) or "0"
        return {"kind": EventKind.UNREADABLE, "detail": "edit",
                "message_id": f"{edited_mid}#edit{number}" if edited_mid else ""}
    return None


def _marketing_optin(optin: dict[str, Any]) -> dict[str, Any]:
    """``messaging_optins`` for marketing messages: the token (and its expiry, the learner's time zone), or
    the learner stopping or resuming them (``notification_messages_status``; docs/platform.md §9)."""
    status = text(optin.get("notification_messages_status")).upper()
    choice = "stop" if status.startswith("STOP") else "resume" if status.startswith("RESUME") else "opt_in"
    zone = ident(optin.get("notification_messages_timezone"))
    return {"kind": EventKind.PREFERENCE, "detail": "marketing_messages", "status": choice, "message_id": "",
            "token": ident(optin.get("notification_messages_token")),
            "expires_ms": time_ms(optin.get("token_expiry_timestamp")),
            "time_zone": zone if _ZONE.fullmatch(zone) else ""}


def _party(sender_or_recipient: object) -> str:
    """The ``id`` of a ``sender``/``recipient`` object (PSID or Page id), or ``ref.<user_ref>``."""
    party = mapping(sender_or_recipient)
    own_id = checked_id(party.get("id"))
    if own_id:
        return own_id
    user_ref = checked_id(party.get("user_ref"))
    return f"{USER_REF_PREFIX}{user_ref}" if user_ref else ""


_WEBHOOK = MessagingWebhook(
    channel=MESSENGER, owner="Page", message_content=_message_content, ignored_items=IGNORED_ITEMS,
    channel_content=_messenger_content, party=_party,
    reads_changes=True,  # the postback reference's newer {"field", "value"} wrapper (docs/platform.md §5)
)
