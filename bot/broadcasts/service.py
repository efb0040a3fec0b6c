"""``Broadcasts``: plan, start, follow, pause, resume, cancel and report a broadcast; and the worker's step.

How a broadcast goes out
------------------------
``start`` freezes the audience (the dry run's recipients, in order) on the broadcast's record
(``bot.storage.broadcast_store``) and hands the admitting to a *step chain*: a ``broadcast_step`` job on
the bulk queue holding the record's current step token. Each step admits the next recipients from the
cursor: for each, one turn of the learner's own (``bot.tutor.broadcast``: a clock event whose message id
``timer:bc:<id>:<message>`` the learner's dedup set refuses a second time, committed atomically with
their outbox), then records the recipient's state and moves the cursor. The learner's outbox is drained
by ``deliver_bulk`` jobs, paced by the sending number's bucket (``bot.delivery.throughput``: a broadcast
leaves a reserve to conversations) and the learner's own pair-rate bucket (``bot.delivery.pacing``).

Admission runs just ahead of sending: a step admits only while fewer than ``rate * lookahead`` recipients
wait in outboxes (``queued``), so the queues stay short, a conversation's job never sits behind a
broadcast's, a cancel or pause takes effect within about ``lookahead`` seconds, and the progress is honest.

Never twice, and resumable: a crash (SIGKILL, Ctrl-C of a process) between a learner's commit and the
cursor's move redoes at most one chunk; the redone turns are duplicates, refused by the learners' own
commits, and their states are recorded then. A worker's boot hands every running broadcast to a new
chain (its older chains stop at their next step: the token moved on); Dramatiq's redelivery of a dead
worker's jobs does the same for the chain that died with it. Two chains overlapping for a moment admit
nothing twice, for the same reason.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import redis

from bot.broadcasts.audience import PROGRESS_EVERY_LEARNERS, Query, RsvpLookup, learners, recorded_rsvp
from bot.broadcasts.plan import Plan
from bot.delivery.broker import JobQueue
from bot.delivery.timers import timer_event
from bot.dispatch import Dispatcher, EngineSource, Handled
from bot.model.replies import broadcast_kind
from bot.storage import broadcast_store
from bot.storage.clock import Clock, SharedTestClock, SystemClock
from bot.storage.keys import LearnerPart, learner_key
from bot.storage.outbox_item import OutboxItem
from bot.storage.releases import live_release
from bot.tutor import broadcast
from bot.tutor.engine import Engine
from bot.tutor.progress import Progress
from config.settings import Settings

STEP_AGAIN_SECONDS = 0.1  # a step that found no room comes back this soon
SETTLE_CHECK_SECONDS = 1.0  # once everyone is admitted: how often to look whether all is settled
RECONCILE_EVERY_MS = 5_000  # once everyone is admitted: look for records a killed worker left undone
SETTLE_TIMEOUT_MS = 10 * 60_000  # then queued items that never settle (an outbox dropped them) no longer hold it open


class BroadcastError(ValueError):
    """A broadcast cannot be planned or changed as asked (the message says why and what to do)."""


@dataclass(frozen=True, kw_only=True)
class BroadcastProgress:
    broadcast_id: str
    status: str
    message: str
    total: int
    admitted: int  # the cursor: recipients whose turn was taken
    counts: dict[str, int]
    created_ms: int = 0  # when it started (the console's average rate and ETA)

    def count(self, prefix: str) -> int:
        return sum(value for state, value in self.counts.items() if state.startswith(prefix))

    @property
    def queued(self) -> int:
        return self.counts.get("queued", 0)

    @property
    def sent(self) -> int:
        """Handed to Meta (whatever the statuses said since)."""
        return self.counts.get("sent", 0) + self.counts.get("delivered", 0) + self.counts.get("read", 0)

    @property
    def failed(self) -> int:
        return self.count("failed:")

    @property
    def skipped(self) -> int:
        return self.count("skipped:")

    @property
    def settled(self) -> int:
        return self.sent + self.failed + self.skipped

    @property
    def finished(self) -> bool:
        return self.status in ("done", "cancelled")


@dataclass(frozen=True, kw_only=True)
class Report:
    progress: BroadcastProgress
    plan: dict[str, object]

    def lines(self) -> list[str]:
        p = self.progress
        delivered = p.counts.get("delivered", 0) + p.counts.get("read", 0)
        out = [f"broadcast {p.broadcast_id}: {p.status}, message {p.message!r}, {p.total} recipients",
               f"  sent {p.sent}, delivered {delivered}, read {p.counts.get('read', 0)}, failed {p.failed}, "
               f"skipped {p.skipped}, waiting {p.queued}, not admitted {p.total - p.admitted}"]
        for state, count in sorted(p.counts.items()):
            if state.startswith("failed:"):
                out.append(f"  failed with error {state.removeprefix('failed:')}: {count}")
            elif state.startswith("skipped:"):
                out.append(f"  skipped ({state.removeprefix('skipped:')}): {count}")
        unreachable = self.plan.get("unreachable") or {}
        if isinstance(unreachable, dict):
            for reason, count in unreachable.items():
                out.append(f"  left out by the plan ({reason}): {count}")
        return out


@dataclass(frozen=True, kw_only=True)
class StepResult:
    again_in_seconds: float | None  # None: the chain ends
    token: str = ""  # the successor's token
    admitted: int = 0


class Broadcasts:
    """The one API for broadcasts (the CLI and the admin console); ``step`` is the worker's part."""

    def __init__(self, client: redis.Redis, engines: EngineSource, *, clock: Clock, queue: JobQueue | None = None,
                 dispatcher: Dispatcher | None = None, rate_per_second: float = 80.0, lookahead_seconds: float = 2.0,
                 chunk: int = 200, rsvp: RsvpLookup = recorded_rsvp, live_release: Callable[[], str] = lambda: ""):
        self.client = client
        self.engines = engines
        self.clock = clock
        self.queue = queue
        self.dispatcher = dataclasses.replace(dispatcher, notify=queue.deliver_bulk) \
            if dispatcher is not None and queue is not None else dispatcher
        self.window = max(1, int(rate_per_second * lookahead_seconds))
        self.chunk = max(1, chunk)
        self.rsvp = rsvp
        self.live_release = live_release

    @classmethod
    def build(cls, settings: Settings, client: redis.Redis, engines: EngineSource, *, queue: JobQueue | None,
              dispatcher: Dispatcher | None = None) -> Broadcasts:
        """The service as a process builds it: the settings' rate, lookahead and chunk; the live release."""
        return cls(client, engines, clock=SharedTestClock(client) if settings.movable_clock else SystemClock(),
                   queue=queue, dispatcher=dispatcher, rate_per_second=settings.whatsapp_messages_per_second,
                   lookahead_seconds=settings.broadcast_lookahead_seconds, chunk=settings.broadcast_chunk,
                   live_release=lambda: live_release(client))

    def _engine(self) -> Engine:
        return self.engines.engine_for(self.live_release())

    # -- the admin's side --------------------------------------------------------------------------
    def dry_run(self, query: Query, message_id: str, *, on_progress: Callable[[int], None] | None = None,
                progress_every: int = PROGRESS_EVERY_LEARNERS) -> Plan:
        """Who would be sent ``message_id`` now, how, and the cost. Sends nothing.

        It reads every learner's record (a minute for 100,000 on a busy box): the console runs it in the worker
        (``bot.console.jobs``), which passes ``on_progress``, called with the learners read so far every
        ``progress_every`` of them and once at the end."""
        engine = self._engine()
        message = engine.course.broadcast(message_id)
        if message is None:
            known = ", ".join(m.id for m in engine.course.broadcasts) or "none"
            raise BroadcastError(f"no broadcast message {message_id!r} in the live course (broadcasts.yaml); "
                                 f"known: {known}. Add it to flows/broadcasts.yaml and publish the flows")
        now = self.clock()
        plan = Plan(message=message_id, query=query, at_ms=now, currency=engine.policy.prices.currency)
        read = 0
        for progress in learners(self.client):
            read += 1
            if on_progress is not None and read % progress_every == 0:
                on_progress(read)
            if progress.is_new or not query.matches(progress, now, self.rsvp):
                continue
            plan.add(progress.learner_id, progress.channel,
                     broadcast.decide(engine.course, engine.policy, progress, message, now))
        if on_progress is not None:
            on_progress(read)
        return plan

    def start(self, query: Query, message_id: str, *, plan: Plan | None = None) -> str:
        """Start sending to the plan's recipients (the dry run now, unless given); the broadcast's id."""
        if self.queue is None:
            raise BroadcastError("starting a broadcast needs the send queue (REDIS_URL)")
        plan = plan or self.dry_run(query, message_id)
        now = self.clock()
        broadcast_id = datetime.fromtimestamp(now / 1000, tz=UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)
        broadcast_store.create(self.client, broadcast_id, {"message": message_id, "query": query.to_json(),
                                                           "plan": broadcast_store.dumps(plan.summary())},
                               plan.recipients, now)
        self._new_chain(broadcast_id)
        return broadcast_id

    def progress(self, broadcast_id: str) -> BroadcastProgress:
        meta = broadcast_store.meta(self.client, broadcast_id)
        if not meta:
            raise BroadcastError(f"no broadcast {broadcast_id!r}; `bottega broadcast list` shows them")
        return BroadcastProgress(broadcast_id=broadcast_id, status=meta.get("status", ""),
                                 message=meta.get("message", ""), total=int(meta.get("total", 0)),
                                 admitted=int(meta.get("cursor", 0)),
                                 counts=broadcast_store.counts(self.client, broadcast_id),
                                 created_ms=int(meta.get("created_ms") or 0))

    def report(self, broadcast_id: str) -> Report:
        progress = self.progress(broadcast_id)
        raw = broadcast_store.meta(self.client, broadcast_id).get("plan", "{}")
        plan = json.loads(raw) if raw else {}
        return Report(progress=progress, plan=plan if isinstance(plan, dict) else {})

    def every(self) -> list[BroadcastProgress]:
        return [self.progress(broadcast_id) for broadcast_id in broadcast_store.every_id(self.client)]

    def pause(self, broadcast_id: str) -> bool:
        """Stop admitting (what is admitted still goes, a few seconds' worth); ``resume`` goes on from the cursor."""
        self.progress(broadcast_id)
        return broadcast_store.set_status(self.client, broadcast_id, "paused", only_from=("running",))

    def resume(self, broadcast_id: str) -> bool:
        self.progress(broadcast_id)
        if not broadcast_store.set_status(self.client, broadcast_id, "running", only_from=("paused", "running")):
            return False
        self._new_chain(broadcast_id)
        return True

    def cancel(self, broadcast_id: str) -> bool:
        """Stop for good: nobody else is admitted; the few seconds' worth already admitted still go."""
        self.progress(broadcast_id)
        return broadcast_store.set_status(self.client, broadcast_id, "cancelled", only_from=("running", "paused"))

    def recover(self) -> list[str]:
        """Hand every running broadcast to a new step chain (a worker's boot: the old chain may have died)."""
        running = list(broadcast_store.with_status(self.client, "running"))
        for broadcast_id in running:
            self._new_chain(broadcast_id)
        return running

    def _new_chain(self, broadcast_id: str) -> None:
        assert self.queue is not None
        token = secrets.token_hex(8)
        broadcast_store.new_step(self.client, broadcast_id, token)
        self.queue.broadcast_step(broadcast_id, token)

    # -- the worker's side ---------------------------------------------------------------------------
    def step(self, broadcast_id: str, token: str) -> StepResult:
        """Admit the next recipients if there is room; when to step again (and the successor's token)."""
        meta = broadcast_store.meta(self.client, broadcast_id)
        if meta.get("status") != "running" or meta.get("step") != token:
            return StepResult(again_in_seconds=None)  # paused, cancelled, done, or another chain took over
        total, cursor = int(meta.get("total", 0)), int(meta.get("cursor", 0))
        queued = broadcast_store.counts(self.client, broadcast_id).get("queued", 0)
        admitted = 0
        if cursor >= total:
            if queued and self._reconcile_due(broadcast_id, meta):
                queued = self._reconcile(broadcast_id)
            if queued == 0 or self._stalled(broadcast_id, meta):
                broadcast_store.set_status(self.client, broadcast_id, "done", only_from=("running",))
                return StepResult(again_in_seconds=None)
            return self._pass(broadcast_id, token, SETTLE_CHECK_SECONDS, 0)
        room = min(self.chunk, self.window - queued, total - cursor)
        if room > 0:
            admitted = self._admit(broadcast_id, meta.get("message", ""),
                                   broadcast_store.audience_slice(self.client, broadcast_id, cursor, room))
            broadcast_store.advance(self.client, broadcast_id, cursor + admitted)
        return self._pass(broadcast_id, token, 0.0 if room >= self.chunk else STEP_AGAIN_SECONDS, admitted)

    def _pass(self, broadcast_id: str, token: str, delay: float, admitted: int) -> StepResult:
        successor = secrets.token_hex(8)
        if broadcast_store.take_step(self.client, broadcast_id, token, successor) != 1:
            return StepResult(again_in_seconds=None, admitted=admitted)
        return StepResult(again_in_seconds=delay, token=successor, admitted=admitted)

    def _reconcile_due(self, broadcast_id: str, meta: dict[str, str]) -> bool:
        now = self.clock()
        if now - int(meta.get("reconciled_ms") or 0) < RECONCILE_EVERY_MS:
            return False
        broadcast_store.set_fields(self.client, broadcast_id, reconciled_ms=str(now))
        return True

    def _reconcile(self, broadcast_id: str) -> int:
        """Recipients still ``queued`` whose message left their outbox: a worker killed between the send's
        pop and the broadcast's record. The learner's delivery hash, written with the pop, says it was sent;
        nothing there means the outbox dropped it unsent (the learner opted out meanwhile). Returns the
        recipients still waiting."""
        kind = broadcast_kind(broadcast_id)
        waiting = 0
        for lid in broadcast_store.recipients_in(self.client, broadcast_id, "queued"):
            items = self.client.lrange(learner_key(lid, LearnerPart.OUTBOX), 0, -1)
            if any(item is not None and item.proactive == kind for item in map(OutboxItem.from_json, items)):
                waiting += 1
                continue
            last = self.client.hget(learner_key(lid, LearnerPart.DELIVERY), broadcast_store.LAST_BROADCAST_FIELD)
            sent = last is not None and (last.decode() if isinstance(last, bytes) else str(last)).startswith(
                f"{broadcast_id} ")
            broadcast_store.settle(self.client, broadcast_id, lid, "sent" if sent else "skipped:dropped unsent")
        return waiting

    def _stalled(self, broadcast_id: str, meta: dict[str, str]) -> bool:
        now = self.clock()
        since = int(meta.get("admitted_all_ms") or 0)
        if not since:
            broadcast_store.set_fields(self.client, broadcast_id, admitted_all_ms=str(now))
            return False
        return now - since >= SETTLE_TIMEOUT_MS

    def _admit(self, broadcast_id: str, message_id: str, learner_ids: list[str]) -> int:
        if self.dispatcher is None:
            raise RuntimeError("admitting a broadcast's recipients needs the worker's dispatcher")
        payload = broadcast.timer_payload(broadcast_id, message_id)
        for lid in learner_ids:
            if lid == broadcast_store.ERASED_RECIPIENT:  # a learner erased after the start (bot.privacy)
                continue
            written: list[OutboxItem] = []
            handled = self.dispatcher.handle(timer_event(lid, payload, self.clock()), written=written)
            if written:
                broadcast_store.settle(self.client, broadcast_id, lid, "queued")
            elif broadcast_store.state_of(self.client, broadcast_id, lid):
                continue  # a step redone after a crash: this one was recorded already
            else:
                broadcast_store.settle(self.client, broadcast_id, lid, self._unsent_state(broadcast_id, lid, handled))
        return len(learner_ids)

    def _unsent_state(self, broadcast_id: str, lid: str, handled: Handled) -> str:
        """Why a recipient's turn wrote nothing — or, for a turn committed before a crash, that it did."""
        raw: dict[bytes, bytes] = self.client.hgetall(learner_key(lid, LearnerPart.PROGRESS))  # type: ignore[assignment]
        progress = Progress.from_hash(raw)
        if progress is None:
            return "skipped:not a learner any more"
        kind = broadcast_kind(broadcast_id)
        if handled is Handled.DUPLICATE and any(entry.kind == kind for entry in progress.proactive.sent):
            return "queued"
        engine = self._engine()
        message = engine.course.broadcast(broadcast_store.meta(self.client, broadcast_id).get("message", ""))
        if message is None:
            return "skipped:message gone from the course"
        decided = broadcast.decide(engine.course, engine.policy, progress, message, self.clock())
        return f"skipped:{decided.reason or 'not reachable at its turn'}"

