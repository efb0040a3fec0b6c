"""Every Redis key Bottega uses is built here, and only here (the format is pinned by a test).

One learner's keys share the hash tag ``{<learner id>}`` so they live in one hash slot: a Lua
script or MULTI over them stays atomic on a Redis Cluster too.
"""

from __future__ import annotations

from enum import Enum

PREFIX = "bottega"


class LearnerPart(str, Enum):
    PROGRESS = "progress"  # hash: the learner's record (bot.tutor.progress.Progress)
    SEEN = "seen"  # sorted set: inbound message ids already handled, scored by time (ms)
    OUTBOX = "outbox"  # list: rendered API calls waiting to be sent, in order
    SEND_LOCK = "sendlock"  # string: the token of the one sender draining the outbox
    DELIVERY = "delivery"  # hash: delivery facts (last status, send errors); never touched by the engine
    TIMERS = "timers"  # sorted set: this learner's pending clock events (payload scored by due time, ms)
    RECEIPT = "receipt"  # string: the one read receipt waiting to be sent (the latest inbound message only)
    WAKE = "wake"  # string: when the one scheduled deliver job for this outbox is due (ms)
    PACE = "pace"  # string: the learner's send budget (bot.delivery.pacing), written by the lock holder
    ALIAS = "alias"  # string: under this id the person is the learner named here (phone -> BSUID, moved ids)


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


# Certificates (bot.storage.certificate_store) belong to no learner's slot: they are found by code or token.
# They share the hash tag ``{certificates}`` (placed after ``bottega:certificate:``, so learner scans
# matching ``bottega:{*}:...`` never see them) so the MULTI that writes a record and its indexes stays
# atomic on a Redis Cluster; certificates are few (one per graduate), so one slot holds them all.
CERTIFICATE_PREFIX = f"{PREFIX}:certificate:{{certificates}}"


def certificate_key(code: str) -> str:
    """Hash: one certificate by its normalised code: ``bottega:certificate:{certificates}:code:BTG-7K4M-Q9XR``."""
    return f"{CERTIFICATE_PREFIX}:code:{code}"


def certificate_token_key(token: str) -> str:
    """String: the code of the certificate whose PDF lives at ``/certificates/<token>.pdf``."""
    return f"{CERTIFICATE_PREFIX}:token:{token}"


def certificate_learner_key(learner_id: str) -> str:
    """String: the code of the latest certificate issued to ``learner_id`` (so a re-request re-sends it)."""
    return f"{CERTIFICATE_PREFIX}:learner:{learner_id}"


# Per-client request counters of the public certificate pages (bot.web.certificates). Flask-Limiter's
# storage (the ``limits`` package) writes them as ``bottega:ratelimit:LIMITER/<client>/<route>/<limit>``
# and gives each the TTL of its window; outside every learner's and certificate's keys.
RATE_LIMIT_PREFIX = f"{PREFIX}:ratelimit"


# The browser simulator (bot.simulator): one session's log of what its learners did, in order, kept a week.
# Outside every learner's keys: a session plays several learners (one per channel).
SIMULATOR_PREFIX = f"{PREFIX}:simulator"


def simulator_log_key(session: str) -> str:
    """List: ``bottega:simulator:{<session>}:log``, one JSON entry per learner action or clock move."""
    if not session or "{" in session or "}" in session:
        raise ValueError(f"simulator session {session!r} must be non-empty and free of braces")
    return f"{SIMULATOR_PREFIX}:{{{session}}}:log"


# The sending number's throughput bucket (bot.delivery.throughput): one small hash per WhatsApp number or Page,
# shared by every worker process. Its own hash tag: one number's bucket is one key, in one slot.
def throughput_key(channel: str, sender_id: str) -> str:
    """Hash: ``bottega:throughput:{wa:100000000000001}`` - tokens and the time they were counted."""
    if not sender_id or "{" in sender_id or "}" in sender_id:
        raise ValueError(f"sender id {sender_id!r} must be non-empty and free of braces")
    return f"{PREFIX}:throughput:{{{channel}:{sender_id}}}"


# Broadcasts (bot.broadcasts, bot.storage.broadcast_store): one broadcast's keys share the hash tag
# ``{bc:<id>}``, so a script over its definition, recipients and counts stays in one slot; the index of
# broadcasts is one sorted set of its own.
BROADCAST_INDEX_KEY = f"{PREFIX}:broadcasts"


class BroadcastPart(str, Enum):
    META = "meta"  # hash: the definition (query, message, status, cursor, totals)
    AUDIENCE = "audience"  # list: the recipients' learner ids, in sending order (frozen at start)
    STATE = "state"  # hash: learner id -> that recipient's state (queued, sent, delivered, read, failed:<code>...)
    COUNTS = "counts"  # hash: state -> how many recipients are in it
    STEP_LOCK = "steplock"  # string: the one step admitting recipients now


def broadcast_key(broadcast_id: str, part: BroadcastPart) -> str:
    """``bottega:broadcast:{bc:20261130-0915-ab12}:meta``."""
    if not broadcast_id or "{" in broadcast_id or "}" in broadcast_id or ":" in broadcast_id:
        raise ValueError(f"broadcast id {broadcast_id!r} must be non-empty and free of braces and colons")
    return f"{PREFIX}:broadcast:{{bc:{broadcast_id}}}:{BroadcastPart(part).value}"
