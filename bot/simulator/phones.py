"""Each phone's screen: the learner's own messages (the session log) and what Bottega sent them (the real
Graph API request bodies), in arrival order, read through the channel's own ``display.bubble``.

Nothing here knows a channel: the registry's parts say whose a sent body is (``dev.owns_body``,
``dev.addressed_to``) and how it shows (``bubble``); read receipts name the learner's message by the
id Meta gave it, which the log kept. Quick replies are tappable only under the newest message, as on
the phone; reply buttons and list rows stay tappable (a stale tap is Bottega's to answer).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.channels.bubbles import Bubble, BubbleKind, Choice, ChoiceStyle
from bot.channels.parts import ChannelParts
from bot.simulator.session import Action, Entry, learner_id, learner_user


@dataclass(kw_only=True)
class Line:
    """One thing on a phone's screen, oldest first."""

    side: str  # "learner", "bot" or "clock"
    entry: Entry | None = None  # learner, clock: the log entry
    bubble: Bubble | None = None  # bot: how it shows
    body: dict[str, Any] = field(default_factory=dict)  # bot: the request body Bottega sent
    number: int = 0  # bot: the call's position among all calls the Graph API received
    read: bool = False  # learner: Bottega marked it (or a later message) read
    live_quick_replies: bool = False  # bot: its quick replies are still on screen (the newest message)


@dataclass(kw_only=True)
class PhoneView:
    parts: ChannelParts
    user: str
    lines: list[Line]

    session: str
    sandbox: bool = False  # the session's learners are sandbox learners (production)

    @property
    def learner_id(self) -> str:
        return learner_id(self.parts, self.session, sandbox=self.sandbox)

    @property
    def latest_choices(self) -> tuple[Choice, ...]:
        """The choices of the newest message that offers any (what a golden transcript's ``tap`` finds)."""
        for line in reversed(self.lines):
            if line.bubble is not None and line.bubble.choices:
                return line.bubble.choices
        return ()

    @property
    def latest_choices_number(self) -> int:
        """The call number of the newest message offering choices (-1: none yet); tests wait for it to change."""
        for line in reversed(self.lines):
            if line.bubble is not None and line.bubble.choices:
                return line.number
        return -1

    @property
    def quick_replies(self) -> tuple[Choice, ...]:
        """The chips above the composer: the newest message's quick replies, while no other message followed."""
        live = next((line for line in self.lines if line.live_quick_replies and line.bubble), None)
        return live.bubble.choices if live is not None and live.bubble is not None else ()


def phone_view(parts: ChannelParts, session: str, entries: list[Entry], calls: list[dict[str, Any]], *,
               sandbox: bool = False) -> PhoneView:
    user = learner_user(parts, session, sandbox=sandbox)
    mine = [entry for entry in entries if entry.channel in ("", parts.channel.name)]
    my_ids = {message_id for entry in mine for message_id in entry.message_ids}
    sent = [(number, call["body"]) for number, call in enumerate(calls) if _sent_to(parts, call, user, my_ids)]
    lines: list[Line] = []
    waiting = iter(mine)
    entry = next(waiting, None)
    for number, body in sent:
        while entry is not None and entry.calls_before <= number:
            lines.append(_entry_line(entry))
            entry = next(waiting, None)
        bubble = parts.bubble(body)
        if bubble.kind is BubbleKind.RECEIPT:
            _mark_read(lines, bubble.read_message_id)
        elif bubble.visible:
            lines.append(Line(side="bot", bubble=bubble, body=body, number=number))
    while entry is not None:
        lines.append(_entry_line(entry))
        entry = next(waiting, None)
    last = next((line for line in reversed(lines) if line.side != "clock"), None)  # a clock move is no message
    if last is not None and last.bubble is not None and last.bubble.style is ChoiceStyle.QUICK_REPLIES:
        last.live_quick_replies = True
    return PhoneView(parts=parts, user=user, lines=lines, session=session, sandbox=sandbox)


def _sent_to(parts: ChannelParts, call: dict[str, Any], user: str, my_ids: set[str]) -> bool:
    body = call.get("body")
    if not isinstance(body, dict) or not parts.dev.owns_body(body):
        return False
    return parts.dev.addressed_to(body, user) or body.get("message_id") in my_ids


def _entry_line(entry: Entry) -> Line:
    return Line(side="clock" if entry.action == Action.CLOCK else "learner", entry=entry)


def _mark_read(lines: list[Line], message_id: str) -> None:
    """A read receipt marks that message read, and every earlier one with it (as WhatsApp shows it)."""
    found = False
    for line in reversed(lines):
        if line.entry is not None and message_id in line.entry.message_ids:
            found = True
        if found and line.side == "learner":
            line.read = True
