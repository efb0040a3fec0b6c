"""Where one webhook request's time goes, in-process through ``create_app()``'s test client.

* Stages: the functions a request passes through are wrapped with a stopwatch that keeps each
  stage's own (exclusive) wall time - a log line written inside ``Engine.step`` counts as logging,
  not as the engine. What no stage claims is Flask/werkzeug (here with the test client's request
  building, which gunicorn replaces with its own HTTP parsing) and the view's glue.
* Profile: cProfile of the same requests, own time summed by package.
Single-threaded and unloaded, so these are costs, not queueing.
"""

from __future__ import annotations

import cProfile
import logging
import pstats
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import traffic
from bench.redis_costs import post_all


class _Stopwatch:
    """Exclusive wall time per stage: time spent in a nested stage is taken off its parent."""

    def __init__(self) -> None:
        self.own: dict[str, float] = {}
        self._stack: list[list[float]] = []  # per open stage: [time spent in nested stages]

    def wrap(self, stage: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            self._stack.append([0.0])
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent = time.perf_counter() - started
                nested = self._stack.pop()[0]
                self.own[stage] = self.own.get(stage, 0.0) + spent - nested
                if self._stack:
                    self._stack[-1][0] += spent

        return timed


def stage_times(app, messages: int, learners: int, start: int) -> dict[str, float]:
    """µs per message in each stage of the webhook path, plus ``total`` and ``Flask/werkzeug + glue``."""
    from dramatiq.brokers.redis import RedisBroker

    from bot import dispatch
    from bot.channels import parsing as inbound
    from bot.channels import signature as security
    from bot.storage.store import Store
    from bot.tutor.engine import Engine

    watch = _Stopwatch()
    patches: list[tuple[Any, str, Any]] = [
        (security, "signature_valid", "signature (HMAC, x2: one per product secret)"),
        (inbound, "parse", "inbound.parse"),
        (Store, "load", "Store.load (1 round trip)"),
        (Engine, "step", "Engine.step"),
        (dispatch, "outbox_items", "render replies (outbox_items)"),
        (Store, "commit", "Store.commit (1 round trip)"),
        (RedisBroker, "enqueue", "Dramatiq enqueue (1 round trip)"),
        (logging.Logger, "_log", "logging (records + handlers)"),
    ]
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    bodies = list(traffic.signed_bodies(start, messages, learners))
    try:
        for owner, name, stage in patches:
            setattr(owner, name, watch.wrap(stage, getattr(owner, name)))
        test_client = app.test_client()
        started = time.perf_counter()
        post_all(test_client, bodies)
        total = time.perf_counter() - started
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)
    per_message = {stage: spent * 1e6 / messages for stage, spent in watch.own.items()}
    rest = total * 1e6 / messages - sum(per_message.values())
    per_message["the rest: Flask/werkzeug, test client, JSON, glue"] = rest
    per_message["total"] = total * 1e6 / messages
    return per_message


def _package(filename: str) -> str:
    """A short owner for a profiled function's file: our module, or the library it lives in."""
    path = Path(filename)
    parts = path.parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].split(".")[0]
    for ours in ("bot", "config"):
        if ours in parts:
            return ".".join(parts[parts.index(ours):]).removesuffix(".py")
    if path.name == "webhooks.py":
        return "webhooks"
    for index, part in enumerate(parts[:-1]):
        if part.startswith("python3"):  # the standard library: name its top-level module
            return "stdlib:" + Path(parts[index + 1]).stem
    return path.stem or filename


SOCKET_WAIT = {"<method 'recv' of '_socket.socket' objects>", "<method 'recv_into' of '_socket.socket' objects>",
               "<method 'sendall' of '_socket.socket' objects>"}


def profile_shares(app, messages: int, learners: int, start: int) -> list[tuple[str, float]]:
    """Share of a webhook request's profiled time by owner; C functions count for their Python caller,
    except socket send/receive, counted as waiting for Redis."""
    test_client = app.test_client()
    bodies = list(traffic.signed_bodies(start, messages, learners))
    profiler = cProfile.Profile()
    profiler.enable()
    post_all(test_client, bodies)
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    owners: dict[str, float] = {}
    total = 0.0
    for (filename, _, function), (_, _, own, _, callers) in stats.items():
        total += own
        if filename != "~":
            owner = _package(filename)
        elif function in SOCKET_WAIT:
            owner = "socket send/recv (waiting for Redis)"
        else:  # a C function: charge its callers, in proportion to the time each spent in it
            caller_own = {caller: values[2] for caller, values in callers.items()}
            spread = sum(caller_own.values()) or 1.0
            for caller, spent in caller_own.items():
                name = _package(caller[0]) if caller[0] != "~" else "C builtins"
                owners[name] = owners.get(name, 0.0) + own * spent / spread
            continue
        owners[owner] = owners.get(owner, 0.0) + own
    return sorted(((owner, spent / total) for owner, spent in owners.items()), key=lambda kv: -kv[1])

