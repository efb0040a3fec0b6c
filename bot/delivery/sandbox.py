"""The Graph client of sandbox learners (``bot.model.sandbox``): it records, it never calls Meta.

``outbox.drain`` sends a sandbox learner's outbox through a ``SandboxGraph`` instead of the worker's Graph
client (``sender_for``): each request body, exactly as it would have been POSTed, is kept for the simulator in
the session's list (``bot.storage.sandbox_sends``), and the send is answered with a synthetic message id
built as Meta builds its answer (the channel's ``dev.fake_answer``, read by ``graph.read_answer``). When the
simulator's failure switch holds a Meta error code, every send fails with that code instead, as Meta's
HTTP 400 error body would, so the outbox retries, drops and records it exactly as it would a real one.

No Graph API call, no token, no throughput token of the real sending number; nothing about the body or
the learner is logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis

from bot import channels
from bot.delivery.graph import GraphRequestError, LocalCode, Sender, read_answer
from bot.model.sandbox import session_of
from bot.storage import sandbox_sends
from bot.storage.clock import system_ms

FAILURE_STATUS = 400  # what Meta answers a refused send with; the code, not the status, decides
__all__ = ["SandboxGraph", "sender_for"]


@dataclass(frozen=True, slots=True)
class SandboxGraph:
    """Sends for the sandbox learners of simulator session ``session``."""

    client: redis.Redis
    session: str

    def send(self, channel: str, sender_id: str, body: dict[str, Any]) -> str:
        try:
            parts = channels.parts_for(channel)
        except channels.UnknownChannel as unknown:
            raise GraphRequestError(f"{unknown}: fix the outbox item's producer", code=LocalCode.NOT_SENT,
                                    transient=False) from None
        code = sandbox_sends.failing_code(self.client, self.session)
        if code is not None:
            read_answer(channel, FAILURE_STATUS, {"error": {
                "code": code, "type": "OAuthException", "fbtrace_id": "sandbox",
                "message": "the simulator's failure switch refused this send (sandbox learner)"}})
        answer, _ = parts.dev.fake_answer(body)
        message_id = read_answer(channel, 200, answer)
        sandbox_sends.record(self.client, self.session, channel=channel, body=body, message_id=message_id,
                             at_ms=system_ms())
        return message_id


def sender_for(client: redis.Redis, lid: str, graph: Sender) -> Sender:
    """What sends ``lid``'s outbox (a learner id or conversation address): the recorder for a sandbox
    learner, else ``graph``."""
    session = session_of(lid)
    return graph if session is None else SandboxGraph(client, session)
