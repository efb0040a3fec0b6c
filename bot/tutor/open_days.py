"""Business Open Days in the conversation: the invitation, the RSVP, the reminders and the follow-up. No I/O.

Every message Bottega starts about an Open Day is a clock event of the learner's own, said through
``bot.tutor.outreach`` where ``bot.proactive.placement`` decides (free-form in the window, moved inside it,
the template for its use outside it, or not at all), so it is window-aware, honours ``stop`` and goes
exactly once (a timer's turn is deduplicated by its payload). Timers are ``od:<kind>:<event>[:<more>]``:

* ``ann``: the announcement (``bottega events announce``), with the buttons I'll come / I can't / remind me;
  counted in the daily cap (the learner did not ask for it);
* ``ask``: "remind me" asks again the day before;
* ``seat``: a seat freed up and the ledger gave it to this learner from the waiting list (``<ticket>``);
* ``r24``, ``r1``, ``start``, ``after``: the reminders 24 h and 1 h before, the link when it starts, and the
  follow-up after it (the recording and the suggested module), for a learner holding a seat;
* ``full``: at the start, for a learner still on the waiting list: the seats ran out (the learner's record
  turns ``missed``), with the next Open Day's buttons when one is published for them and their window is open;
* ``rec``: when the event has a recording, the follow-up's moment for a learner told ``full``: the recording
  (the one thing of the event they can still have) and the module's button, without the attendees' thanks.

A seat freed too late to be told (its ``seat`` notice fires after the start) counts as not freed: the learner
was never told it was theirs, so they hear the seats ran out.

Taps are ``sys:od:<yes|no|later|module>[:<event>]`` (a template's carry no event: the latest one). The seats
are counted by the event's ledger in Redis (``bot.storage.open_day_ledger``), which the dispatcher asks
before the turn; its answer arrives as ``turn.seat`` and the learner's record follows it.
"""

from __future__ import annotations

from dataclasses import replace

from bot.flows.spec import LANGUAGES, Course, OpenDay
from bot.model.events import EventKind, InboundEvent
from bot.model.replies import Media, MediaKind, Option
from bot.model.seats import Seat, SeatState
from bot.proactive import placement
from bot.proactive.placement import How, Placement, Reach
from bot.proactive.policy import HOUR_MS, Policy
from bot.tutor import consent, outreach
from bot.tutor.progress_parts import OpenDayState
from bot.tutor.turn import Turn
from bot.tutor.typed_text import normalise

TIMER_PREFIX = "od:"
PAYLOAD_PREFIX = "sys:od:"
ENTRY_PREFIX = "sys:event:"  # an entry link's or QR code's start code for an Open Day (bot.tutor.entry)
RSVP_ACTIONS = ("yes", "no")  # the taps the ledger answers
REMINDERS = (("r24", -24 * HOUR_MS), ("r1", -HOUR_MS), ("start", 0))  # before (or at) the start
ASK_AGAIN_BEFORE_MS = 24 * HOUR_MS  # "remind me": asked again the day before
FOLLOWUP_AFTER_END_MS = 30 * 60_000  # the follow-up, half an hour after the end (or the next morning)
# the link, the follow-up and the waiting list's news never go earlier to stay inside the window
UNMOVED = frozenset({"start", "after", "full", "rec"})
CALENDAR_FILENAME = "open-day.ics"
USES = {"ann": "open_day_invite", "ask": "open_day_invite", "seat": "open_day_promoted", "r24": "open_day_reminder",
        "r1": "open_day_reminder", "start": "open_day_starting", "after": "open_day_followup", "full": "open_day_full",
        "rec": "open_day_missed"}


def typed_answer(event: InboundEvent, state: OpenDayState, course: Course) -> str:
    """The tap a typed "Ci sarò" / "Non posso" / "Ricordamelo" (either language, any case) stands for, while the
    learner's latest invitation is unanswered; "" otherwise. Instagram on desktop shows no buttons."""
    if event.kind is not EventKind.TEXT or not course.open_days or state.state(state.last) not in ("invited", "maybe"):
        return ""
    words = normalise(event.text)
    for action, key in (("yes", "label_od_yes"), ("no", "label_od_no"), ("later", "label_od_later")):
        if any(normalise(course.text(key, lang)) == words for lang in LANGUAGES):
            return f"{PAYLOAD_PREFIX}{action}:{state.last}"
    return ""


def rsvp_request(event: InboundEvent, state: OpenDayState, course: Course) -> tuple[str, bool] | None:
    """(event id, coming?) when ``event`` is a tap (or its typed label) the ledger must answer first; else None."""
    payload = event.payload if event.kind is EventKind.CHOICE else typed_answer(event, state, course)
    if not payload.startswith(PAYLOAD_PREFIX):
        return None
    action, _, event_id = payload.removeprefix(PAYLOAD_PREFIX).partition(":")
    event_id = event_id or state.last
    if action not in RSVP_ACTIONS or not event_id:
        return None
    return event_id, action == "yes"


def is_tap(payload: str) -> bool:
    return payload.startswith(PAYLOAD_PREFIX)


def _state(turn: Turn) -> OpenDayState:
    return turn.progress.open_days


def _set(turn: Turn, event_id: str, state: str, *, last: bool = False) -> None:
    turn.progress = turn.progress.with_changes(open_days=_state(turn).with_rsvp(event_id, state, last=last))


# -- texts ------------------------------------------------------------------------------------------------
def when(turn: Turn, event: OpenDay) -> str:
    local = turn.source.policy.local(event.start_ms, event.time_zone)
    return turn.text("open_day_when", date=f"{local:%d/%m/%Y}", time=f"{local:%H:%M}")


def where(turn: Turn, event: OpenDay) -> str:
    places = [event.address] if event.address else []
    if event.online_url:
        places.append(turn.text("open_day_online"))
    return " · ".join(places)


def _values(turn: Turn, event: OpenDay) -> dict[str, str]:
    lang = turn.progress.lang
    module = turn.course.flows.get(event.followup_module)
    return {"title": event.title.get(lang), "when": when(turn, event), "where": where(turn, event),
            "description": event.description.get(lang), "link": event.online_url or event.address,
            "module": module.title.get(lang) if module else ""}


def _fields(turn: Turn, event: OpenDay, *, link: str) -> dict[str, str]:
    """A template's parameters (``bot.flows.templates.PARAM_FIELDS``)."""
    values = _values(turn, event)
    return {"event": values["title"], "when": values["when"], "where": values["where"], "link": link,
            "name": turn.progress.name,
            "business": turn.course.business_label(turn.progress.business, turn.progress.lang)}


def _rsvp_options(turn: Turn, event_id: str) -> list[Option]:
    return [Option(id=f"{PAYLOAD_PREFIX}yes:{event_id}", title=turn.text("label_od_yes")),
            Option(id=f"{PAYLOAD_PREFIX}no:{event_id}", title=turn.text("label_od_no")),
            Option(id=f"{PAYLOAD_PREFIX}later:{event_id}", title=turn.text("label_od_later"))]


def _cancel_option(turn: Turn, event_id: str) -> list[Option]:
    return [Option(id=f"{PAYLOAD_PREFIX}no:{event_id}", title=turn.text("label_od_cancel"))]


def calendar_url(turn: Turn, event_id: str, ticket: str) -> str:
    url = f"{turn.source.public_base_url.rstrip('/')}/open-days/{event_id}/{ticket}.ics"
    return url if turn.progress.lang == "it" else f"{url}?lang={turn.progress.lang}"


# -- the learner taps -------------------------------------------------------------------------------------
def show_invitation(turn: Turn, payload: str) -> None:
    """An entry link or QR code for an Open Day (``sys:event:<id>``, a slide's QR code): the invitation with its
    buttons, as an answer to the learner's own message (not a proactive one)."""
    event = turn.course.open_day(payload.removeprefix(ENTRY_PREFIX))
    if event is None or turn.now_ms >= event.start_ms:
        turn.say(turn.text("open_day_over"))
        turn.prompt()
    elif _state(turn).state(event.id) == "seated":
        turn.say(turn.text("open_day_full_anyway", **_values(turn, event)), _cancel_option(turn, event.id))
    else:
        if _state(turn).state(event.id) in ("", "invited"):
            _set(turn, event.id, "invited", last=True)
        turn.say(turn.text("open_day_invite", **_values(turn, event)), _rsvp_options(turn, event.id))



def choose(turn: Turn, payload: str, seat: Seat | None) -> None:
    """A tap of an invitation, a reminder or a follow-up; ``seat`` is the ledger's answer to yes/no."""
    action, _, event_id = payload.removeprefix(PAYLOAD_PREFIX).partition(":")
    event = turn.course.open_day(event_id or _state(turn).last)
    if event is None:
        turn.say(turn.text("open_day_over"))
    elif action == "module" and event.followup_module in turn.course.flows:
        turn.start_module(event.followup_module)
        return
    elif action in RSVP_ACTIONS and seat is not None and seat.event_id == event.id:
        _answered(turn, event, seat)
    elif turn.now_ms >= event.start_ms:
        turn.say(turn.text("open_day_over"))
    elif action == "invite":  # an entry link or QR code for this Open Day (bot.tutor.entry): the RSVP buttons
        turn.say(turn.text("open_day_invite", **_values(turn, event)), _rsvp_options(turn, event.id))
        _set(turn, event.id, _state(turn).state(event.id) or "invited", last=True)
        return
    elif action == "later":
        _set(turn, event.id, "maybe")
        again = event.start_ms - ASK_AGAIN_BEFORE_MS
        if again > turn.now_ms:
            turn.timers.append((again, f"{TIMER_PREFIX}ask:{event.id}"))
        turn.say(turn.text("open_day_later", **_values(turn, event)))
    else:  # no ledger answer (a tool without Redis): nothing can be promised
        turn.say(turn.text("open_day_over"))
    turn.prompt()


def _answered(turn: Turn, event: OpenDay, seat: Seat) -> None:
    values = _values(turn, event)
    if seat.state is SeatState.SEATED and seat.already and _state(turn).state(event.id) == "seated":
        _set(turn, event.id, "seated")
        turn.say(turn.text("open_day_full_anyway", **values), _cancel_option(turn, event.id))
    elif seat.state is SeatState.SEATED:
        _confirm(turn, event, seat.ticket, "open_day_seated")
    elif seat.state is SeatState.WAITING:
        _set(turn, event.id, "waiting")
        turn.say(turn.text("open_day_waiting", rank=seat.rank, **values), _cancel_option(turn, event.id))
        _plan_waiting(turn, event)
    else:
        _set(turn, event.id, "declined")
        turn.say(turn.text("open_day_declined", **values))


def _confirm(turn: Turn, event: OpenDay, ticket: str, text_key: str) -> None:
    """The seat is the learner's: say so with the calendar file, and set the reminders' clocks."""
    _set(turn, event.id, "seated")
    # the file as a document, and its link in the text: WhatsApp lists no calendar type among its documents
    turn.say(turn.text(text_key, calendar=calendar_url(turn, event.id, ticket), **_values(turn, event)),
             _cancel_option(turn, event.id), _calendar(turn, event.id, ticket))
    _plan(turn, event)


def _calendar(turn: Turn, event_id: str, ticket: str) -> Media:
    return Media(kind=MediaKind.DOCUMENT, url=calendar_url(turn, event_id, ticket),
                 caption=turn.text("open_day_calendar_caption"), filename=CALENDAR_FILENAME)


def _plan(turn: Turn, event: OpenDay) -> None:
    for kind, _ in (*REMINDERS, ("after", 0)):
        moment = _moment(turn, event, kind)
        if moment > turn.now_ms:
            first = placement.first_look(moment, turn.now_ms, _policy(turn, kind))
            turn.timers.append((first, f"{TIMER_PREFIX}{kind}:{event.id}"))


def _plan_waiting(turn: Turn, event: OpenDay) -> None:
    """On the waiting list: at the start, whether a seat freed up or not is known (``full``)."""
    if event.start_ms > turn.now_ms:
        turn.timers.append((event.start_ms, f"{TIMER_PREFIX}full:{event.id}"))


def _plan_recording(turn: Turn, event: OpenDay) -> None:
    """Told the seats ran out: the recording at the follow-up's moment, if the event has one (``rec``)."""
    moment = _moment(turn, event, "rec")
    if event.recording_url and moment > turn.now_ms:
        turn.timers.append((placement.first_look(moment, turn.now_ms, _policy(turn, "rec")),
                            f"{TIMER_PREFIX}rec:{event.id}"))


def replan(turn: Turn) -> None:
    """Every clock of the learner was cancelled (an opt-out undone, a restart): set the Open Days' ones again."""
    for event_id, state in _state(turn).rsvps.items():
        event = turn.course.open_day(event_id)
        if event is None or event.end_ms + FOLLOWUP_AFTER_END_MS < turn.now_ms:
            continue
        if state == "seated":
            _plan(turn, event)
        elif state == "waiting":
            _plan_waiting(turn, event)
        elif state == "missed":
            _plan_recording(turn, event)
        elif state == "maybe" and event.start_ms - ASK_AGAIN_BEFORE_MS > turn.now_ms:
            turn.timers.append((event.start_ms - ASK_AGAIN_BEFORE_MS, f"{TIMER_PREFIX}ask:{event.id}"))


def _policy(turn: Turn, kind: str) -> Policy:
    """The reminders may move earlier into the window like any reminder; the link and the follow-up may not."""
    policy = turn.source.policy
    return replace(policy, shift_max_ms=0) if kind in UNMOVED else policy


def _moment(turn: Turn, event: OpenDay, kind: str) -> int:
    """When the message of ``kind`` is meant for; the follow-up (and ``rec``) moves out of the quiet hours to the
    morning."""
    offsets = {**dict(REMINDERS), "full": 0}
    if kind in offsets:
        return event.start_ms + offsets[kind]
    if kind == "ask":
        return event.start_ms - ASK_AGAIN_BEFORE_MS
    policy, zone = turn.source.policy, turn.progress.proactive.time_zone
    moment = event.end_ms + FOLLOWUP_AFTER_END_MS
    if policy.quiet(moment, zone) and policy.quiet_end_minute is not None:
        mornings = (policy.at_local(day, policy.quiet_end_minute + 60, zone)
                    for day in policy.next_days(moment, zone, 3))
        moment = next(at for at in mornings if at > moment)
    return moment


# -- the clocks -------------------------------------------------------------------------------------------
def reach(turn: Turn) -> Reach:
    progress = turn.progress
    return Reach(channel=progress.channel, opted_out=not consent.may_message_first(progress),
                 last_inbound_ms=progress.last_inbound_at_ms, record=progress.proactive)


def on_timer(turn: Turn, payload: str, due_ms: int) -> None:
    """An Open Day's clock event fired (see the module docstring)."""
    kind, _, rest = payload.removeprefix(TIMER_PREFIX).partition(":")
    event_id, _, more = rest.partition(":")
    ticket = more.partition(":")[0] if kind == "seat" else ""
    event = turn.course.open_day(event_id)
    if event is None or kind not in USES:
        return
    state = _state(turn).state(event.id)
    wanted = {"ann": ("",), "ask": ("maybe",), "seat": ("", "invited", "maybe", "waiting", "declined"),
              "full": ("waiting",), "rec": ("missed",)}.get(kind, ("seated",))
    if state not in wanted or (kind in ("ann", "ask", "seat") and turn.now_ms >= event.start_ms):
        return
    moment = due_ms if kind in ("ann", "seat") else _moment(turn, event, kind)
    decided = placement.place(reach(turn), moment_ms=moment, now_ms=turn.now_ms, policy=_policy(turn, kind),
                              template=turn.course.template_for(USES[kind]), capped=kind == "ann")
    again = f"{TIMER_PREFIX}{kind}:{event.id}:{ticket or 'w'}"
    if decided.how is How.WAIT:
        turn.timers.append((decided.at_ms, f"{again}:{decided.at_ms}"))
    elif decided.sends:
        _say(turn, event, kind, ticket, decided)
    elif kind in ("ann", "seat") and decided.reason in ("quiet hours", "daily cap"):
        later = _next_morning(turn, turn.now_ms, other_day=decided.reason == "daily cap")
        if later < event.start_ms:
            turn.timers.append((later, f"{again}:{later}"))
    elif kind == "seat":  # no way to tell them now (opted out, no window): the seat is theirs all the same
        _set(turn, event.id, "seated", last=True)
        _plan(turn, event)


def _next_morning(turn: Turn, after_ms: int, *, other_day: bool) -> int:
    """An hour after the quiet hours end, the first such moment after ``after_ms`` (on another day: the cap)."""
    policy, zone = turn.source.policy, turn.progress.proactive.time_zone
    minute = (policy.quiet_end_minute or 8 * 60) + 60
    day = policy.local_day(after_ms, zone)
    return next(at for at in (policy.at_local(d, minute, zone) for d in policy.next_days(after_ms, zone, 3))
                if at > after_ms and not (other_day and policy.local_day(at, zone) == day))


def _say(turn: Turn, event: OpenDay, kind: str, ticket: str, decided: Placement) -> None:
    values = _values(turn, event)
    media = None
    if kind in ("ann", "ask"):
        text = turn.text("open_day_invite" if kind == "ann" else "open_day_ask_again", **values)
        options, link = _rsvp_options(turn, event.id), values["link"]
        _set(turn, event.id, "invited" if kind == "ann" else "maybe", last=True)
    elif kind == "seat":  # promoted from the waiting list: the seat, the calendar file, the reminders' clocks
        # a template carries no file: its text carries the calendar link, as the free-form text does beside the file
        link = calendar_url(turn, event.id, ticket)
        text = turn.text("open_day_promoted", calendar=link, **values)
        options = _cancel_option(turn, event.id)
        media = _calendar(turn, event.id, ticket)
        _set(turn, event.id, "seated", last=True)
        _plan(turn, event)
    elif kind in ("full", "rec"):
        text, options, link = _missed(turn, event, kind, decided)
    elif kind == "after":
        # a text's own whitespace is trimmed when the course is read: the paragraph break is added here
        recording = turn.text("open_day_recording", link=event.recording_url) + "\n\n" if event.recording_url else ""
        text = turn.text("open_day_followup", recording=recording, **values)
        options = [Option(id=f"{PAYLOAD_PREFIX}module:{event.id}", title=turn.text("label_od_module"))] \
            if event.followup_module in turn.course.flows else []
        link = event.recording_url
        _set(turn, event.id, "seated", last=True)
    else:
        key = {"r24": "open_day_reminder_24h", "r1": "open_day_reminder_1h", "start": "open_day_starting"}[kind]
        text, link = turn.text(key, **values), values["link"]
        options = _cancel_option(turn, event.id) if kind != "start" else []
        _set(turn, event.id, "seated", last=True)
    outreach.say(turn, decided, kind=f"open_day_{kind}", text=text, options=options,
                 fields=_fields(turn, event, link=link), media=media)


def _missed(turn: Turn, event: OpenDay, kind: str, decided: Placement) -> tuple[str, list[Option], str]:
    """Still waiting at the start (``full``) and, later, the recording (``rec``): (text, options, template link)."""
    values = _values(turn, event)
    if kind == "rec":
        options = [Option(id=f"{PAYLOAD_PREFIX}module:{event.id}", title=turn.text("label_od_module"))] \
            if event.followup_module in turn.course.flows else []
        # a template's module button carries no event id: it answers the latest event, so this one becomes it
        _set(turn, event.id, "missed", last=decided.how is How.TEMPLATE)
        return turn.text("open_day_missed", **{**values, "link": event.recording_url}), options, event.recording_url
    _set(turn, event.id, "missed")
    _plan_recording(turn, event)
    recording = turn.text("open_day_full_recording") + "\n" if event.recording_url else ""
    upcoming = _upcoming(turn, event) if decided.how is not How.TEMPLATE else None  # a template has no buttons
    if upcoming is None:
        return turn.text("open_day_full", recording=recording, next=turn.text("open_day_full_no_next"),
                         **values), [], ""
    if not _state(turn).state(upcoming.id):  # as an invitation would (its announcement then skips them)
        _set(turn, upcoming.id, "invited", last=True)
    offer = turn.text("open_day_full_next", **_values(turn, upcoming))
    return turn.text("open_day_full", recording=recording, next=offer, **values), _rsvp_options(turn, upcoming.id), ""


def _upcoming(turn: Turn, event: OpenDay) -> OpenDay | None:
    """The next Open Day published (``events.yaml``) after ``event`` whose audience has the learner, and which
    they have not answered yet; None if there is none."""
    progress = turn.progress
    later = sorted((other for other in turn.course.open_days if other.start_ms > max(event.start_ms, turn.now_ms)),
                   key=lambda other: other.start_ms)
    return next((other for other in later
                 if _state(turn).state(other.id) in ("", "invited", "maybe")
                 and other.audience.admits(channel=progress.channel, lang=progress.lang, business=progress.business,
                                           modules_done=tuple(progress.modules_done))), None)
