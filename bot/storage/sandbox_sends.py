"""What was "sent" to a simulator session's sandbox learners (``bot.model.sandbox``), and the failure switch.

The worker's sandbox recorder (``bot.delivery.sandbox``) appends each accepted request body, exactly as it
would have gone to the Graph API, to the session's list (``keys.sandbox_sent_key``), oldest first, kept
``SENT_TTL_SECONDS`` after the last send and at most ``SENT_MAX_CALLS`` (a longer session keeps its newest,
as the session log does). The simulator reads them back (``bot.simulator.outbound.RecordedOutbound``).
The failure switch (``keys.sandbox_failure_key``) is the Meta error code every send to the session's
learners fails with now; it expires with the session. Both keys share the session log's hash slot, and
each write touches one key: cluster-safe. Bodies are kept only here, never logged.
"""

from __future__ import annotations

import json
from typing import Any

import redis

from bot.storage.encoding import text
from bot.storage.keys import sandbox_failure_key, sandbox_sent_key

SENT_TTL_SECONDS = 7 * 24 * 3600  # as long as the session's log (bot.simulator.session.LOG_TTL_SECONDS)
SENT_MAX_CALLS = 2000
FAILURE_TTL_SECONDS = 24 * 3600  # a forgotten switch turns itself off

__all__ = ["fail_with", "failing_code", "record", "sent"]


def record(client: redis.Redis, session: str, *, channel: str, body: dict[str, Any], message_id: str,
           at_ms: int) -> None:
    """Keep one accepted send: ``{"channel", "body", "message_id", "at_ms"}``."""
    key = sandbox_sent_key(session)
    entry = json.dumps({"channel": channel, "body": body, "message_id": message_id, "at_ms": at_ms},
                       ensure_ascii=False, separators=(",", ":"))
    pipe = client.pipeline(transaction=True)
    pipe.rpush(key, entry)
    pipe.ltrim(key, -SENT_MAX_CALLS, -1)
    pipe.expire(key, SENT_TTL_SECONDS)
    pipe.execute()


def sent(client: redis.Redis, session: str) -> list[dict[str, Any]]:
    """Every kept send of the session, oldest first (an unreadable entry is left out)."""
    calls: list[dict[str, Any]] = []
    for raw in client.lrange(sandbox_sent_key(session), 0, -1):
        try:
            call = json.loads(text(raw))
        except ValueError:
            continue
        if isinstance(call, dict) and isinstance(call.get("body"), dict):
            calls.append(call)
    return calls


def fail_with(client: redis.Redis, session: str, code: int | None) -> None:
    """Every send to the session's learners fails with Meta error ``code`` from now on; None: they succeed."""
    if code is None:
        client.delete(sandbox_failure_key(session))
    else:
        client.set(sandbox_failure_key(session), int(code), ex=FAILURE_TTL_SECONDS)


def failing_code(client: redis.Redis, session: str) -> int | None:
    raw = client.get(sandbox_failure_key(session))
    value = text(raw).strip() if raw is not None else ""
    return int(value) if value.lstrip("-").isdigit() else None
