"""The one place that knows the whole sequence for one inbound event.

claim + load (1 Redis round trip) -> engine step (no I/O) -> render -> commit progress, dedup id and
outbox atomically (1 round trip) -> notify the sender (1 round trip: a Dramatiq message).

Exactly once: the commit refuses a message id already handled, and an event older than the dedup
window (``dedup_ttl_seconds``) is not handled at all — a replayed body cannot outlive its dedup id.
In order, nothing lost: two messages of one learner racing in different workers both load the same
``rev``; only one commit wins, the other reloads and redoes its turn on the new state. If the process
dies after the commit but before the notify, Meta redelivers the webhook (we never answered 200): the
redelivery is a duplicate, and a duplicate with replies still in the outbox notifies the sender again.

One person, one learner: the store resolves an event's ids through aliases; a learner known by
their phone who now arrives with a BSUID is moved to the BSUID key before the turn, and a WhatsApp
``user_changed_number``/``user_changed_user_id`` moves them to their new id (``Store.move``).

One learner across channels: a message carrying a link code (``bot.tutor.linking``) is redeemed first and
the two records merged (``bot.storage.links``), then the turn runs on the merged learner and tells both
chats; a learner frozen by a half-done link or unlink has it finished (or waited for) before the turn. The
learner's own message makes its channel the current conversation: replies go where they wrote from.

A big batch is bounded: the first ``inline_events_max`` events are handled in the request, the rest
are handed to the worker (``defer``) in chunks that keep each learner's events together and in order.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from typing import Protocol

from bot import channels
from bot.channels.rendering import render_turn
from bot.flows.spec import Course
from bot.model.errors import StorageError
from bot.model.events import EventKind, InboundEvent
from bot.model.privacy import learner_ref
from bot.model.replies import Reply
from bot.model.seats import Seat
from bot.storage import links as links_store
from bot.storage.clock import Clock, SystemClock
from bot.storage.keys import address
from bot.storage.links import Linked, Links
from bot.storage.open_day_ledger import OpenDayLedger
from bot.storage.outbox_item import OutboxItem
from bot.storage.store import CommitResult, Snapshot, Store
from bot.tutor import conversations, linking, open_days
from bot.tutor.engine import Engine, Outcome
from bot.tutor.linking import LinkNews
from bot.tutor.preferences import REFUSAL_CODES
from bot.tutor.progress import Progress
from bot.tutor.progress_parts import ChannelConversation
from config import meters

log = logging.getLogger(__name__)

Notify = Callable[[str], None]  # "learner <id> has replies waiting in the outbox"
Defer = Callable[[list[InboundEvent]], None]  # "handle these events in the worker, in this order"

DEFER_CHUNK_EVENTS = 100  # events per deferred job (a learner's events are never split)


class EngineSource(Protocol):
    """Gives the engine for a course release (``bot.storage.releases.Registry``, or a fixed one)."""

    def engine_for(self, release: str) -> Engine: ...


class Recording(Protocol):
    """Learning analytics (``bot.analytics.recording.Recorder``): the events a turn or a status gives."""

    def turn(self, before: Progress, after: Progress, event: InboundEvent, course: Course, now_ms: int) -> str: ...

    def status_entry(self, event: InboundEvent) -> tuple[str, str, int] | None: ...


class Handled(str, Enum):
    PROCESSED = "processed"
    DUPLICATE = "duplicate"
    STATUS = "status"
    IGNORED = "ignored"
    STALE = "stale"  # older than the dedup window: a replay, never handled
    DEFERRED = "deferred"  # handed to the worker (a big batch)


class ConcurrencyError(StorageError):
    """A learner's turn kept losing the optimistic-lock race; the webhook answers 503 so Meta retries."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Dispatcher:
    store: Store
    engines: EngineSource
    notify: Notify
    commit_retries: int = 50
    defer: Defer | None = None
    inline_events_max: int = 50  # events handled inside one webhook request; the rest go to the worker
    clock: Clock = SystemClock()  # now, in ms (the shared test clock in dev and test: bot.storage.clock)
    recording: Recording | None = None  # learning analytics; None: nothing recorded
    exports: Callable[[str, str], None] | None = None  # (learner, token): store their data export (bot.privacy)
    erase: Callable[[str], None] | None = None  # erase a learner once their goodbye is sent (the worker)

    @property
    def links(self) -> Links:
        return Links(self.store)

    def handle_batch(self, events: Sequence[InboundEvent], handle_one: Callable[[InboundEvent], object] | None
                     = None) -> list[object]:
        """Handle a webhook's events in order, deferring what exceeds ``inline_events_max`` to the worker.

        ``handle_one`` wraps ``handle`` (the web app uses it to log a failing event and go on).
        Returns one result per inline event, then ``Handled.DEFERRED`` for each deferred one.
        """
        handle_one = handle_one or self.handle
        if self.defer is None or len(events) <= self.inline_events_max:
            return [handle_one(event) for event in events]
        inline, later = events[:self.inline_events_max], events[self.inline_events_max:]
        results = [handle_one(event) for event in inline]
        for chunk in learner_chunks(later, DEFER_CHUNK_EVENTS):
            self.defer(chunk)
        return results + [Handled.DEFERRED] * len(later)

    def handle(self, event: InboundEvent, *, now_ms: int | None = None,
               written: list[OutboxItem] | None = None) -> Handled:
        """Handle one event (timed: ``bottega_turn_seconds`` by event kind); ``written`` (if given) receives the
        outbox items this call committed."""
        started = time.perf_counter()
        try:
            return self._handle(event, now_ms=now_ms, written=written)
        finally:
            meters.TURN_SECONDS.labels(event.kind.value).observe(time.perf_counter() - started)

    def _handle(self, event: InboundEvent, *, now_ms: int | None = None,
                written: list[OutboxItem] | None = None) -> Handled:
        if event.kind is EventKind.IGNORE:
            return Handled.IGNORED
        if event.kind is EventKind.STATUS:
            self.store.record_status(event, analytics=self.recording.status_entry(event) if self.recording else None)
            if not refused_proactive(event):
                return Handled.STATUS
        now_ms = now_ms if now_ms is not None else self.clock()
        if event.kind is not EventKind.TIMER and event.timestamp_ms \
                and now_ms - event.timestamp_ms > self.store.dedup_ttl_ms:
            log.warning("event older than the dedup window not handled (learner %s)", learner_ref(event.learner_id))
            return Handled.STALE
        if event.kind is EventKind.IDENTITY:
            return self._identity_changed(event)
        message_id = event.message_id or f"{event.kind.value}:{event.timestamp_ms}:{event.payload}"
        if event.kind is EventKind.STATUS:  # Meta refused a proactive message: the learner's record learns it
            message_id = f"refused:{event.message_id}:{event.error_code}"
        code = linking.code_in(event.text, event.payload) if event.kind in (EventKind.TEXT, EventKind.CHOICE) else ""
        link: LinkNews | None = None
        frozen_until = 0.0
        for _ in range(self.commit_retries):
            snapshot = self.store.load(event.learner_id, message_id, other_ids=event.other_learner_ids,
                                       channel=(event.channel.name, event.channel.prefix))
            lid = snapshot.learner_id
            if snapshot.merging:  # a link or unlink of this learner is half done: finish it (or wait for it)
                frozen_until = self._wait_frozen(lid, now_ms, frozen_until)
                continue
            if snapshot.move_from:  # known under another id of theirs (their phone): move them here first
                self.store.move(snapshot.move_from, lid, user_id=lid.split(":", 1)[1], phone=event.phone,
                                bsuid=event.bsuid, keep_alias=True, number_changed=False)
                log.info("learner %s moved to their BSUID key", learner_ref(lid))
                continue
            if snapshot.seen:  # handled before; finish what a crash may have left undone after that commit
                if snapshot.next_timer_ms:
                    self.store.wake_at(lid, snapshot.next_timer_ms)
                if snapshot.outbox_length:
                    self.notify(snapshot.address)
                return Handled.DUPLICATE
            if snapshot.progress is None and event.kind in (EventKind.STATUS, EventKind.PREFERENCE, EventKind.ADMIN):
                return Handled.IGNORED  # about someone we do not know: nothing to keep
            if code and link is None:
                link = self._link(event, code, snapshot, now_ms)
                if link is LinkNews.LINKED:
                    continue  # the event's id now leads to the learner it joined: load them
            before = snapshot.progress or Progress.new(event, now_ms)
            progress = _with_identity(before, event, now_ms)
            engine = self.engines.engine_for(snapshot.release)
            outcome = engine.step(progress, event, seat=self._seat(engine, progress, event, now_ms), link=link)
            outbox_at = _address(lid, outcome.progress.channel)
            items = outbox_items(outcome.progress, outcome.replies, now_ms)
            analytics = self.recording.turn(progress, outcome.progress, event, engine.course, now_ms) \
                if self.recording else ""
            elsewhere = _elsewhere(outcome, now_ms)
            if outcome.link_code:  # stored before the reply that shows it can leave
                self.links.issue(outcome.link_code, lid)
            if outcome.export_token and self.exports is not None:
                self.exports(lid, outcome.export_token)
            committed = self.store.commit(
                outcome.progress, expected_rev=before.rev, message_id=message_id, now_ms=now_ms,
                outbox_items=items, timers=outcome.timers, cancel_timers=outcome.cancel_timers,
                receipt=read_receipt(outcome.progress, event), event_ms=event.timestamp_ms,
                aliases=snapshot.aliases, drop_proactive=outcome.drop_proactive, seen_at=snapshot.address,
                outbox_at=outbox_at, elsewhere=elsewhere, analytics=analytics)
            if committed.result is CommitResult.COMMITTED:
                meters.OUTBOX_LENGTH.observe(committed.outbox_length)
                if written is not None:
                    written.extend(items)
                if outcome.timers:
                    self.store.wake_at(lid, min(due for due, _ in outcome.timers))
                for certificate in outcome.certificates:
                    self.store.save_certificate(certificate)
                handover = outcome.progress.handover
                if handover.open != before.handover.open:  # the inbox's list of open handovers (bot.handover)
                    self.store.index_handover(lid, handover.requested_ms if handover.open else 0)
                woken = bool(items or committed.receipt_waiting_anew)
                if woken:
                    self.notify(outbox_at)
                # the sender forwards analytics events too, from the learner's own list: wake it for the first
                # one waiting (later ones ride along)
                if committed.events_waiting == 1 and not (woken and outbox_at == lid):
                    self.notify(lid)
                for other, _ in elsewhere:
                    self.notify(other)
                if outcome.unlink:  # every linked channel leaves with a record of its own
                    home = channels.for_learner(lid).channel.name
                    for conversation in conversations.every(outcome.progress):
                        if conversation.channel != home:
                            self.links.unlink(lid, conversation.channel, now_ms)
                            self.notify(conversation.learner_id)
                if outcome.privacy_action == "erase" and self.erase is not None:
                    self.erase(lid)
                log.debug("turn learner=%s kind=%s replies=%d dropped=%d", learner_ref(lid), event.kind.value,
                          len(outcome.replies), committed.dropped)
                return Handled.PROCESSED
            if committed.result is CommitResult.DUPLICATE:
                return Handled.DUPLICATE
            if committed.result is CommitResult.FROZEN:
                frozen_until = self._wait_frozen(lid, now_ms, frozen_until)
                continue
            time.sleep(0.001)  # CONFLICT: another worker moved this learner on; redo on fresh state
        raise ConcurrencyError(f"learner {learner_ref(event.learner_id)}: {self.commit_retries} commit "
                               "conflicts in a row")

    def _wait_frozen(self, lid: str, now_ms: int, until: float) -> float:
        """Finish the link or unlink journal found on ``lid``; if it is young (a merger may be at work), wait
        a little. Past ``links.GRACE_MS`` of waiting the journal is old enough to finish or roll back."""
        if self.links.recover(lid, self.clock()) is None:
            if not until:
                until = time.monotonic() + links_store.GRACE_MS / 1000 + 1
            if time.monotonic() > until:
                raise ConcurrencyError(f"learner {learner_ref(lid)}: a link journal stayed unfinished")
            time.sleep(0.02)
        return until

    def _link(self, event: InboundEvent, code: str, snapshot: Snapshot, now_ms: int) -> LinkNews:
        """Redeem ``code`` sent by ``event``'s person and link their channel to the learner who asked for it."""
        owner, too_many = self.links.redeem(code, by=event.learner_id)
        if too_many:
            return LinkNews.TOO_MANY
        into = self.links.resolve(owner) if owner else ""
        if not into:
            return LinkNews.INVALID
        joining = snapshot.learner_id
        if into == joining:
            return LinkNews.SAME
        target = self.store.load_one(into, "").progress
        if target is None:
            return LinkNews.INVALID
        theirs = snapshot.progress
        channel = event.channel.name
        if any(c.channel == channel for c in conversations.every(target)) or (
                theirs is not None and conversations.linked(theirs)):
            return LinkNews.BUSY
        facts = ChannelConversation(channel=channel, learner_id=joining, user_id=event.user_id, phone=event.phone,
                                    bsuid=event.bsuid, reply_from=event.reply_from,
                                    last_inbound_at_ms=now_ms if event.kind.from_learner else 0)
        result = self.links.link(into, joining, facts, now_ms)
        log.info("learner %s linked a %s conversation: %s", learner_ref(into), channel, result.value)
        return LinkNews.LINKED if result is Linked.LINKED else LinkNews.BUSY

    def _seat(self, engine: Engine, progress: Progress, event: InboundEvent, now_ms: int) -> Seat | None:
        """An Open Day RSVP tap: the event's ledger takes or gives up the seat first (its own keys, its own
        script; idempotent, so a turn redone after a conflict gets the same answer), and a learner promoted
        from the waiting list by it is told by a clock event of their own."""
        request = open_days.rsvp_request(event, progress.open_days, engine.course) if not progress.is_new else None
        spec = engine.course.open_day(request[0]) if request else None
        if request is None or spec is None or now_ms >= spec.start_ms:
            return None
        ledger = OpenDayLedger(self.store.client)
        seat = ledger.rsvp(spec.id, progress.learner_id, coming=request[1], capacity=spec.capacity, now_ms=now_ms)
        ledger.deliver_notices(spec.id, lambda learner_id, payload: self.store.schedule(learner_id, payload, now_ms))
        return seat

    def _identity_changed(self, event: InboundEvent) -> Handled:
        """``user_changed_number`` / ``user_changed_user_id``: the learner's record follows them.

        A former BSUID keeps pointing at the learner (BSUIDs are never given to anyone else); a phone
        number they gave up does not (it may be given to someone else, who must start afresh).
        """
        target = event.learner_id
        prefix = event.channel.prefix
        number_changed = event.detail == "user_changed_number"
        old_phones = tuple(f"{prefix}:{raw}" for raw in event.previous_ids if _is_phone(raw))
        old_bsuids = tuple(f"{prefix}:{raw}" for raw in event.previous_ids if not _is_phone(raw))
        moved = False
        for old in (*old_bsuids, *old_phones):
            source = old if self.store.exists(old) else self.store.alias_of(old)
            if not source or source == target:
                continue
            if source.partition(":")[0] != prefix:  # a channel linked to a learner whose record is elsewhere
                return self._linked_id_changed(source, event, number_changed, old_phones, old_bsuids)
            moved = self.store.move(source, target, user_id=event.user_id, phone=event.phone, bsuid=event.bsuid,
                                    keep_alias=source in old_bsuids, number_changed=number_changed)
            if moved:
                break
        if not moved and not self.store.exists(target):
            log.info("identity change for an unknown learner ignored (%s)", event.detail)
            return Handled.IGNORED
        if number_changed:
            self.store.point(old_phones, "")
        self.store.point(tuple(old for old in old_bsuids if old != target), target)
        if event.phone and f"{prefix}:{event.phone}" != target:
            self.store.point((f"{prefix}:{event.phone}",), target)
        log.info("learner %s: %s%s", learner_ref(target), event.detail, "" if moved else " (already moved)")
        return Handled.PROCESSED


    def _linked_id_changed(self, lid: str, event: InboundEvent, number_changed: bool, old_phones: tuple[str, ...],
                           old_bsuids: tuple[str, ...]) -> Handled:
        """A linked channel's id changed: its conversation on learner ``lid`` takes the new id (the record stays
        where it is), the new id points at ``lid``, a former BSUID still does, a former phone no longer."""
        target, channel = event.learner_id, event.channel.name
        for _ in range(self.commit_retries):
            snapshot = self.store.load_one(lid, "")
            progress = snapshot.progress
            if progress is None:
                return Handled.IGNORED
            if snapshot.merging:
                self._wait_frozen(lid, self.clock(), 0.0)
                continue
            ids = {"user_id": event.user_id, "phone": event.phone or ("" if number_changed else progress.phone),
                   "bsuid": event.bsuid}
            if progress.channel == channel:
                changed = progress.with_changes(via=target, user_id=ids["user_id"], phone=ids["phone"],
                                                bsuid=ids["bsuid"] or progress.bsuid)
            else:
                changed = progress.with_changes(conversations=tuple(
                    replace(c, learner_id=target, user_id=ids["user_id"], phone=event.phone or (
                        "" if number_changed else c.phone), bsuid=ids["bsuid"] or c.bsuid)
                    if c.channel == channel else c for c in progress.conversations))
            committed = self.store.commit(changed, expected_rev=progress.rev, message_id="", now_ms=self.clock(),
                                          outbox_items=[], aliases=(target,))
            if committed.result is CommitResult.COMMITTED:
                if number_changed:
                    self.store.point(old_phones, "")
                self.store.point(tuple(old for old in old_bsuids if old != target), lid)
                log.info("learner %s: %s on a linked channel", learner_ref(lid), event.detail)
                return Handled.PROCESSED
        raise ConcurrencyError(f"learner {learner_ref(lid)}: identity change kept conflicting")


def refused_proactive(event: InboundEvent) -> bool:
    """A failed status whose code tells something about writing first (bot.tutor.preferences)."""
    return event.status == "failed" and event.error_code in REFUSAL_CODES


def _is_phone(raw_id: str) -> bool:
    return raw_id.isascii() and raw_id.isdigit()


def learner_chunks(events: Iterable[InboundEvent], size: int) -> list[list[InboundEvent]]:
    """``events`` in chunks of about ``size``, each learner's events together and in their order."""
    by_learner: dict[str, list[InboundEvent]] = {}
    for event in events:
        by_learner.setdefault(event.learner_id, []).append(event)
    chunks: list[list[InboundEvent]] = []
    current: list[InboundEvent] = []
    for learner_events in by_learner.values():
        if current and len(current) + len(learner_events) > size:
            chunks.append(current)
            current = []
        current.extend(learner_events)
    if current:
        chunks.append(current)
    return chunks


def _with_identity(progress: Progress, event: InboundEvent, now_ms: int) -> Progress:
    """Refresh what the platform tells us on every message: where to reply from, phone, BSUID, name.

    The learner's own message makes its channel's conversation the current one (a linked learner's
    replies go where they wrote last: bot.tutor.conversations); only it reopens that channel's window (a
    clock event does not). What another channel's event says about its ids is not the current one's.
    """
    if event.kind.from_learner:
        progress = conversations.switch_to(progress, event.channel.name)
    if event.channel.name != progress.channel:
        return progress.with_changes(updated_at_ms=now_ms)
    return progress.with_changes(
        phone=event.phone or progress.phone,
        bsuid=event.bsuid or progress.bsuid,
        name=event.profile_name or progress.name,
        reply_from=event.reply_from or progress.reply_from,
        updated_at_ms=now_ms,
        last_inbound_at_ms=now_ms if event.kind.from_learner else progress.last_inbound_at_ms,
    )


def _address(learner_id: str, channel_name: str) -> str:
    """The conversation of ``learner_id`` on ``channel_name``: where its outbox is (bot.storage.keys.address)."""
    return address(learner_id, channel_name, channels.named(channel_name).prefix)


def _elsewhere(outcome: Outcome, now_ms: int) -> tuple[tuple[str, list[OutboxItem]], ...]:
    """What a turn said in the learner's other linked conversations, rendered for each, by address."""
    found = []
    for channel_name, reply in outcome.elsewhere:
        for conversation in outcome.progress.conversations:
            if conversation.channel == channel_name:
                there = conversations.make_current(outcome.progress, conversation)
                found.append((_address(outcome.progress.learner_id, channel_name),
                              outbox_items(there, (reply,), now_ms)))
    return tuple(found)


def read_receipt(progress: Progress, event: InboundEvent) -> dict | None:
    """The read receipt for the learner's message, or None (a channel without receipts; a clock event)."""
    mark_read = channels.parts_for(event.channel).read_receipt
    if mark_read is None or not event.message_id or not event.kind.from_learner:
        return None
    return {"channel": progress.channel, "sender_id": progress.reply_from, "body": mark_read(event.message_id)}


def outbox_items(progress: Progress, replies: tuple[Reply, ...], now_ms: int) -> list[OutboxItem]:
    """Render replies for the learner's channel into outbox items, in sending order (fewer, fuller messages:
    ``bot.channels.rendering.render_turn``)."""
    items = []
    for reply, bodies in render_turn(progress.channel, replies, user_id=progress.user_id, phone=progress.phone):
        for body in bodies:
            items.append(OutboxItem.new(channel=progress.channel, sender_id=progress.reply_from, body=body,
                                        created_ms=now_ms, ephemeral=reply.ephemeral, proactive=reply.proactive))
    return items
