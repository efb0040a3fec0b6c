"""The inbox: open handovers, one conversation, an admin's reply, the hand-back.

Built on a ``Dispatcher`` (its store, clock and the sender's notify): the web console and `bottega inbox`
build one through ``bot.composition`` and call the same four methods. A reply goes as a normal message
inside the learner's 24-hour window, tagged ``HUMAN_AGENT`` on Messenger for up to 7 days after it, and is
refused outside those (WhatsApp: only a template can reach the learner then) with a message saying so.
Message texts and ids are the admin's to see; nothing here logs them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from bot import channels
from bot.dispatch import Dispatcher, Handled
from bot.model.errors import BottegaError
from bot.model.events import EventKind, InboundEvent
from bot.model.privacy import learner_ref
from bot.proactive.policy import Policy
from bot.storage.keys import LearnerPart, learner_id_of, learner_key_pattern
from bot.tutor.handover import Route, reply_route
from bot.tutor.handover_record import TEXT_MAX, InboxMessage
from bot.tutor.progress import Progress

SCAN_BATCH = 500


class InboxError(BottegaError):
    """An inbox action that cannot be done as asked; the message says why and what to do instead."""


@dataclass(frozen=True, kw_only=True, slots=True)
class OpenHandover:
    learner_id: str
    ref: str  # learner_ref: what logs call them
    channel: str
    name: str
    since_ms: int
    age_ms: int
    reason: str  # why it was handed over: "asked" (operatore/persona/human) | "not_understood"
    answered: bool  # an admin has replied in this handover
    unanswered: int  # the learner's messages since the last admin reply
    route: Route  # how a reply would go now
    last_text: str  # the learner's latest message


@dataclass(frozen=True, kw_only=True, slots=True)
class Conversation:
    learner_id: str
    channel: str
    name: str
    lang: str
    open: bool
    since_ms: int
    reason: str
    where: str  # where the course will resume: "m1_contatto / lesson_2", "the menu"...
    route: Route
    messages: tuple[InboxMessage, ...]


class Inbox:
    def __init__(self, dispatcher: Dispatcher, policy: Policy):
        self.dispatcher = dispatcher
        self.store = dispatcher.store
        self.policy = policy

    def now_ms(self) -> int:
        return self.dispatcher.clock()

    # -- reading -------------------------------------------------------------------------------------------
    def list_open(self) -> list[OpenHandover]:
        """Every open handover, oldest first; an index entry whose learner is no longer waiting is dropped."""
        now = self.now_ms()
        found = []
        for lid, since in self.store.indexed_handovers():
            progress = self._progress(lid)
            if progress is None or not progress.handover.open:
                self.store.index_handover(lid, 0)
                continue
            state = progress.handover
            unanswered = 0
            for message in reversed(state.messages):
                if message.who == "admin" and message.tag != "REFUSED":
                    break
                unanswered += message.who == "learner"
            learner_texts = [m.text for m in state.messages if m.who == "learner"]
            found.append(OpenHandover(
                learner_id=lid, ref=learner_ref(lid), channel=progress.channel, name=progress.name, since_ms=since,
                age_ms=now - since, reason=state.reason, answered=bool(state.answered_ms), unanswered=unanswered,
                route=reply_route(progress, now, self.policy.window_ms),
                last_text=learner_texts[-1] if learner_texts else ""))
        return found

    def rescan(self) -> int:
        """Rebuild the list of open handovers from every learner's record (a scan); returns how many are open."""
        count = 0
        pattern = learner_key_pattern(LearnerPart.PROGRESS)
        for key in self.store.client.scan_iter(match=pattern, count=SCAN_BATCH):
            lid = learner_id_of(key)
            progress = self._progress(lid)
            if progress is not None and progress.handover.open:
                self.store.index_handover(lid, progress.handover.requested_ms or self.now_ms())
                count += 1
        return count

    def show(self, learner_id: str) -> Conversation:
        progress = self._known(learner_id)
        state = progress.handover
        where = f"{progress.flow} / {progress.step}" if progress.flow else "the menu"
        if progress.pending:
            where += f" (asked: {progress.pending})"
        return Conversation(learner_id=learner_id, channel=progress.channel, name=progress.name, lang=progress.lang,
                            open=state.open, since_ms=state.requested_ms, reason=state.reason, where=where,
                            route=reply_route(progress, self.now_ms(), self.policy.window_ms),
                            messages=state.messages)

    # -- acting --------------------------------------------------------------------------------------------
    def reply(self, learner_id: str, text: str, *, admin: str = "", request_id: str = "") -> InboxMessage:
        """Send ``text`` to the learner as the admin ``admin``; ``request_id`` makes a retried call a no-op.

        Refused (``InboxError``) for an unknown learner, an empty text, a handover that is not open, or when
        the learner's channel does not allow a message now.
        """
        if not text.strip():
            raise InboxError("the reply is empty: write what the learner should read")
        progress = self._known(learner_id)
        if not progress.handover.open:
            raise InboxError(f"learner {learner_ref(learner_id)} has no open handover (handed back, or they wrote "
                             "riprendi): the course answers them now")
        route = reply_route(progress, self.now_ms(), self.policy.window_ms)
        if route is Route.CLOSED:
            raise InboxError(_closed_message(progress))
        handled = self._admin_event(learner_id, "reply", text=text, admin=admin, request_id=request_id)
        if handled is Handled.DUPLICATE:
            raise InboxError("this reply was already sent (same request id): nothing sent again")
        sent = self._known(learner_id).handover.messages
        mine = [m for m in sent if m.who == "admin" and m.text == text[:TEXT_MAX]]
        if not mine or mine[-1].tag == "REFUSED":
            raise InboxError(_closed_message(progress))
        return mine[-1]

    def hand_back(self, learner_id: str, *, admin: str = "", request_id: str = "") -> None:
        """End the handover: the course goes on exactly where the learner was, and they are told so."""
        progress = self._known(learner_id)
        if not progress.handover.open:
            raise InboxError(f"learner {learner_ref(learner_id)} has no open handover: nothing to hand back")
        self._admin_event(learner_id, "hand_back", admin=admin, request_id=request_id)

    # -- parts ---------------------------------------------------------------------------------------------
    def _admin_event(self, learner_id: str, action: str, *, text: str = "", admin: str = "",
                     request_id: str = "") -> Handled:
        parts = channels.for_learner(learner_id)
        event = InboundEvent(channel=parts.channel, kind=EventKind.ADMIN, user_id=learner_id.split(":", 1)[1],
                             reply_from="", message_id=f"admin:{request_id or uuid.uuid4().hex}", payload=action,
                             text=text, detail=admin[:60])
        return self.dispatcher.handle(event)

    def _progress(self, learner_id: str) -> Progress | None:
        return self.store.load_one(learner_id, "").progress

    def _known(self, learner_id: str) -> Progress:
        try:
            channels.for_learner(learner_id)
        except ValueError:
            raise InboxError(f"{learner_id!r} is not a learner id: expected <channel prefix>:<id>, as "
                             "`bottega inbox` lists them (wa:393331234567, ms:7400000000000001)") from None
        progress = self._progress(learner_id)
        if progress is None:
            raise InboxError(f"no learner {learner_ref(learner_id)}: check the id `bottega inbox` lists")
        return progress


def age_text(ms: int) -> str:
    """A waiting time as the inbox shows it: "7 min", "3 h 05", "2 d 4 h" (negative: "0 min")."""
    minutes = max(ms, 0) // 60_000
    if minutes < 60:
        return f"{minutes} min"
    hours = minutes // 60
    return f"{hours} h {minutes % 60:02d}" if hours < 48 else f"{hours // 24} d {hours % 24} h"


def _closed_message(progress: Progress) -> str:
    parts = channels.parts_for(progress.channel)
    if parts.human_agent_ms:
        days = parts.human_agent_ms // 86_400_000
        return (f"{parts.title}: more than {days} days since the learner last wrote; no message can reach them "
                "until they write again")
    return (f"{parts.title}: the learner's 24-hour window has closed, so a free-form reply cannot be sent; "
            "they must write first (only an approved template reaches them now)")
