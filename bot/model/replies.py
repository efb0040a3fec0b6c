"""Channel-neutral replies the engine emits; the renderers in ``bot.channels.rendering`` turn them into API bodies.

Plain frozen data, no I/O. Labels are already translated into the learner's language; the flow
check guarantees they fit every channel (titles <= 20 characters), so renderers never cut them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

OPTION_TITLE_MAX = 20  # the tightest of WhatsApp button / Messenger quick reply / postback titles
OPTION_DESCRIPTION_MAX = 72  # WhatsApp list row description


class MediaKind(str, Enum):
    IMAGE = "image"
    VIDEO = "video"
    DOCUMENT = "document"


@dataclass(frozen=True, kw_only=True, slots=True)
class Option:
    """A choice offered to the learner: ``id`` comes back as the payload when tapped."""

    id: str
    title: str
    description: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class Media:
    kind: MediaKind
    url: str
    caption: str = ""
    filename: str = ""  # documents only


@dataclass(frozen=True, kw_only=True, slots=True)
class TemplateMessage:
    """An approved WhatsApp message template to send instead of a free-form message (outside the window).

    ``params`` fill the body's ``{{1}}``, ``{{2}}``... in order; ``payloads`` are the quick-reply buttons'
    payloads, by button index (a tap comes back as a ``button`` message with that payload).
    """

    name: str
    language: str  # Meta's language code, e.g. "it", "en"
    params: tuple[str, ...] = ()
    payloads: tuple[str, ...] = ()
    category: str = "utility"  # utility | marketing | authentication: what Meta bills it as


@dataclass(frozen=True, kw_only=True, slots=True)
class Reply:
    """One message to the learner: text, optional media before it, optional options after it.

    ``text`` may be longer than a channel allows; the renderer splits it at sentence boundaries and
    attaches ``options`` to the last part. ``choose_label`` is the (translated) label of the
    WhatsApp list button, used when there are more than three options.

    ``ephemeral`` marks a reply that only shows again where the learner is (a re-prompt, the menu,
    "non ho capito", help): once a later turn has replies of its own, an ephemeral reply still
    waiting in the outbox is stale and is dropped unsent (``bot.storage.store``). Lessons, feedback and
    results are never ephemeral.

    ``proactive``, ``template`` and ``notification_token`` are set by ``bot.proactive`` for a message
    Bottega starts; renderers that cannot send a template render ``text`` and ``options`` instead.
    """

    text: str = ""
    options: tuple[Option, ...] = ()
    media: Media | None = None
    choose_label: str = "Scegli"
    lang: str = "it"
    ephemeral: bool = False
    # Bottega writes first (bot.proactive): what for ("reminder", "followup"...); "" for an answer. The outbox
    # drops such items unsent when the learner opts out; Messenger sends them as UPDATE, not RESPONSE.
    proactive: str = ""
    template: TemplateMessage | None = None  # WhatsApp outside the window: this template, ``text`` is its fill
    notification_token: str = ""  # Messenger outside the window: the learner's marketing-messages token
    # a person's reply after the window closed (bot.tutor.handover): Messenger tags it HUMAN_AGENT (7 days)
    human_agent: bool = False


BROADCAST_KIND_PREFIX = "broadcast:"  # Reply.proactive of a broadcast's message: "broadcast:<broadcast id>"


def broadcast_kind(broadcast_id: str) -> str:
    return f"{BROADCAST_KIND_PREFIX}{broadcast_id}"


def broadcast_of(kind: str) -> str:
    """The broadcast id a ``proactive`` kind names ("" for anything that is no broadcast's message).

    The sender tells bulk traffic from a learner's own conversation by it (``bot.delivery.throughput``)."""
    return kind.removeprefix(BROADCAST_KIND_PREFIX) if kind.startswith(BROADCAST_KIND_PREFIX) else ""
