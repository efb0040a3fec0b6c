"""What a channel is made of: the parts each folder in ``bot/channels`` provides and registers. No I/O.

A channel is a value (``bot.model.events.Channel``); these are its parts. Code outside ``bot/channels``
never compares a channel to a constant: it looks the parts up (``bot.channels.parts_for``) and calls
them. Adding a channel is one folder that builds a ``ChannelParts`` plus one line registering it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

from bot.channels.body_checks import Shown
from bot.channels.bubbles import Bubble, Choice
from bot.model.events import Channel, InboundEvent
from bot.model.replies import Reply

Body = dict[str, Any]  # a Graph API request or answer body, as JSON


class OutsideWindow(str, Enum):
    """What a channel lets Bottega send first once the learner's 24-hour window is closed (docs/platform.md §9)."""

    TEMPLATE = "template"  # an approved message template (WhatsApp)
    OPT_IN_TOKEN = "opt_in_token"  # a message to a marketing-messages token the learner gave (Messenger)
    NOTHING = "nothing"  # nothing: wait for the learner to write (Instagram)


class Parse(Protocol):
    def __call__(self, payload: dict[str, Any]) -> tuple[list[InboundEvent], list[str]]: ...


class TextPayload(Protocol):
    def __call__(self, text: str, user: str, reply_from: str, *, at_ms: int = 0) -> dict[str, Any]: ...


class TapPayload(Protocol):
    def __call__(self, option_id: str, title: str, user: str, reply_from: str, shown: int, *,
                 at_ms: int = 0) -> dict[str, Any]: ...


class TapChoice(Protocol):
    """(choice, user, reply_from) -> the webhook body Meta posts when the learner taps ``choice`` as the
    channel showed it (``choice.tap``: a reply button, a list row, a quick reply, a postback...)."""

    def __call__(self, choice: Choice, user: str, reply_from: str, *, at_ms: int = 0) -> dict[str, Any]: ...


class Render(Protocol):
    def __call__(self, reply: Reply, *, user_id: str, phone: str = "") -> list[Body]: ...


@dataclass(frozen=True, kw_only=True, slots=True)
class FlowLimits:
    """What the flow checker keeps every course text within, for this channel (``bot.flows``).

    A text over a limit is split or refused by the renderer; the checker names the channel it breaks.
    """

    label_chars: int  # a button / quick reply title
    label_noun: str  # what a label is on this channel: "button", "quick reply"
    message_chars: int  # one text message
    body_with_options_chars: int  # the text that carries the options (a quiz question)
    caption_chars: int  # a media caption
    options_max: int  # options offered as taps in one message


@dataclass(frozen=True, kw_only=True, slots=True)
class DevParts:
    """What the terminal chat, the dev server, the golden transcripts, the fake Graph API and the tests
    need to play a learner on this channel (never used on the request path). In production the browser
    simulator plays its sandbox learners with the payload builders, and the worker's sandbox recorder
    answers their sends with ``fake_answer`` (``bot.delivery.sandbox``)."""

    default_user: str  # the learner `bottega chat` talks as
    send_user: str  # the learner `bottega send` posts as
    draft_user: str  # the learner `bottega chat --draft` talks as
    transcript_user: str  # a golden transcript's learner id prefix (digits follow)
    reply_from: Callable[[Any], str]  # settings -> the id a chat learner's messages arrive at
    phone_of: Callable[[str], str]  # user id -> its phone digits, "" when it is not a phone
    text_payload: TextPayload  # (text, user, reply_from, at_ms=) -> webhook body; at_ms 0: now
    tap_payload: TapPayload  # (id, title, user, from, shown, at_ms=) -> body
    tap_choice: TapChoice  # (a choice as a Bubble shows it, user, reply_from, at_ms=) -> body
    addressed_to: Callable[[Body, str], bool]  # (sent body, user id) -> was it sent to this user
    fake_answer: Callable[[Body], tuple[Body, str]]  # sent body -> (Meta's answer, message id)
    owns_body: Callable[[Body], bool]  # is this sent body one of this channel's
    fixtures: Path  # recorded webhook bodies of this channel (one per inbound kind), for the tests
    pair_limited: bool = False  # the fake enforces WhatsApp's per-user pair rate limit


@dataclass(frozen=True, kw_only=True, slots=True)
class EntryLink:
    """How a link opens a chat with us on this channel and carries a start code (``bot.model.start_codes``).

    ``build(account, code, text)``: the account as configured (``account_setting``), the start code, and the
    prefilled text that carries it where the link has no ``ref`` (WhatsApp's ``wa.me``).
    """

    build: Callable[[str, str, str], str]
    account_setting: str  # the Settings field naming the account the link opens
    account_variable: str  # its environment variable, for messages
    carries_text: bool = False  # the code travels in a prefilled text the learner sends (else in a ref)


@dataclass(frozen=True, kw_only=True, slots=True)
class ChannelParts:
    channel: Channel
    title: str  # how messages name the channel: "WhatsApp"
    webhook_object: str  # the webhook body's "object": "whatsapp_business_account", "page"
    parse: Parse  # verified, decoded webhook body -> events and skip notes
    render: Render  # channel-neutral reply -> API bodies, in sending order
    read_receipt: Callable[[str], Body] | None  # message id -> the body that marks it read; None: no receipts
    describe: Callable[[Body], Shown]  # a sent body -> what the phone shows
    bubble: Callable[[Body], Bubble]  # a sent body -> how the phone shows it (the browser simulator)
    check_limits: Callable[[Body], list[str]]  # a sent body -> every platform limit it breaks
    accepted_id: Callable[[Any], str | None]  # Meta's send answer -> the accepted id ("" none given, None unreadable)
    send_path: Callable[[str], str]  # sender id (the id messages arrived at) -> the send call's path
    app_secret_setting: str  # the Settings field with the app secret that signs this channel's webhooks
    token_setting: str  # the Settings field with the access token its sends use
    token_variable: str  # the environment variable behind it, for messages
    token_permissions: str  # what the token must be allowed, for messages: "whatsapp_business_messaging"
    flow_limits: FlowLimits
    dev: DevParts
    outside_window: OutsideWindow = OutsideWindow.NOTHING  # what may go first after the window closed
    billed: bool = False  # Meta bills its messages per the price table (WHATSAPP_PRICES)
    entry_link: EntryLink | None = None  # a wa.me / m.me / ig.me link that starts a chat (`bottega links`)
    # a person may still answer this long after the window closed, tagged HUMAN_AGENT (0: not at all)
    human_agent_ms: int = 0
