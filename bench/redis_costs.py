"""What one inbound message costs in Redis, measured in-process through the real app.

* Round trips: every redis-py network round trip in this process is counted (a pipeline or a Lua
  script is one ``send_packed_command``, so one round trip) while the Flask app from
  ``webhooks.create_app()`` - real Store, Engine and the Dramatiq enqueue (``JobQueue.deliver``) -
  answers signed webhooks through its test client. ``INFO commandstats`` deltas give the commands
  Redis executed for them, including those run inside Lua scripts.
* Bytes per learner: learners go through module 1 through the real app while a stub Graph API
  accepts every send and ``bot.delivery.outbox.drain`` empties the outbox as the worker would; then
  ``MEMORY USAGE`` of each of the learner's keys (``bot.storage.keys.learner_key`` for each ``LearnerPart``).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import redis
from redis.connection import AbstractConnection

from bench import traffic
from bot.channels.signature import sign
from bot.channels.whatsapp import WHATSAPP
from bot.delivery import outbox
from bot.model.events import EventKind, InboundEvent
from bot.storage.keys import LearnerPart, learner_key
from config.settings import Settings


@dataclass
class RoundTrips:
    messages: int
    round_trips_per_message: float
    commands_per_message: float  # executed by Redis, including inside Lua scripts
    by_command: dict[str, float] = field(default_factory=dict)
    duplicate_round_trips: float = 0.0  # a redelivered (already handled) message
    timer_turn_round_trips: float | None = None  # the turn that starts the check-up's clock


class _CountingSends:
    """Counts ``send_packed_command`` calls of every redis-py connection in this process."""

    def __init__(self) -> None:
        self.count = 0
        self._original = AbstractConnection.send_packed_command

    def __enter__(self) -> _CountingSends:
        original, counter = self._original, self

        def counted(connection, command, check_health=True):
            counter.count += 1
            return original(connection, command, check_health)

        AbstractConnection.send_packed_command = counted  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        AbstractConnection.send_packed_command = self._original  # type: ignore[method-assign]


def _commandstats(client: redis.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): values["calls"] for name, values in stats.items()}


def post_all(test_client, bodies: Iterable[tuple[str, bytes]]) -> None:
    for signature, raw in bodies:
        answer = test_client.post("/webhook", data=raw, headers={
            "Content-Type": "application/json", "X-Hub-Signature-256": signature})
        if answer.status_code != 200:
            raise RuntimeError(f"the webhook answered {answer.status_code}: {answer.get_data(as_text=True)}")


def round_trips(app, client: redis.Redis, messages: int, learners: int) -> RoundTrips:
    """Round trips and Redis commands per message for ``messages`` webhooks after a warm-up."""
    test_client = app.test_client()
    warmup = learners * 2
    post_all(test_client, traffic.signed_bodies(0, warmup, learners))
    bodies = list(traffic.signed_bodies(warmup, messages, learners))
    before = _commandstats(client)
    with _CountingSends() as sends:
        post_all(test_client, bodies)
    after = _commandstats(client)
    delta = {name: after.get(name, 0) - before.get(name, 0) for name in after}
    delta.pop("info", None)  # our own INFO
    by_command = {name: calls / messages for name, calls in sorted(delta.items()) if calls}
    with _CountingSends() as again:
        post_all(test_client, bodies[-100:])  # Meta redelivers: each one is a duplicate now
    return RoundTrips(messages=messages, round_trips_per_message=sends.count / messages,
                      commands_per_message=sum(delta.values()) / messages, by_command=by_command,
                      duplicate_round_trips=again.count / 100,
                      timer_turn_round_trips=_timer_turn(test_client, client, learner=learners + 1))


CHECKUP_START = (("text", "ciao"), ("button", "sys:lang:it", "Italiano"), ("text", "1"),
                 ("list", "sys:checkup", "Check-up digitale"))
CHECKUP_CLOCK = ("button", "sys:checkup:start", "Inizia il check-up")  # starts the 30-minute clock


def _timer_turn(test_client, client: redis.Redis, learner: int) -> float | None:
    """Round trips of the turn that schedules a clock event (None if the course has no such button)."""
    def signed(action: tuple[str, ...]) -> tuple[str, bytes]:
        raw = json.dumps(traffic.payload(learner, action)).encode()
        return sign(traffic.SECRET, raw), raw

    post_all(test_client, [signed(action) for action in CHECKUP_START])
    with _CountingSends() as sends:
        post_all(test_client, [signed(CHECKUP_CLOCK)])
    timers = client.zcard(learner_key(f"wa:{traffic.phone(learner)}", LearnerPart.TIMERS))
    return float(sends.count) if timers else None


class _AcceptingGraph:
    """Stands in for ``bot.delivery.graph.GraphClient``: accepts every message, returns a wamid."""

    def send(self, channel: str, sender_id: str, body: dict) -> str:
        return "" if body.get("status") == "read" else traffic.wamid()


def bytes_per_learner(client: redis.Redis, settings: Settings, learners: int) -> dict:
    """Mean ``MEMORY USAGE`` per key part for learners who finished module 1 (outbox drained)."""
    from webhooks import create_app

    client.flushdb()
    graph = _AcceptingGraph()

    def drain(lid: str) -> None:  # what the worker's deliver(lid) does, without Dramatiq
        outbox.drain(client, graph, lid, settings)  # type: ignore[arg-type]

    app = create_app(settings, redis_client=client, notify=drain)
    post_all(app.test_client(), traffic.signed_bodies(0, learners * traffic.MODULE_1_TURNS, learners))
    dispatcher = app.extensions["bottega"]["dispatcher"]
    store = dispatcher.store
    for learner in range(learners):  # Meta's "read" status for the last reply
        phone = traffic.phone(learner)
        dispatcher.handle(InboundEvent(channel=WHATSAPP, kind=EventKind.STATUS, user_id=phone,
                                       reply_from=traffic.PHONE_NUMBER_ID, message_id=traffic.wamid(),
                                       timestamp_ms=int(time.time() * 1000), status="read"))
    per_part: dict[str, list[int]] = {part.value: [] for part in LearnerPart}
    steps = set()
    for learner in range(learners):
        lid = f"wa:{traffic.phone(learner)}"
        steps.add(store.load(lid, "").progress.step)  # type: ignore[union-attr]
        for part in LearnerPart:
            used = client.memory_usage(learner_key(lid, part), samples=0)
            per_part[part.value].append(int(used or 0))
    means = {part: statistics.fmean(values) for part, values in per_part.items()}
    cap_key = "bench:seen-at-cap"
    now = int(time.time() * 1000)
    client.zadd(cap_key, {traffic.wamid(): now + i for i in range(settings.dedup_max_ids_per_learner)})
    at_cap = int(client.memory_usage(cap_key, samples=0) or 0)
    client.flushdb()
    return {"learners": learners, "messages_each": traffic.MODULE_1_TURNS, "where": sorted(steps),
            "per_part": means, "total": sum(means.values()), "seen_at_cap": at_cap,
            "dedup_max_ids": settings.dedup_max_ids_per_learner}
