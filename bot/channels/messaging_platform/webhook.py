"""The Messenger Platform webhook envelope -> InboundEvents, for Messenger and Instagram Direct. No I/O.

Contract: ``MessagingWebhook.parse(payload)`` walks every ``entry[]`` and reads its ``messaging[]``
items, then its ``standby[]`` items, then its ``changes[]``, each list in payload order. A change whose
``value`` is an item (``{"field", "value": {sender, recipient, ...}}``) is read as one where the channel
says so (``reads_changes``); any other change is skipped with a note naming its field. It returns the
events plus short notes about the parts it skipped (``"<channel>: ..."``), and never raises on odd
shapes: an item that cannot be read is skipped with a note and the rest is still read. Notes and
``detail`` strings hold fixed words and Meta's vocabulary only, never message text, URLs or ids.

Every item: any ``standby[]`` item -> IGNORE "standby" (another app owns the thread: never answer);
otherwise ``message`` (the channel's ``message_content``), ``postback`` and ``referral``
(``bot.channels.messaging_platform.content``), then the kinds only the channel has
(``channel_content``), then the kinds it recognises and does not answer (``ignored_items``: IGNORE with
that detail); anything else is skipped "of unknown kind".

``user_id`` is the learner's scoped id (``party(sender)``: a PSID or an IGSID); ``reply_from`` is the
Page or account the learner wrote to (``party(recipient)``, else ``entry.id``); on an echo (our own
message coming back) the two swap places. An id that is not a plain token (digits, letters, ``._-``)
counts as absent, since ids end up in Redis keys and Graph API paths. ``timestamp_ms`` comes from the
item's ``timestamp`` (int ms, or a string; values too small to be milliseconds are read as seconds),
else the entry's ``time``. ``message_id`` is the item's own mid unless its content names another.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.channels.messaging_platform.content import ignore, is_echo, own_mid, postback_content, referral_content
from bot.channels.raw import ident, items, mapping, number, word
from bot.channels.webhook_body import Batch, UnreadableItem, read_entries
from bot.model.events import Channel, EventKind, InboundEvent

Content = dict[str, Any]  # ``kind`` and the kind's fields (text, payload, media_type, status, detail...)

_ID = re.compile(r"[0-9A-Za-z._-]{1,200}")  # PSIDs, IGSIDs, Page and account ids are digits; never braces or spaces
_MAX_DIGITS = 16  # a time in milliseconds; anything longer is not a number we use
_SECONDS_LIMIT = 100_000_000_000  # below this a time is in seconds (in ms it would be 1973)


def checked_id(value: object) -> str:
    """A scoped user id or a Page/account id, or "" when absent or not shaped like one (it becomes a Redis key)."""
    text = ident(value)
    return text if _ID.fullmatch(text) else ""


def party_id(sender_or_recipient: object) -> str:
    """The ``id`` of a ``sender``/``recipient`` object, or ""."""
    return checked_id(mapping(sender_or_recipient).get("id"))


def time_ms(value: object) -> int:
    """A time in ms (int, float or digit string; seconds are scaled up); 0 if unreadable."""
    whole = number(value, max_digits=_MAX_DIGITS)
    return whole * 1000 if whole < _SECONDS_LIMIT else whole


@dataclass(frozen=True)
class _Entry:
    owner_id: str  # the Page or account id (``entry.id``)
    time_ms: int


def _no_content(item: dict[str, Any]) -> Content | None:
    return None


@dataclass(frozen=True, kw_only=True, slots=True)
class MessagingWebhook:
    """How one channel reads the shared envelope; ``parse`` is its parser (``bot.channels.parts.Parse``)."""

    channel: Channel
    owner: str  # what the learner writes to, as named in notes: "Page", "account"
    message_content: Callable[[dict[str, Any]], Content]  # a ``message{}`` (echoes included) -> its content
    ignored_items: Mapping[str, str]  # item keys recognised and not answered -> their IGNORE detail
    channel_content: Callable[[dict[str, Any]], Content | None] = _no_content  # other kinds; None: not one
    party: Callable[[object], str] = party_id  # a ``sender``/``recipient`` object -> the id it names
    reads_changes: bool = False  # a ``changes[]`` value with a ``sender`` is an item, read like one

    def parse(self, payload: dict[str, Any]) -> tuple[list[InboundEvent], list[str]]:
        """Events and skip notes for one webhook body; see the module docstring for the contract."""
        return read_entries(payload, self.channel, self._read_entry)

    def _read_entry(self, entry: dict[str, Any], batch: Batch) -> None:
        context = _Entry(owner_id=checked_id(entry.get("id")), time_ms=time_ms(entry.get("time")))
        lists = [entry.get(name) for name in ("messaging", "standby", "changes")]
        if not any(isinstance(found, list) for found in lists):
            batch.skip("entry without messaging, standby or changes skipped")
            return
        for item in items(entry.get("messaging")):
            self._read_item(mapping(item), context, batch, standby=False)
        for item in items(entry.get("standby")):
            self._read_item(mapping(item), context, batch, standby=True)
        for change in items(entry.get("changes")):
            self._read_change(mapping(change), context, batch)

    def _read_change(self, change: dict[str, Any], context: _Entry, batch: Batch) -> None:
        """Messenger's ``{"field": "messaging_postbacks", "value": {sender, recipient, ...}}`` wrapper is an
        item; Instagram's changes (comments, live comments, mentions) are not messages and are skipped."""
        value = mapping(change.get("value"))
        if self.reads_changes and "sender" in value:
            self._read_item(value, context, batch, standby=False)
            return
        batch.skip(f"change field {word(change.get('field'))!r} skipped")

    def _read_item(self, item: dict[str, Any], context: _Entry, batch: Batch, *, standby: bool) -> None:
        try:
            batch.events.append(self._item_event(item, context, standby=standby))
        except UnreadableItem as unreadable:
            batch.skip(f"{'standby' if standby else 'messaging'} item {unreadable} skipped")

    def _item_event(self, item: dict[str, Any], context: _Entry, *, standby: bool) -> InboundEvent:
        sender = self.party(item.get("sender"))
        recipient = self.party(item.get("recipient"))
        if not sender:
            raise UnreadableItem("without sender")
        user_id, reply_from = sender, recipient or context.owner_id
        if is_echo(mapping(item.get("message"))):
            user_id, reply_from = recipient, sender  # an echo travels from the Page/account to the learner
        if not user_id or not reply_from:
            raise UnreadableItem(f"without user or {self.owner} id")
        content = ignore("standby") if standby else self._item_content(item)
        # The item's own mid unless the content says otherwise (statuses, reactions, reads, deletions).
        fields = {"message_id": own_mid(item)} | content
        return InboundEvent(
            channel=self.channel,
            user_id=user_id,
            reply_from=reply_from,
            timestamp_ms=time_ms(item.get("timestamp")) or context.time_ms,
            **fields,
        )

    def _item_content(self, item: dict[str, Any]) -> Content:
        if isinstance(item.get("message"), dict):
            return self.message_content(item["message"])
        if isinstance(item.get("postback"), dict):
            return postback_content(item["postback"])
        if isinstance(item.get("referral"), dict):
            return referral_content(item["referral"])
        content = self.channel_content(item)
        if content is not None:
            return content
        for key, detail in self.ignored_items.items():
            if isinstance(item.get(key), dict):
                # A reaction's, read's or edit's mid names an earlier message, not this event: leave it out.
                return {"kind": EventKind.IGNORE, "detail": detail, "message_id": ""}
        raise UnreadableItem("of unknown kind")
