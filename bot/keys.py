"""Every Redis key Bottega uses is built here, and only here (the format is pinned by a test).

One learner's keys share the hash tag ``{<learner id>}`` so they live in one hash slot: a Lua
script or MULTI over them stays atomic on a Redis Cluster too.
"""

from __future__ import annotations

from enum import Enum

PREFIX = "bottega"


class LearnerPart(str, Enum):
    PROGRESS = "progress"  # hash: the learner's record (bot.progress.Progress)
    SEEN = "seen"  # sorted set: inbound message ids already handled, scored by time (ms)
    OUTBOX = "outbox"  # list: rendered API calls waiting to be sent, in order
    SEND_LOCK = "sendlock"  # string: the token of the one sender draining the outbox
    DELIVERY = "delivery"  # hash: delivery facts (last status, send errors); never touched by the engine


def learner_key(learner_id: str, part: LearnerPart) -> str:
    """``bottega:{wa:39333...}:progress`` - the braces are the Redis Cluster hash tag."""
    if not learner_id or "{" in learner_id or "}" in learner_id:
        raise ValueError(f"learner id {learner_id!r} must be non-empty and free of braces")
    return f"{PREFIX}:{{{learner_id}}}:{LearnerPart(part).value}"


def learner_key_pattern(part: LearnerPart) -> str:
    """A SCAN pattern matching ``part`` of every learner (admin tools and recovery, never per message)."""
    return f"{PREFIX}:{{*}}:{LearnerPart(part).value}"


def learner_id_of(key: str | bytes) -> str:
    """The learner id inside a key built by ``learner_key``."""
    text = key.decode() if isinstance(key, bytes) else key
    return text[text.index("{") + 1:text.rindex("}")]


def global_key(name: str) -> str:
    """Keys that belong to no learner (flow registry, counters): ``bottega:<name>``."""
    return f"{PREFIX}:{name}"
