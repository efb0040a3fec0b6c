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
    ALIAS = "alias"  # string: under this id the person is the learner named here (phone -> BSUID, moved, linked)
    MERGE = "merge"  # string: a link/unlink journal entry (bot.storage.links): the learner is frozen while it is there
    LINK_TRIES = "linktries"  # string: link codes this id tried in the last 10 minutes (attempt limiting)
    EVENTS = "events"  # list: learning-analytics events committed with a turn, waiting for the sender to forward


# The parts of one *conversation* (one channel of a learner): each channel linked to a learner keeps its own
# dedup set, outbox and its delivery state, under the learner's hash tag (so a turn's commit stays one slot),
# suffixed ``@<channel name>`` when the channel is not the one the learner's id names (bot.storage.links).
CONVERSATION_PARTS = (LearnerPart.SEEN, LearnerPart.OUTBOX, LearnerPart.SEND_LOCK, LearnerPart.DELIVERY,
                      LearnerPart.RECEIPT, LearnerPart.WAKE, LearnerPart.PACE)


def learner_key(learner_id: str, part: LearnerPart) -> str:
    """``bottega:{wa:39333...}:progress`` - the braces are the Redis Cluster hash tag.

    ``learner_id`` may be a conversation address (``ms:123@whatsapp``, see ``address``): the key is then the
    conversation's own part under the learner's hash tag, ``bottega:{ms:123}:outbox@whatsapp``.
    """
    if not learner_id or "{" in learner_id or "}" in learner_id:
        raise ValueError(f"learner id {learner_id!r} must be non-empty and free of braces")
    owner, conversation = split_address(learner_id)
    suffix = f"@{conversation}" if conversation else ""
    return f"{PREFIX}:{{{owner}}}:{LearnerPart(part).value}{suffix}"


def address(learner_id: str, channel_name: str, channel_prefix: str) -> str:
    """Where one conversation of learner ``learner_id`` keeps its parts: the learner id itself for the channel
    the id names (``ms:123`` on Messenger), else ``ms:123@whatsapp`` (a channel linked to them)."""
    if learner_id.partition(":")[0] == channel_prefix:
        return learner_id
    return f"{learner_id}@{channel_name}"


def split_address(conversation: str) -> tuple[str, str]:
    """``ms:123@whatsapp`` -> (``ms:123``, ``whatsapp``); a plain learner id -> (id, "")."""
    owner, at, channel = conversation.rpartition("@")
    if at and channel.isalpha() and channel.islower() and owner:
        return owner, channel
    return conversation, ""


def learner_key_pattern(part: LearnerPart) -> str:
    """A SCAN pattern matching ``part`` of every learner (admin tools and recovery, never per message)."""
    return f"{PREFIX}:{{*}}:{LearnerPart(part).value}"


def learner_id_of(key: str | bytes) -> str:
    """The learner id inside a key built by ``learner_key``."""
    text = key.decode() if isinstance(key, bytes) else key
    return text[text.index("{") + 1:text.rindex("}")]


def address_of(key: str | bytes) -> str:
    """The conversation address of a key built by ``learner_key`` (``ms:123`` or ``ms:123@whatsapp``)."""
    text = key.decode() if isinstance(key, bytes) else key
    owner = learner_id_of(text)
    _, at, channel = text[text.rindex("}") + 1:].rpartition("@")
    return f"{owner}@{channel}" if at else owner


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


def certificate_record_pattern() -> str:
    """A SCAN pattern matching every certificate record, in every shard and under the legacy tag."""
    return f"{CERTIFICATE_PREFIX}:*:code:*"


def legacy_certificate_keys(kind: str, name: str) -> str:
    """Where a certificate key of ``kind`` (code, token, learner) was before the shards."""
    return f"{_LEGACY_CERTIFICATE_PREFIX}:{kind}:{name}"


# Business Open Days (bot.storage.open_day_ledger): each event's keys share the hash tag ``{event:<id>}``, so
# the script that takes a seat stays atomic on a Redis Cluster. A learner's keys are in another slot: no
# script ever spans both (the event's ledger decides, the learner's record follows).
class OpenDayPart(str, Enum):
    SEATS = "seats"  # sorted set: learner id -> the order they got their seat in
    WAITING = "waiting"  # sorted set: learner id -> the order they joined the waiting list in
    DECLINED = "declined"  # sorted set: learner id -> when they said they cannot come (ms)
    TICKETS = "tickets"  # hash: learner id -> calendar ticket, and "t:<ticket>" -> learner id
    SEQ = "seq"  # string: the counter that orders seats and the waiting list
    NOTICES = "notices"  # list: learners promoted from the waiting list who have not been told yet


def open_day_key(event_id: str, part: OpenDayPart) -> str:
    """``bottega:{event:od_2027_01}:seats`` - the braces are the Redis Cluster hash tag."""
    if not event_id or "{" in event_id or "}" in event_id:
        raise ValueError(f"event id {event_id!r} must be non-empty and free of braces")
    return f"{PREFIX}:{{event:{event_id}}}:{OpenDayPart(part).value}"


def open_day_key_pattern(part: OpenDayPart) -> str:
    """A SCAN pattern matching ``part`` of every Open Day (admin tools: export and erase a learner)."""
    return f"{PREFIX}:{{event:*}}:{OpenDayPart(part).value}"


def open_day_id_of(key: str | bytes) -> str:
    """The event id inside a key built by ``open_day_key``."""
    text = key.decode() if isinstance(key, bytes) else key
    return text[text.index("{event:") + len("{event:"):text.rindex("}")]


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


def sandbox_sent_key(session: str) -> str:
    """List: ``bottega:simulator:{<session>}:sent``, the request bodies the worker recorded instead of sending
    them to Meta for the session's sandbox learners (``bot.storage.sandbox_sends``); the log's hash slot."""
    return simulator_log_key(session).removesuffix(":log") + ":sent"


def sandbox_failure_key(session: str) -> str:
    """String: ``bottega:simulator:{<session>}:fail``, the Meta error code every send to the session's sandbox
    learners fails with now (absent: they succeed)."""
    return simulator_log_key(session).removesuffix(":log") + ":fail"


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


# The inbox's list of open handovers (bot.handover): learner id -> when they asked for a person (ms), written
# after each turn's commit that opens or closes one. Sharded like the timer index, so a learners' rush to "talk
# to a person" spreads over the cluster; the inbox reads every shard (then the legacy key).
LEGACY_HANDOVER_INDEX_KEY = global_key("handover:open")


def handover_index_key(shard: int) -> str:
    """Sorted set: learner id -> since when their handover is open (ms), for the learners of ``shard``."""
    return f"{PREFIX}:handover:open:{{handover-{shard}}}"


def handover_index_keys() -> tuple[str, ...]:
    """Every shard of the open-handover index, then the legacy key (written before the shards)."""
    return (*(handover_index_key(n) for n in range(SHARDS)), LEGACY_HANDOVER_INDEX_KEY)


def learner_handover_index_key(learner_id: str) -> str:
    return handover_index_key(shard_of(learner_id))


# The sending number's throughput bucket (bot.delivery.throughput): one small hash per WhatsApp number or Page,
# shared by every worker process. Its own hash tag: one number's bucket is one key, in one slot.
def throughput_key(channel: str, sender_id: str) -> str:
    """Hash: ``bottega:throughput:{wa:100000000000001}`` - tokens and the time they were counted."""
    if not sender_id or "{" in sender_id or "}" in sender_id:
        raise ValueError(f"sender id {sender_id!r} must be non-empty and free of braces")
    return f"{PREFIX}:throughput:{{{channel}:{sender_id}}}"


# Broadcasts (bot.broadcasts, bot.storage.broadcast_store): one broadcast's definition and audience share the
# hash tag ``{bc:<id>}``; its recipients' states and their counts are sharded by learner (``broadcast_state_key``:
# ``{bc:<id>.<n>}``), each shard's state and counts in one slot, so the script that moves a recipient's state stays
# in one slot and a broadcast's status webhooks spread over the cluster. The index of broadcasts (one entry
# per broadcast) is one sorted set of its own.
BROADCAST_INDEX_KEY = f"{PREFIX}:broadcasts"


class BroadcastPart(str, Enum):
    META = "meta"  # hash: the definition (query, message, status, cursor, totals)
    AUDIENCE = "audience"  # list: the recipients' learner ids, in sending order (frozen at start)
    STATE = "state"  # hash: learner id -> that recipient's state (queued, sent, delivered, read, failed:<code>...)
    COUNTS = "counts"  # hash: state -> how many recipients are in it (STATE and COUNTS: per shard, or unsharded
    #                    for a broadcast started before the shards)
    STEP_LOCK = "steplock"  # string: the one step admitting recipients now


def broadcast_key(broadcast_id: str, part: BroadcastPart) -> str:
    """``bottega:broadcast:{bc:20261130-0915-ab12}:meta``."""
    if not broadcast_id or "{" in broadcast_id or "}" in broadcast_id or ":" in broadcast_id:
        raise ValueError(f"broadcast id {broadcast_id!r} must be non-empty and free of braces and colons")
    return f"{PREFIX}:broadcast:{{bc:{broadcast_id}}}:{BroadcastPart(part).value}"


def broadcast_shard_key(broadcast_id: str, shard: int, part: BroadcastPart) -> str:
    """``bottega:broadcast:{bc:20261130-0915-ab12.3}:state``: shard 3 of a broadcast's recipients (STATE, COUNTS)."""
    if part not in (BroadcastPart.STATE, BroadcastPart.COUNTS):
        raise ValueError(f"only a broadcast's state and counts are sharded, not {part}")
    broadcast_key(broadcast_id, part)  # the same checks of the id
    return f"{PREFIX}:broadcast:{{bc:{broadcast_id}.{shard}}}:{BroadcastPart(part).value}"
# Link codes (bot.storage.links): ``bottega:linkcode:{<CODE>}`` -> JSON {learner, channel}, 10 minutes, read once
# with GETDEL. A code names no learner in its key; each is its own slot (one command touches it).
LINK_CODE_PREFIX = f"{PREFIX}:linkcode"


def link_code_key(code: str) -> str:
    if not code or "{" in code or "}" in code:
        raise ValueError("a link code must be non-empty and free of braces")
    return f"{LINK_CODE_PREFIX}:{{{code}}}"
# The admin console (bot.console): its users, sign-in failure counters and audit log. No learner ids here:
# the audit log names a learner by ``learner_ref`` only, so erasing a learner leaves nothing to find.
# The users' keys share the hash tag ``{admin}`` (few keys, one slot), so the MULTI that writes a user and the
# set of names stays atomic on a Redis Cluster too.
ADMIN_PREFIX = f"{PREFIX}:admin"
ADMIN_USERS_KEY = f"{ADMIN_PREFIX}:{{admin}}:users"  # set: every admin's name
ADMIN_AUDIT_KEY = f"{ADMIN_PREFIX}:audit"  # stream: one entry per changing action (who, what, when)


def admin_user_key(name: str) -> str:
    """Hash: one admin (``bot.console.users``): role, argon2id hash, session version."""
    return f"{ADMIN_PREFIX}:{{admin}}:user:{name}"


def admin_login_failures_key(subject: str) -> str:
    """String counter with a TTL: wrong passwords for a client address or a user name in the current minute."""
    return f"{ADMIN_PREFIX}:login-failures:{subject}"


def admin_job_key(job_id: str) -> str:
    """Hash with a TTL: one console action the worker runs (a dry run, a send, an announce; ``bot.console.jobs``):
    ``bottega:admin:job:{<id>}``, one key in its own slot (every command on it touches it alone)."""
    if not job_id or "{" in job_id or "}" in job_id:
        raise ValueError(f"job id {job_id!r} must be non-empty and free of braces")
    return f"{ADMIN_PREFIX}:job:{{{job_id}}}"


# A learner's data export asked for in the chat (bot.privacy.chat): ``bottega:export:{<token>}`` -> JSON, an hour.
EXPORT_PREFIX = f"{PREFIX}:export"


def export_key(token: str) -> str:
    if not token or "{" in token or "}" in token:
        raise ValueError("an export token must be non-empty and free of braces")
    return f"{EXPORT_PREFIX}:{{{token}}}"


# Learning analytics (bot.analytics): events go from each learner's EVENTS list (their own slot, written by the
# commit) to one of N streams, each with a hash tag of its own (``{analytics.3}``) so the streams spread over a
# Redis Cluster's slots; a learner's events always go to the same stream (so they stay in order).
ANALYTICS_PREFIX = f"{PREFIX}:analytics"
ANALYTICS_GROUP = "analytics"  # the consumer group that folds the streams into the analytics store


def analytics_stream_key(shard: int) -> str:
    """Stream: ``bottega:analytics:{analytics.3}:events``, shard 3 of the analytics event streams."""
    if shard < 0:
        raise ValueError(f"analytics stream shard {shard} must be >= 0")
    return f"{ANALYTICS_PREFIX}:{{analytics.{shard}}}:events"
