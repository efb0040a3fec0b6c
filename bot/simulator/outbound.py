"""Where the simulator reads what Bottega sent, and how it makes sending fail: the fake Graph API (dev) or
the worker's sandbox recorder (production).

In dev mode GRAPH_API_URL points at the project's fake Graph API (``bot/dev/fake_graph.py``, started by
``make run`` and the tests): every message call Bottega's worker made is listed at ``GET /_fake/calls``
as the real request body, and ``POST /_fake/config`` makes every call fail with a chosen Meta error
code (``permanent_code``) or succeed again. This module talks to it over HTTP only: production code
never imports ``bot.dev``.

In production the real Graph API lists nothing back, and the session's learners are sandbox learners
(``bot.model.sandbox``) whom the worker never sends to Meta: it records each request body in Redis instead
(``bot.delivery.sandbox``, ``bot.storage.sandbox_sends``). ``RecordedOutbound`` reads those for one session,
and sets that session's failure switch, which the recorder obeys.

``Outbound`` is the seam (three methods); ``bot.simulator.install`` takes an ``OutboundSource``, session ->
``Outbound``: one fake for every session in dev, each session's own records in production.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import redis
import requests

from bot.model.errors import DeliveryError
from bot.storage import sandbox_sends

TIMEOUT_SECONDS = 5.0  # the fake answers from memory, on loopback


class OutboundUnavailable(DeliveryError):
    """The fake Graph API did not answer (not started, or GRAPH_API_URL names the real one)."""


class Outbound(Protocol):
    def calls(self) -> list[dict[str, Any]]:
        """Every accepted message call, oldest first: ``{"body": <the request body>, ...}``."""
        ...

    def fail_with(self, code: int | None) -> None:
        """Make every send fail with Meta error ``code`` (HTTP 400); None: succeed again."""
        ...

    def failing_code(self) -> int | None:
        """The code every send fails with now, or None."""
        ...


OutboundSource = Callable[[str], Outbound]  # a simulator session -> what was sent to its learners


@dataclass(frozen=True, slots=True)
class RecordedOutbound:
    """What the worker recorded for simulator session ``session``'s sandbox learners (production)."""

    client: redis.Redis
    session: str

    def calls(self) -> list[dict[str, Any]]:
        return sandbox_sends.sent(self.client, self.session)

    def fail_with(self, code: int | None) -> None:
        sandbox_sends.fail_with(self.client, self.session, code)

    def failing_code(self) -> int | None:
        return sandbox_sends.failing_code(self.client, self.session)


def recorded(client: redis.Redis) -> OutboundSource:
    """The production source: each session's own records, on ``client``."""
    return lambda session: RecordedOutbound(client, session)


@dataclass(frozen=True, slots=True)
class FakeGraph:
    """The fake Graph API at ``url`` (GRAPH_API_URL, without the version)."""

    url: str

    def calls(self) -> list[dict[str, Any]]:
        calls = self._call("GET", "/_fake/calls")
        return [call for call in calls if isinstance(call, dict)] if isinstance(calls, list) else []

    def fail_with(self, code: int | None) -> None:
        self._call("POST", "/_fake/config", {"permanent_code": code})

    def failing_code(self) -> int | None:
        config = self._call("POST", "/_fake/config", {})  # no change: the current config
        code = config.get("permanent_code") if isinstance(config, dict) else None
        return int(code) if isinstance(code, int) else None

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            answer = requests.request(method, f"{self.url.rstrip('/')}{path}", json=body, timeout=TIMEOUT_SECONDS)
            answer.raise_for_status()
            return answer.json()
        except (requests.RequestException, ValueError) as error:
            raise OutboundUnavailable(
                f"the fake Graph API at {self.url} did not answer {method} {path} ({type(error).__name__}): "
                "the simulator needs it — start the service with `make run`, which starts one and sets "
                "GRAPH_API_URL") from None
