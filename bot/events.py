"""Inbound events: what a webhook said, normalised across channels. Plain frozen data, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Channel(str, Enum):
    WHATSAPP = "whatsapp"
    MESSENGER = "messenger"

    @property
    def prefix(self) -> str:
        """Short tag used in learner ids: ``wa:<id>`` or ``ms:<id>``."""
        return "wa" if self is Channel.WHATSAPP else "ms"


class EventKind(str, Enum):
    TEXT = "text"  # free text typed by the learner
    CHOICE = "choice"  # a button, list row, quick reply, postback or referral payload
    MEDIA = "media"  # image, audio, video, document, sticker, location, contacts
    STATUS = "status"  # delivery status of one of our messages: recorded, never answered
    IGNORE = "ignore"  # reactions, echoes, standby, unsupported, system, edits
    TIMER = "timer"  # a server-side clock firing for this learner (bot.timers); never from Meta


@dataclass(frozen=True, kw_only=True, slots=True)
class InboundEvent:
    """One thing a learner did (or one status of a message we sent).

    ``user_id`` is the stable key of the learner on that channel: on WhatsApp the business-scoped
    user id (BSUID) when the payload carries one, else the phone number (``wa_id``/``from``); on
    Messenger the PSID. ``phone`` is the WhatsApp phone number (digits, no ``+``) when known, so
    replies can use ``to``; without it replies go to ``recipient`` = BSUID.
    ``reply_from`` is the id we answer from: WhatsApp ``phone_number_id`` or the Messenger Page id.
    ``message_id`` is the wamid/mid used for deduplication (empty for events that carry none).
    """

    channel: Channel
    kind: EventKind
    user_id: str
    reply_from: str
    message_id: str = ""
    timestamp_ms: int = 0
    phone: str = ""
    profile_name: str = ""
    text: str = ""  # TEXT: the body; CHOICE: the visible title if any
    payload: str = ""  # CHOICE: the button/list/quick-reply/postback id or referral ref
    media_type: str = ""  # MEDIA: image|audio|voice|video|document|sticker|location|contacts|file|...
    status: str = ""  # STATUS: sent|delivered|read|failed|played
    error_code: int = 0  # STATUS failed: Meta's error code
    detail: str = ""  # IGNORE: why (e.g. "reaction", "echo", "standby", "unsupported:edit")

    @property
    def learner_id(self) -> str:
        return f"{self.channel.prefix}:{self.user_id}"
