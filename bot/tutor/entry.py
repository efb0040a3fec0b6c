"""Coming in through an entry link, a QR code or an ad: what to start, and the learner's source. No I/O.

An entry link carries a start code (``bot.model.start_codes``): in a ``wa.me`` link's prefilled text (the
learner's first WhatsApp message, or any later one), in an ``m.me`` / ``ig.me`` link's ``ref`` (a Messenger
or Instagram ``referral``, alone or inside the Get Started ``postback``). ``arrival`` records the touch on
the learner (``progress.entry``: the first touch kept for good, later ones in a short history) and answers
with the payload the engine routes, through ``TARGETS`` — the start-code table: a module, the check-up,
the menu, an Open Day's invitation with its RSVP buttons (``sys:od:invite:<id>``, ``bot.tutor.open_days``).
A new learner first picks a language (and their business): the payload waits in ``entry.waiting`` until then.

A Click-to-WhatsApp ad's ``referral`` is recorded too (``entry.ad``) and opens the ad's free entry point:
for ``FREE_ENTRY_MS`` (72 h) from the learner's message Bottega may write free-form, free of charge
(``bot.proactive.placement`` reads ``entry.free_until_ms``).
"""

from __future__ import annotations

from collections.abc import Callable

from bot.model import start_codes
from bot.model.events import EventKind, InboundEvent
from bot.model.start_codes import StartCode
from bot.tutor.entry_record import FREE_ENTRY_MS, AdClick, EntryRecord, Touch
from bot.tutor.turn import Turn

# The start-code table: a code's kind -> the payload the engine routes (bot.tutor.engine.Conversation.choose).
TARGETS: dict[str, Callable[[str], str]] = {
    "m": lambda module: f"sys:module:{module}",
    "checkup": lambda _: "sys:checkup",
    "menu": lambda _: "sys:menu",
    "event": lambda event_id: f"sys:od:invite:{event_id}",  # an Open Day's invitation (bot.tutor.open_days)
}


def start_code(event: InboundEvent) -> StartCode | None:
    """The start code an event carries: a referral's ``ref``, a tapped payload, or one written in a text."""
    if event.referral is not None and event.referral.ref:
        return start_codes.parse(event.referral.ref)
    if event.kind is EventKind.CHOICE:
        return start_codes.parse(event.payload)
    if event.kind is EventKind.TEXT:
        return start_codes.find_in_text(event.text)
    return None


def arrival(turn: Turn, event: InboundEvent) -> str:
    """Record how the learner came in (if the event says) and return the payload to start ("" = none)."""
    code = start_code(event)
    referral = event.referral
    record = turn.progress.entry
    if code is None and referral is None:
        return ""
    if referral is not None and referral.opens_free_entry:
        record = record.with_changes(
            ad=AdClick(at_ms=turn.now_ms, source_type=referral.source_type, source_id=referral.source_id,
                       source_url=referral.source_url, headline=referral.headline, ctwa_clid=referral.ctwa_clid),
            free_until_ms=turn.now_ms + FREE_ENTRY_MS)
    via = _via(event)
    touch = Touch(at_ms=turn.now_ms, channel=turn.progress.channel, via=via,
                  campaign=code.campaign if code else "", target=code.target_name if code else "",
                  ref="" if code or referral is None else referral.ref)
    record = record.with_touch(touch)
    payload = TARGETS[code.kind](code.target) if code else ""
    if turn.progress.is_new and payload:
        record = record.with_changes(waiting=payload)
    _set(turn, record)
    return "" if turn.progress.is_new else payload


def take_waiting(turn: Turn) -> str:
    """The start code's payload held during onboarding, once (it is cleared)."""
    payload = turn.progress.entry.waiting
    if payload:
        _set(turn, turn.progress.entry.with_changes(waiting=""))
    return payload


def _via(event: InboundEvent) -> str:
    referral = event.referral
    if referral is not None:
        return referral.source or referral.source_type or "referral"
    return "text" if event.kind is EventKind.TEXT else "payload"


def _set(turn: Turn, record: EntryRecord) -> None:
    turn.progress = turn.progress.with_changes(entry=record)
