"""One simulator session: its learners (one per channel) and the log of what they did, in order.

A session is a short random number that names its learners, one per registered channel, so a new
session meets brand-new learners: in dev mode each is that channel's ``dev.transcript_user`` prefix
followed by the number (the golden transcripts' form); in production each is the session's sandbox
learner (``bot.model.sandbox``: ``0000`` followed by the number), a reserved id no real person has, whose
messages the worker records instead of sending to Meta.

The log (``bot.storage.keys.simulator_log_key``, a Redis list kept ``LOG_TTL_SECONDS``) holds one entry
per thing a learner did — wrote text, tapped a choice — and per move of the test clock. It gives each
phone the learner's own bubbles (and which of them Bottega marked read), and "save as golden
conversation" replays it as a transcript.

Ordering without a shared clock: each entry keeps ``calls_before``, how many calls the Graph API had
received when the learner's message was posted; every call from that index on arrives after it, as on
a phone.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field
from typing import Any

import redis

from bot.channels.parts import ChannelParts
from bot.model.sandbox import SESSION_DIGITS, sandbox_user
from bot.storage.encoding import text
from bot.storage.keys import simulator_log_key

LOG_TTL_SECONDS = 7 * 24 * 3600
LOG_MAX_ENTRIES = 2000  # a session longer than this keeps its newest entries


class Action:
    """What a log entry records (a closed vocabulary stored as text)."""

    SEND = "send"  # the learner wrote ``text``
    TAP = "tap"  # the learner tapped ``title`` (payload ``option_id``); ``latest``: on the newest choices
    CLOCK = "clock"  # the test clock moved ``seconds`` forward (every learner of the service)


@dataclass(frozen=True, kw_only=True, slots=True)
class Entry:
    action: str
    channel: str = ""  # the channel's name; "" for a clock move
    text: str = ""  # SEND: what was written; TAP: the title tapped
    option_id: str = ""  # TAP: the choice's payload
    latest: bool = True  # TAP: the choice was on the newest message offering choices (else an older one)
    seconds: float = 0.0  # CLOCK
    message_ids: tuple[str, ...] = field(default_factory=tuple)  # the wamid/mid Meta gave the learner's message
    calls_before: int = 0  # how many Graph API calls had been received when it was posted
    settled: bool = True  # every reply to earlier turns had been sent by then (the outbox was empty)
    at_ms: int = 0  # when, on the service's clock

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str) -> Entry:
        data: dict[str, Any] = json.loads(raw)
        known = set(cls.__dataclass_fields__)
        values = {name: value for name, value in data.items() if name in known}
        values["message_ids"] = tuple(values.get("message_ids", ()))
        return cls(**values)


def new_session() -> str:
    return f"{secrets.randbelow(10**SESSION_DIGITS):0{SESSION_DIGITS}d}"


def valid_session(session: str) -> bool:
    return len(session) == SESSION_DIGITS and session.isascii() and session.isdigit()


def learner_user(parts: ChannelParts, session: str, *, sandbox: bool = False) -> str:
    """The user id of this session's learner on ``parts``' channel: digits, like the golden transcripts'
    (dev), or the session's sandbox learner's (``sandbox``: production)."""
    return sandbox_user(session) if sandbox else f"{parts.dev.transcript_user}{session}"


def learner_id(parts: ChannelParts, session: str, *, sandbox: bool = False) -> str:
    return f"{parts.channel.prefix}:{learner_user(parts, session, sandbox=sandbox)}"


class SessionLog:
    def __init__(self, client: redis.Redis, session: str):
        if not valid_session(session):
            raise ValueError(f"simulator session {session!r} is not {SESSION_DIGITS} digits")
        self.client, self.session, self.key = client, session, simulator_log_key(session)

    def append(self, entry: Entry) -> None:
        pipe = self.client.pipeline(transaction=True)
        pipe.rpush(self.key, entry.to_json())
        pipe.ltrim(self.key, -LOG_MAX_ENTRIES, -1)
        pipe.expire(self.key, LOG_TTL_SECONDS)
        pipe.execute()

    def entries(self) -> list[Entry]:
        return [Entry.from_json(text(raw)) for raw in self.client.lrange(self.key, 0, -1)]
