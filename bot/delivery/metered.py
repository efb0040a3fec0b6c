"""The Graph client, counted: every call by channel, result and Meta's error code, and its duration.

A subclass, so the client's own code (``bot.delivery.graph``) stays about Meta's API. Its debug line per
call carries the request id of the webhook that caused it (``config.logs``), never the body or recipient.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from bot.delivery.graph import GraphClient, GraphError
from config import meters

log = logging.getLogger(__name__)


class MeteredGraphClient(GraphClient):
    def send(self, channel: str, sender_id: str, body: dict[str, Any]) -> str:
        started = time.perf_counter()
        try:
            message_id = super().send(channel, sender_id, body)
        except GraphError as error:
            result = "transient" if error.transient else "permanent"
            meters.SENDS.labels(channel, result, str(error.code)).inc()
            if error.transient:
                meters.SEND_RETRIES.labels(channel, str(error.code)).inc()
            log.debug("graph send %s: %s code=%s", channel, result, error.code)
            raise
        finally:
            meters.SEND_SECONDS.labels(channel).observe(time.perf_counter() - started)
        meters.SENDS.labels(channel, "sent", "").inc()
        log.debug("graph send %s: sent", channel)
        return message_id
