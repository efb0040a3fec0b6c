"""The one place that knows the whole sequence for one inbound event.

claim + load (1 Redis round trip) -> engine step (no I/O) -> render -> commit progress, dedup id and
outbox atomically (1 round trip) -> notify the sender (1 round trip: a Dramatiq message).

Exactly once: the commit refuses a message id already handled. In order, nothing lost: two messages
of one learner racing in different workers both load the same ``rev``; only one commit wins, the
other reloads and redoes its turn on the new state. If the process dies after the commit but before
the notify, Meta redelivers the webhook (we never answered 200): the redelivery is a duplicate, and a
duplicate with replies still in the outbox notifies the sender again.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from bot import outbound
from bot.engine import Engine
from bot.events import Channel, EventKind, InboundEvent
from bot.outbound import whatsapp as whatsapp_out
from bot.privacy import learner_ref
from bot.progress import Progress
from bot.replies import Reply
from bot.store import CommitResult, Store

log = logging.getLogger(__name__)

Notify = Callable[[str], None]  # "learner <id> has replies waiting in the outbox"


LEARNER_MESSAGES = frozenset({EventKind.TEXT, EventKind.CHOICE, EventKind.MEDIA})


class EngineSource(Protocol):
    """Gives the engine for a course release (``bot.releases.Registry``, or a fixed one)."""

    def engine_for(self, release: str) -> Engine: ...


class Handled(str, Enum):
    PROCESSED = "processed"
    DUPLICATE = "duplicate"
    STATUS = "status"
    IGNORED = "ignored"


class ConcurrencyError(Exception):
    """A learner's turn kept losing the optimistic-lock race; the webhook answers 503 so Meta retries."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Dispatcher:
    store: Store
    engines: EngineSource
    notify: Notify
    commit_retries: int = 50

    def handle(self, event: InboundEvent, *, now_ms: int | None = None) -> Handled:
        if event.kind is EventKind.IGNORE:
            return Handled.IGNORED
        if event.kind is EventKind.STATUS:
            self.store.record_status(event)
            return Handled.STATUS
        now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
        message_id = event.message_id or f"{event.kind.value}:{event.timestamp_ms}:{event.payload}"
        lid = event.learner_id
        for _ in range(self.commit_retries):
            snapshot = self.store.load(lid, message_id)
            if snapshot.seen:  # handled before; finish what a crash may have left undone after that commit
                if snapshot.next_timer_ms:
                    self.store.wake_at(lid, snapshot.next_timer_ms)
                if snapshot.outbox_length:
                    self.notify(lid)
                return Handled.DUPLICATE
            before = snapshot.progress or Progress.new(event, now_ms)
            progress = _with_identity(before, event, now_ms)
            outcome = self.engines.engine_for(snapshot.release).step(progress, event)
            items = outbox_items(outcome.progress, outcome.replies, event, now_ms)
            result = self.store.commit(outcome.progress, expected_rev=before.rev, message_id=message_id,
                                       now_ms=now_ms, outbox_items=items, timers=outcome.timers)
            if result is CommitResult.COMMITTED:
                if outcome.timers:
                    self.store.wake_at(lid, min(due for due, _ in outcome.timers))
                for certificate in outcome.certificates:
                    self.store.save_certificate(certificate)
                if items:
                    self.notify(lid)
                log.debug("turn learner=%s kind=%s replies=%d", learner_ref(lid), event.kind.value,
                         len(outcome.replies))
                return Handled.PROCESSED
            if result is CommitResult.DUPLICATE:
                return Handled.DUPLICATE
            time.sleep(0.001)  # CONFLICT: another worker moved this learner on; redo on fresh state
        raise ConcurrencyError(f"learner {learner_ref(lid)}: {self.commit_retries} commit conflicts in a row")


def _with_identity(progress: Progress, event: InboundEvent, now_ms: int) -> Progress:
    """Refresh what the platform tells us on every message: where to reply from, phone, name.

    A clock event (TIMER) is not a learner's message: it does not reopen WhatsApp's service window.
    """
    return progress.with_changes(
        phone=event.phone or progress.phone,
        name=event.profile_name or progress.name,
        reply_from=event.reply_from or progress.reply_from,
        updated_at_ms=now_ms,
        last_inbound_at_ms=progress.last_inbound_at_ms if event.kind is EventKind.TIMER else now_ms,
    )


def outbox_items(progress: Progress, replies: tuple[Reply, ...], event: InboundEvent | None,
                 now_ms: int) -> list[dict]:
    """Render replies for the learner's channel into outbox items, the read receipt first."""
    bodies: list[dict] = []
    if event is not None and event.channel is Channel.WHATSAPP and event.message_id \
            and event.kind in LEARNER_MESSAGES:  # a clock event has no wamid to mark as read
        bodies.append(whatsapp_out.mark_read(event.message_id))
    for reply in replies:
        bodies.extend(outbound.render(progress.channel, reply, user_id=progress.user_id, phone=progress.phone))
    return [{"id": uuid.uuid4().hex, "channel": progress.channel.value, "sender_id": progress.reply_from,
             "body": body, "created_ms": now_ms} for body in bodies]
