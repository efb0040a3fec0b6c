"""Inbound events: what a webhook said, normalised across channels. Plain frozen data, no I/O."""

from __future__ import annotations

import json
from dataclasses import MISSING, dataclass, fields
from enum import Enum
from typing import Any


@dataclass(frozen=True, slots=True)
class Channel:
    """A messaging channel, as a value: its name and the tag of its learner ids (``wa:<id>``).

    Each channel's folder in ``bot/channels`` defines its value and registers its parts (parser,
    renderer, limits...); everything else asks that registry, and compares no channel to a constant.
    """

    name: str  # "whatsapp": stored on the learner, named in outbox items and logs
    prefix: str  # "wa": learner ids are "<prefix>:<user id>"

    def __str__(self) -> str:
        return self.name


class EventKind(str, Enum):
    TEXT = "text"  # free text typed by the learner
    CHOICE = "choice"  # a button, list row, quick reply, postback or referral payload
    MEDIA = "media"  # image, audio, video, document, sticker, location, contacts
    UNREADABLE = "unreadable"  # sent by the learner but not readable here: an order, a Flow form, an edit...
    OPENED = "opened"  # the learner opened the chat for the first time (WhatsApp request_welcome)
    IDENTITY = "identity"  # the learner's phone number or BSUID changed (WhatsApp system message)
    STATUS = "status"  # delivery status of one of our messages: recorded, never answered
    IGNORE = "ignore"  # reactions, echoes, standby, optins, unknown system messages
    TIMER = "timer"  # a server-side clock firing for this learner (bot.delivery.timers); never from Meta
    # the learner changed a messaging preference: WhatsApp user_preferences (marketing stop/resume),
    # Messenger messaging_optins (a marketing-messages token, its expiry and time zone; stop/resume)
    PREFERENCE = "preference"
    ADMIN = "admin"  # an admin acted for this learner (a reply, a hand-back: bot.handover); never from Meta

    @property
    def from_learner(self) -> bool:
        """Something the learner did themselves: it reopens the 24-hour window and earns a read receipt."""
        return self in _FROM_LEARNER


_FROM_LEARNER = frozenset({EventKind.TEXT, EventKind.CHOICE, EventKind.MEDIA, EventKind.UNREADABLE,
                           EventKind.OPENED})


@dataclass(frozen=True, kw_only=True, slots=True)
class Referral:
    """How the learner came in, as the platform told us (docs/platform.md §3, §5).

    Messenger and Instagram: an m.me / ig.me link's or an ad's ``ref``, ``source`` (``SHORTLINK``, ``ADS``,
    ``IGME``...) and ``type`` (``OPEN_THREAD``), alone or inside a Get Started ``postback``. WhatsApp: a
    Click-to-WhatsApp ad's or post's ``referral`` on the first message (``source_type`` ``ad``/``post``,
    ``source_id``, ``source_url``, ``headline``, ``ctwa_clid``): it opens a 72-hour free entry point.
    """

    ref: str = ""
    source: str = ""
    type: str = ""
    source_url: str = ""
    source_id: str = ""
    source_type: str = ""
    headline: str = ""
    ctwa_clid: str = ""

    @property
    def opens_free_entry(self) -> bool:
        """A Click-to-WhatsApp ad or post (its click id or ``source_type``): a 72-hour free entry point."""
        return bool(self.ctwa_clid or self.source_type)

    def to_json(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in _REFERRAL_FIELDS if getattr(self, name)}

    @classmethod
    def from_json(cls, data: object) -> Referral:
        values = data if isinstance(data, dict) else {}
        return cls(**{name: str(values[name]) for name in _REFERRAL_FIELDS if isinstance(values.get(name), str)})


_REFERRAL_FIELDS = ("ref", "source", "type", "source_url", "source_id", "source_type", "headline", "ctwa_clid")


@dataclass(frozen=True, kw_only=True, slots=True)
class InboundEvent:
    """One thing a learner did (or one status of a message we sent).

    ``user_id`` is the id of the learner on that channel as this payload names them: on WhatsApp the
    business-scoped user id (BSUID) when the payload carries one, else the phone number
    (``wa_id``/``from``); on Messenger the PSID (or ``ref.<user_ref>`` for a chat-plugin guest who has
    no PSID yet). ``phone`` is the WhatsApp phone number (digits, no ``+``) when known, so replies can
    use ``to``; without it replies go to ``recipient`` = BSUID. ``bsuid`` is the BSUID when known.
    ``reply_from`` is the id we answer from: WhatsApp ``phone_number_id`` or the Messenger Page id.
    ``message_id`` is the wamid/mid used for deduplication (empty for events that carry none).
    IDENTITY events name the ids the learner had before in ``previous_ids`` (raw ids, not learner ids)
    and the new ones in ``user_id``/``phone``/``bsuid``; ``detail`` says which change it is.
    """

    channel: Channel
    kind: EventKind
    user_id: str
    reply_from: str
    message_id: str = ""
    timestamp_ms: int = 0
    phone: str = ""
    bsuid: str = ""
    profile_name: str = ""
    text: str = ""  # TEXT: the body; CHOICE: the visible title if any
    payload: str = ""  # CHOICE: the button/list/quick-reply/postback id or referral ref
    media_type: str = ""  # MEDIA: image|audio|voice|video|document|sticker|location|contacts|file|...
    status: str = ""  # STATUS: sent|delivered|read|failed|played
    error_code: int = 0  # STATUS failed: Meta's error code
    pricing: str = ""  # STATUS (WhatsApp): "<pricing.category>:<pricing.type>", e.g. "marketing:regular"
    detail: str = ""  # IGNORE/UNREADABLE/IDENTITY/CHOICE: what it was ("reaction", "order", "template_button"...)
    previous_ids: tuple[str, ...] = ()  # IDENTITY: the learner's former phone and/or BSUID
    # PREFERENCE: ``detail`` "marketing_messages", ``status`` "stop" | "resume" | "opt_in"; a Messenger
    # marketing-messages opt-in also carries its token, when it expires (0: never) and the learner's time zone
    token: str = ""
    expires_ms: int = 0
    time_zone: str = ""
    # how the learner came in (an m.me / ig.me ref, a Click-to-WhatsApp ad), when the platform says so
    referral: Referral | None = None

    @property
    def learner_id(self) -> str:
        return f"{self.channel.prefix}:{self.user_id}"

    @property
    def other_learner_ids(self) -> tuple[str, ...]:
        """The learner ids this same person may already be known under (the phone when keyed on the BSUID)."""
        if self.phone and self.phone != self.user_id:
            return (f"{self.channel.prefix}:{self.phone}",)
        return ()

    def to_json(self) -> str:
        """The event as JSON (a job's argument when a big batch is handed to the worker); default fields left out."""
        data = {name: getattr(self, name) for name in _FIELD_NAMES}
        data = {name: value for name, value in data.items() if value != _DEFAULTS.get(name, _REQUIRED)}
        data["channel"] = [self.channel.name, self.channel.prefix]
        if self.referral is not None:
            data["referral"] = self.referral.to_json()
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> InboundEvent:
        data: dict[str, Any] = json.loads(text)
        known = {f.name for f in fields(cls)}
        values = {name: value for name, value in data.items() if name in known}
        name, prefix = values["channel"]
        values["channel"] = Channel(name=name, prefix=prefix)
        values["kind"] = EventKind(values["kind"])
        values["previous_ids"] = tuple(values.get("previous_ids", ()))
        if "referral" in values:
            values["referral"] = Referral.from_json(values["referral"])
        return cls(**values)


_REQUIRED = object()
_FIELD_NAMES = tuple(f.name for f in fields(InboundEvent))
_DEFAULTS = {f.name: f.default for f in fields(InboundEvent) if f.default is not MISSING}
