"""The learner's rights asked in the chat (``bot.tutor.privacy``): the export served at an unguessable URL, and
the erasure once their goodbye has been sent.

* ``store_export(client, learner_id, token)``: the dispatcher calls it before the turn that shows the link
  commits (like a link code); ``export_learner``'s document is kept under ``bottega:export:{<token>}`` for
  ``EXPORT_TTL_SECONDS`` and served once at ``/data/<token>.json`` (``bot.web.data_export``): 256 random bits,
  an hour, then gone. ``DataExports`` (a holder) erases one that is still waiting when the learner is erased.
* ``erase_after_goodbye``: the worker's ``erase_learner`` job drains the learner's outboxes (their "done,
  erasing now" goes out first) and then erases everything (``rights.erase_learner``).
"""

from __future__ import annotations

import json
import re

import redis

from bot.privacy.rights import export_learner
from bot.storage.keys import export_key

EXPORT_TTL_SECONDS = 3600
TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)


def store_export(client: redis.Redis, learner_id: str, token: str, *, now_ms: int | None = None) -> None:
    document = export_learner(client, learner_id, now_ms=now_ms)
    payload = {"learner_id": learner_id, "document": document}
    client.set(export_key(token), json.dumps(payload, ensure_ascii=False, separators=(",", ":")),
               ex=EXPORT_TTL_SECONDS)


def read_export(client: redis.Redis, token: str) -> str | None:
    """The export's JSON document for ``token``, or None (unknown, expired, or not the shape of a token)."""
    if not TOKEN.fullmatch(token):
        return None
    raw = client.get(export_key(token))
    if raw is None:
        return None
    try:
        return json.dumps(json.loads(raw)["document"], ensure_ascii=False, indent=2)
    except (ValueError, KeyError, TypeError):
        return None
