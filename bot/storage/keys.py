"""Every Redis key Bottega uses is built here, and only here (the format is pinned by a test).

One learner's keys share the hash tag ``{<learner id>}`` so they live in one hash slot: a Lua
script or MULTI over them stays atomic on a Redis Cluster too.
"""

from __future__ import annotations

import zlib
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


# Certificates (bot.storage.certificate_store) belong to no learner's slot: they are found by code, by token
# or by learner. Each key's hash tag is ``{certificates-<shard>}`` by its own code, token or learner id
# (``shard_of``), so on a Redis Cluster they spread over SHARDS slots (placed after ``bottega:certificate:``,
# so learner scans matching ``bottega:{*}:...`` never see them). Keys written before the shards, under the
# one tag ``{certificates}``, are still read (``legacy_certificate_keys``).
CERTIFICATE_PREFIX = f"{PREFIX}:certificate"
_LEGACY_CERTIFICATE_PREFIX = f"{CERTIFICATE_PREFIX}:{{certificates}}"


def _certificate_tag(name: str) -> str:
    return f"{CERTIFICATE_PREFIX}:{{certificates-{shard_of(name)}}}"


def certificate_key(code: str) -> str:
    """Hash: one certificate by its normalised code: ``bottega:certificate:{certificates-N}:code:BTG-7K4M-...``."""
    return f"{_certificate_tag(code)}:code:{code}"


def certificate_token_key(token: str) -> str:
    """String: the code of the certificate whose PDF lives at ``/certificates/<token>.pdf``."""
    return f"{_certificate_tag(token)}:token:{token}"


def certificate_learner_key(learner_id: str) -> str:
    """String: the code of the latest certificate issued to ``learner_id`` (so a re-request re-sends it)."""
    return f"{_certificate_tag(learner_id)}:learner:{learner_id}"


def legacy_certificate_keys(kind: str, name: str) -> str:
    """Where a certificate key of ``kind`` (code, token, learner) was before the shards."""
    return f"{_LEGACY_CERTIFICATE_PREFIX}:{kind}:{name}"


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


# -- cross-learner indexes, sharded over many hash slots -----------------------------------------------
# On a Redis Cluster a key that every learner's turn touches would put all of them on one node. Each such
# index is split into SHARDS keys with their own hash tags ``{<index>-<n>}``; a learner's entries live in
# shard ``shard_of(learner id)``. Readers that need the whole index (the timer sweeper) read every shard.
SHARDS = 16


def shard_of(name: str) -> int:
    """The shard (0 .. SHARDS-1) of a learner id, a certificate code or token: stable across processes."""
    return zlib.crc32(name.encode()) % SHARDS


def timer_index_key(shard: int) -> str:
    """Sorted set: learner id -> their earliest due clock event (ms), for the learners of ``shard``."""
    return f"{PREFIX}:timers:due:{{timers-{shard}}}"


# The unsharded index of releases before the shards; still swept, so timers set then fire.
LEGACY_TIMER_INDEX_KEY = global_key("timers:due")


def timer_index_keys() -> tuple[str, ...]:
    """Every shard of the timer index, then the legacy key."""
    return (*(timer_index_key(n) for n in range(SHARDS)), LEGACY_TIMER_INDEX_KEY)


def learner_timer_index_key(learner_id: str) -> str:
    return timer_index_key(shard_of(learner_id))


# The live course release is read with every learner's load: one copy per shard, each learner reading
# their shard's (``bot.storage.releases.publish`` writes them all, then the legacy key).
LEGACY_LIVE_RELEASE_KEY = global_key("course:live")


def live_release_key(shard: int) -> str:
    return f"{PREFIX}:course:live:{{live-{shard}}}"


def learner_live_release_key(learner_id: str) -> str:
    return live_release_key(shard_of(learner_id))
