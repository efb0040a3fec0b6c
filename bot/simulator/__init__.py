"""The chat simulator in the browser: a phone per registered channel, talking to the real ``/webhook``.

The learner's messages and taps become the webhook bodies Meta would post, signed on the server with the
channel's app secret and posted to the app's own ``/webhook`` (``learner_side``); the phones show the real
request bodies Bottega's worker sent to the Graph API (``outbound``), each read through its channel's
``display.bubble`` (``phones``). Beside each phone an inspector shows the learner's progress, clock
events, outbox, delivery record and 24-hour window (``inspector``, ``window``). Controls move the test
clock forward (``bot.storage.clock``), make every Graph API send fail with a chosen Meta error code, and
save a phone's conversation as a golden transcript for ``bottega flows test`` (``golden``).

Where it exists (``install``):

* dev mode (``make run``): at ``/simulator``, open to whoever reaches the dev server (it listens on
  127.0.0.1), on the fake Graph API that ``make run`` starts, with the test clock;
* production: only when the admin console hands ``install`` its sign-in check (``guard``, a view
  decorator) **and** a source of what was sent to the session's learners (``outbound``): the real Graph
  API lists nothing back. Without both, the pages do not exist (404). ``bot.web.app`` hands it the
  console's editor check and ``outbound.recorded``. Each session's learners there are sandbox learners
  (``bot.model.sandbox``: reserved ids no real person has); the worker never sends their messages to
  Meta but records the request bodies in Redis (``bot.delivery.sandbox``), which the phones show, and the
  failure switch fails only that session's sends. The production clock is the wall clock, which the page
  shows but cannot move, and "save as golden" downloads the file.
"""

from __future__ import annotations

import redis
from flask import Flask

from bot.simulator.outbound import FakeGraph, OutboundSource, recorded
from bot.simulator.routes import Guard, Simulator, blueprint
from bot.simulator.window import NextProactive, next_proactive
from config.settings import Settings

__all__ = ["Guard", "OutboundSource", "install", "recorded"]


def install(app: Flask, *, settings: Settings, client: redis.Redis, guard: Guard | None = None,
            outbound: OutboundSource | None = None, decide: NextProactive = next_proactive) -> bool:
    """Register the simulator's pages on ``app`` where they may exist (see above); True if registered.

    ``outbound``: session -> what was sent to its learners (dev: the fake Graph API at GRAPH_API_URL).
    ``decide``: how the next message Bottega starts would go (the proactive-messaging module's rule, once
    it exists; ``window.next_proactive`` until then).
    """
    if not settings.dev and (guard is None or outbound is None):
        return False
    fake = FakeGraph(settings.graph_api_url)
    sim = Simulator(settings=settings, client=client, decide=decide, sandbox=not settings.dev,
                    outbound=outbound or (lambda session: fake),
                    movable_clock=settings.movable_clock,
                    golden_folder=settings.flows_dir / "tests" if settings.dev else None)
    app.register_blueprint(blueprint(sim, guard))
    return True
