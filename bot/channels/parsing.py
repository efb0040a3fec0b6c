"""Inbound parsing: a verified, JSON-decoded webhook body -> ``ParseResult`` of InboundEvents.

Contract: ``parse(payload)`` picks the channel's parser by ``payload["object"]`` through the registry
(``"whatsapp_business_account"``, ``"page"``, ``"instagram"``...) and never raises. Anything it
does not understand - an unknown ``object``, a body that is not an object with an ``entry`` list, an
item of an odd shape - leaves no event and adds a short note to ``skipped`` for the log; the rest of
the batch is still read. The notes never contain message text, phone numbers, names or user ids.
The webhook answers 200 to every signed JSON body, whatever ``skipped`` says (a non-200 only makes
Meta redeliver it for days).

Events keep payload order: entry by entry, and within an entry as the platform listed them.
No I/O here or in the parsers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bot import channels
from bot.model.events import Channel, InboundEvent

_VOCABULARY = re.compile(r"[a-z][a-z0-9_]{0,39}")  # what a Graph webhook object name looks like


@dataclass(frozen=True, kw_only=True, slots=True)
class ParseResult:
    """What one webhook body said: its channel (None if not ours), its events and what was skipped."""

    channel: Channel | None
    events: tuple[InboundEvent, ...] = ()
    skipped: tuple[str, ...] = ()


def parse(payload: object) -> ParseResult:
    """Normalise one decoded webhook body; see the module docstring for the contract."""
    if not isinstance(payload, dict):
        return ParseResult(channel=None, skipped=("payload is not a JSON object, skipped",))
    webhook_object = payload.get("object")
    parts = channels.for_webhook_object(webhook_object) if isinstance(webhook_object, str) else None
    if parts is None:
        return ParseResult(channel=None, skipped=(_unknown_object_note(webhook_object),))
    events, skipped = parts.parse(payload)
    return ParseResult(channel=parts.channel, events=tuple(events), skipped=tuple(skipped))


def _unknown_object_note(value: Any) -> str:
    """Names the ``object`` only if it looks like a Graph object name (e.g. 'instagram')."""
    if isinstance(value, str) and _VOCABULARY.fullmatch(value):
        return f"object {value!r} is not ours, skipped"
    return "payload without a known object skipped"
