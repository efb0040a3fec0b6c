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
* ``postback`` -> CHOICE on its payload (else its ``referral.ref``), else IGNORE;
* ``referral`` (an ig.me link with ``ref`` in an existing thread) -> CHOICE on ``ref``, else IGNORE;
* ``read`` (the ``messaging_seen`` field) -> IGNORE "read": Instagram names the message seen, and a
  receipt changes nothing for the learner;
* ``reaction``, ``optin`` and conversation-routing items -> IGNORE.

``user_id`` is the Instagram-scoped id (IGSID, ``sender.id``); learner ids are ``ig:<IGSID>``.
``reply_from`` is the Instagram professional account id (``recipient.id``, else ``entry.id``); an id
that is not a plain token (digits, letters, ``._-``) counts as absent, since ids end up in Redis keys.
``timestamp_ms`` comes from the item's ``timestamp`` (int ms, or a string; values too small to be
milliseconds are read as seconds), else the entry's ``time``. The walk, the ids and times, postbacks
and referrals are the Messenger Platform's, shared with Messenger (``bot.channels.messaging_platform``).

No I/O: plain dict reading into ``bot.model.events.InboundEvent``.
"""

from __future__ import annotations

from typing import Any

from bot.channels.instagram.channel import INSTAGRAM
from bot.channels.messaging_platform.content import flag, ignore, is_echo, quick_reply_choice, text_or_attachments
from bot.channels.messaging_platform.webhook import MessagingWebhook
from bot.channels.raw import mapping, word
from bot.model.events import EventKind, InboundEvent

# Items we recognise and deliberately do not answer, with the detail their IGNORE event carries.
IGNORED_ITEMS = {
    "read": "read",
    "reaction": "reaction",
    "optin": "optin",
    "pass_thread_control": "pass_thread_control",
    "take_thread_control": "take_thread_control",
    "request_thread_control": "request_thread_control",
}


def parse(payload: dict[str, Any]) -> tuple[list[InboundEvent], list[str]]:
    """Events and skip notes for one webhook body; see the module docstring for the contract."""
    return _WEBHOOK.parse(payload)


def _message_content(message: dict[str, Any]) -> dict[str, Any]:
    if is_echo(message):
        return ignore("echo")
    if flag(message.get("is_deleted")):
        return {"kind": EventKind.IGNORE, "detail": "deleted", "message_id": ""}
    if flag(message.get("is_unsupported")):
        return {"kind": EventKind.UNREADABLE, "detail": "unsupported"}
    choice = quick_reply_choice(message)
    if choice:
        return choice
    if isinstance(mapping(message.get("reply_to")).get("story"), dict):
        return {"kind": EventKind.MEDIA, "media_type": "story_reply"}
    return text_or_attachments(message, _first_attachment_type)


def _first_attachment_type(attachments: list[dict[str, Any]]) -> str:
    return word(attachments[0].get("type"))


# changes[] (comments, live comments, mentions) are skipped: an Instagram subscription may carry them,
# Bottega reads messages.
_WEBHOOK = MessagingWebhook(channel=INSTAGRAM, owner="account", message_content=_message_content,
                            ignored_items=IGNORED_ITEMS)
