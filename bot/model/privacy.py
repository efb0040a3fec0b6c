"""What may appear in a log line about a learner: a short, stable, one-way reference.

Learner ids contain phone numbers (``wa:39333...``); message texts are private. Log lines carry
``learner_ref(learner_id)`` and event kinds, never ids, phone numbers, names or texts.
"""

from __future__ import annotations

import hashlib


def learner_ref(learner_id: str) -> str:
    """12 hex characters of SHA-256: enough to follow one learner through the logs, not to find them."""
    return hashlib.sha256(learner_id.encode("utf-8")).hexdigest()[:12]
