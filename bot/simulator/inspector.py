"""What the simulator's inspector shows beside each phone: the learner's progress, clock events, outbox,
delivery record and 24-hour window, read from Redis in one round trip (never on the webhook's path)."""

from __future__ import annotations

from dataclasses import dataclass, field

import redis

from bot.delivery.graph import advice
from bot.model.privacy import learner_ref
from bot.simulator.window import NextProactive, Proactive, ServiceWindow, service_window
from bot.storage.encoding import text
from bot.storage.keys import LearnerPart, learner_key
from bot.tutor.progress import Progress


@dataclass(frozen=True, kw_only=True, slots=True)
class Timer:
    payload: str  # what fires: e.g. "checkup:1:warn"
    due_ms: int


@dataclass(frozen=True, kw_only=True, slots=True)
class Inspection:
    learner_id: str
    reference: str  # learner_ref: what the logs call this learner
    now_ms: int
    progress: Progress | None
    timers: tuple[Timer, ...] = ()
    outbox_waiting: int = 0
    delivery: dict[str, str] = field(default_factory=dict)  # bot.delivery.outbox's record
    window: ServiceWindow | None = None
    proactive: Proactive | None = None

    @property
    def last_error_advice(self) -> str:
        code = self.delivery.get("last_error_code", "")
        if not code.lstrip("-").isdigit() or self.progress is None:
            return ""
        return advice(self.progress.channel, int(code))


def inspect(client: redis.Redis, learner_id: str, now_ms: int, decide: NextProactive) -> Inspection:
    pipe = client.pipeline(transaction=False)
    pipe.hgetall(learner_key(learner_id, LearnerPart.PROGRESS))
    pipe.zrange(learner_key(learner_id, LearnerPart.TIMERS), 0, -1, withscores=True)
    pipe.llen(learner_key(learner_id, LearnerPart.OUTBOX))
    pipe.hgetall(learner_key(learner_id, LearnerPart.DELIVERY))
    raw_progress, raw_timers, waiting, raw_delivery = pipe.execute()
    progress = Progress.from_hash(raw_progress)
    timers = tuple(Timer(payload=text(member), due_ms=int(score)) for member, score in raw_timers)
    delivery = {text(name): text(value) for name, value in raw_delivery.items()}
    if progress is None:
        return Inspection(learner_id=learner_id, reference=learner_ref(learner_id), now_ms=now_ms, progress=None,
                          outbox_waiting=int(waiting), delivery=delivery)
    return Inspection(learner_id=learner_id, reference=learner_ref(learner_id), now_ms=now_ms, progress=progress,
                      timers=timers, outbox_waiting=int(waiting), delivery=delivery,
                      window=service_window(progress, now_ms), proactive=decide(progress, now_ms))
