"""A person when they need one: offering a handover, pausing the bot, the admins' replies, resuming. No I/O.

``operatore``/``persona``/``human`` (global words) or three texts in a row Bottega cannot read offer a handover
(``offer``). Accepted, the handover is open: the tutor answers nothing (``while_open`` keeps what the learner
writes for the inbox, ``bot.handover``), the learner is told within how many hours to expect an answer
(``Policy.handover_answer_hours``), and nothing Bottega starts goes out. A written ``riprendi``/``resume`` or
the admin's hand-back (an ADMIN event) ends it, and the course goes on exactly where it stopped: the
learner's place (module, step, what they were being asked) is never touched while a person answers.

An admin's reply is an ADMIN event too: it goes through the same turn, atomic commit and outbox as every
reply (in order, exactly once per request id). ``reply_route`` says how it may go: inside the learner's
24-hour window (or a Click-to-WhatsApp ad's free entry point) as a normal message; after it, on a channel
that allows it (Messenger: ``human_agent_ms``, 7 days from the learner's last message) tagged
``HUMAN_AGENT``; otherwise not at all — recorded as refused, never sent.
"""

from __future__ import annotations

from enum import Enum

from bot import channels
from bot.model.events import EventKind, InboundEvent
from bot.model.replies import Option, Reply
from bot.tutor.handover_record import HandoverState, InboxMessage
from bot.tutor.progress import Pending, Progress
from bot.tutor.turn import Turn
from bot.tutor.typed_text import normalise

__all__ = ["OFFER_AFTER_UNRECOGNISED", "PAYLOAD_PREFIX", "Route", "choose", "close", "offer", "on_admin", "options",
           "recognised", "reply_route", "show", "unrecognised", "while_open"]

OFFER_AFTER_UNRECOGNISED = 3  # texts in a row Bottega could not read, then it offers a person
PAYLOAD_PREFIX = "sys:handover:"
RESUME_WORDS = frozenset({"riprendi", "resume"})
STOP_WORDS = frozenset({"stop", "basta", "disiscrivimi", "unsubscribe"})


class Route(str, Enum):
    """How an admin's reply may reach the learner now."""

    FREE_FORM = "free_form"  # inside the window (or a Click-to-WhatsApp ad's free entry point)
    HUMAN_AGENT = "human_agent"  # after it, tagged HUMAN_AGENT (Messenger, up to 7 days)
    CLOSED = "closed"  # not at all: the learner must write first


def reply_route(progress: Progress, now_ms: int, window_ms: int) -> Route:
    """How an admin's reply may go to this learner at ``now_ms`` (``window_ms``: the 24-hour window)."""
    last = progress.last_inbound_at_ms
    if last and (now_ms < last + window_ms or now_ms < progress.entry.free_until_ms):
        return Route.FREE_FORM
    human_agent_ms = channels.parts_for(progress.channel).human_agent_ms
    if last and human_agent_ms and now_ms < last + human_agent_ms:
        return Route.HUMAN_AGENT
    return Route.CLOSED


# -- the offer -------------------------------------------------------------------------------------------
def offer(turn: Turn, *, reason: str) -> None:
    """Ask whether a person should answer (``reason``: "asked" or "not_understood")."""
    state = turn.progress.handover
    before = turn.progress.pending if turn.progress.pending != Pending.HANDOVER_CONFIRM else state.before
    _set(turn, state.with_changes(reason=reason, before=before, unrecognised=0))
    turn.progress = turn.progress.with_changes(pending=Pending.HANDOVER_CONFIRM)
    show(turn)


def show(turn: Turn) -> None:
    key = "handover_offer_not_understood" if turn.progress.handover.reason == "not_understood" else "handover_offer"
    turn.say(turn.text(key), options(turn))


def options(turn: Turn) -> list[Option]:
    return [Option(id=f"{PAYLOAD_PREFIX}yes", title=turn.text("label_handover_yes")),
            Option(id=f"{PAYLOAD_PREFIX}no", title=turn.text("label_handover_no"))]


def choose(turn: Turn, payload: str) -> None:
    state = turn.progress.handover
    turn.progress = turn.progress.with_changes(pending=state.before)
    if payload == f"{PAYLOAD_PREFIX}yes":
        _open(turn)
    else:
        _set(turn, state.with_changes(before=""))
        turn.say(turn.text("handover_declined"))
        turn.prompt()


def _open(turn: Turn) -> None:
    state = turn.progress.handover
    said = turn.text("handover_started", hours=turn.source.policy.handover_answer_hours)
    _set(turn, HandoverState(open=True, requested_ms=turn.now_ms, reason=state.reason, count=state.count + 1,
                             closed_ms=state.closed_ms, closed_by=state.closed_by)
         .with_message(InboxMessage(at_ms=turn.now_ms, who="bot", text=said)))
    turn.say(said)


# -- three texts Bottega could not read --------------------------------------------------------------------
def unrecognised(turn: Turn) -> bool:
    """Count a text Bottega could not read; the third in a row offers a person (True: offered)."""
    state = turn.progress.handover
    count = state.unrecognised + 1
    if count >= OFFER_AFTER_UNRECOGNISED and turn.progress.pending != Pending.HANDOVER_CONFIRM:
        offer(turn, reason="not_understood")
        return True
    _set(turn, state.with_changes(unrecognised=count))
    return False


def recognised(turn: Turn) -> None:
    if turn.progress.handover.unrecognised:
        _set(turn, turn.progress.handover.with_changes(unrecognised=0))


# -- while a person answers --------------------------------------------------------------------------------
def while_open(turn: Turn, event: InboundEvent) -> bool:
    """The bot is paused: keep what the learner wrote for the inbox and answer nothing.

    Returns True when the learner ended the handover with a written ``riprendi`` (said and shown here) or
    asked to stop (the engine then handles their message as ever, so ``stop`` keeps working).
    """
    words = normalise(event.text) if event.kind is EventKind.TEXT else ""
    if words in RESUME_WORDS:
        close(turn, by="learner")
        turn.say(turn.text("handover_resumed"))
        turn.prompt()
        return True
    if words in STOP_WORDS:
        close(turn, by="learner")
        return False
    _set(turn, turn.progress.handover.with_message(InboxMessage(at_ms=turn.now_ms, who="learner",
                                                                text=_shown(event))))
    return True


def close(turn: Turn, *, by: str) -> None:
    _set(turn, turn.progress.handover.with_changes(open=False, closed_ms=turn.now_ms, closed_by=by))


def _shown(event: InboundEvent) -> str:
    """What the learner sent, as the inbox shows it."""
    if event.kind is EventKind.TEXT:
        return event.text
    if event.kind is EventKind.CHOICE:
        return event.text or f"[{event.payload}]"
    if event.kind is EventKind.MEDIA:
        return f"[{event.media_type}]"
    return f"[{event.detail or event.kind.value}]"


# -- the admins (ADMIN events, from bot.handover) ---------------------------------------------------------------
def on_admin(turn: Turn, event: InboundEvent) -> None:
    """``payload`` "reply" (``text``: the admin's message, ``detail``: who) or "hand_back"."""
    if event.payload == "hand_back":
        if turn.progress.handover.open:
            close(turn, by="admin")
            turn.say(turn.text("handover_handed_back"))
            turn.prompt()
        return
    if event.payload != "reply" or not event.text.strip():
        return
    route = reply_route(turn.progress, turn.now_ms, turn.source.policy.window_ms)
    state = turn.progress.handover
    tag = {Route.FREE_FORM: "", Route.HUMAN_AGENT: "HUMAN_AGENT", Route.CLOSED: "REFUSED"}[route]
    state = state.with_message(InboxMessage(at_ms=turn.now_ms, who="admin", text=event.text, by=event.detail,
                                            tag=tag))
    if route is not Route.CLOSED:
        state = state.with_changes(answered_ms=state.answered_ms or turn.now_ms)
        turn.replies.append(Reply(text=event.text, lang=turn.progress.lang, human_agent=route is Route.HUMAN_AGENT,
                                  choose_label=turn.text("label_choose")))
    _set(turn, state)


def _set(turn: Turn, state: HandoverState) -> None:
    turn.progress = turn.progress.with_changes(handover=state)

