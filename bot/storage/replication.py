"""Waiting for a replica: an acknowledged webhook must survive the loss of the Redis node that took it.

With ``REDIS_WAIT_REPLICAS`` > 0 the store follows each commit with ``WAIT <replicas> <timeout>`` on the
same connection (WAIT counts the writes of its own connection), so the webhook answers 200 only once that
many replicas hold the turn. Fewer within ``REDIS_WAIT_TIMEOUT_MS``: ``NotReplicated``, answered 503 — the
turn is committed on the primary, and Meta's redelivery is a duplicate there, or, if the primary was lost
with it, the turn is done again on the promoted replica. 0 (the default): no WAIT, as on a single server.
"""

from __future__ import annotations

from bot.model.errors import StorageError


class NotReplicated(StorageError):
    """A commit reached fewer replicas than required in time; the webhook answers 503, Meta redelivers."""
