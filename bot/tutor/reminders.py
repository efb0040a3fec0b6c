"""Reminders the learner chooses, and the "Lo faccio dopo" follow-ups they carry. No I/O.

The choice (``reminders.yaml``: slots, days) is offered after the first module, from the menu and with
the word ``promemoria``/``reminders``: when (a slot, or "no, thanks"), then which days (every day,
Monday to Friday, or every day but the shop's closing day). Times are the learner's local time.

One reminder is planned at a time, on a server-side clock (``bot.delivery.timers``): the next moment the
learner's days and slot allow, skipping a day they were already active on (they came back by themselves)
or one whose proactive message went out already. Its timer first fires ``shift_max`` before the moment
(``bot.proactive.placement.first_look``) and asks ``placement.place`` each time it fires: wait (for the
slot, or for the window's last minute), send now (free-form, moved inside the window, or the ``reminder``
template), or skip to the next moment. Timers are ``rem:<seq>``; only the latest ``seq`` counts, so an
older one (a changed choice, a restart) fires and does nothing — exactly once, like every clock event.

A reminder the learner does not answer counts; when the next one falls due after
``Policy.stop_after_ignored`` unanswered in a row, it is not sent: reminders pause, and the next time the
learner writes Bottega says so and how to resume (``promemoria``).

"Lo faccio dopo" on a *Prova ora* step (a choice whose id is in ``later_choices``) records a follow-up: the
next free-form reminder asks "Did you manage it?", quoting the task (the paragraph that starts with
``task_marker``); the answer is kept in ``ReminderState.followups``, a learning signal for the console.
"""

from __future__ import annotations

from bot.flows.spec import Reminders, ReminderSlot, Step
from bot.model.replies import Option
from bot.proactive import placement
from bot.proactive.placement import How, Placement, Reach
from bot.tutor import consent, outreach
from bot.tutor.progress import Pending
from bot.tutor.progress_parts import FOLLOWUP_LOG_MAX, NOTICES_MAX, FollowUp, NoticeShown, ReminderState
from bot.tutor.turn import Turn

TIMER_PREFIX = "rem:"
PAYLOAD_PREFIX = "sys:rem:"  # every tap of this feature: valid from any older message (navigation)
PENDING = (Pending.REMINDER_SLOT, Pending.REMINDER_DAYS, Pending.REMINDER_CLOSED_DAY)
KIND = "reminder"  # Reply.proactive / Sent.kind
PLAN_DAYS = 15  # how far ahead a next moment is looked for
TASK_MAX_CHARS = 300


def available(turn: Turn) -> bool:
    return turn.course.reminders is not None


def _spec(turn: Turn) -> Reminders:
    spec = turn.course.reminders
    assert spec is not None  # callers check available()
    return spec


def _state(turn: Turn) -> ReminderState:
    return turn.progress.reminders


def _set(turn: Turn, **changes: object) -> None:
    turn.progress = turn.progress.with_changes(reminders=_state(turn).with_changes(**changes))


# -- the choice ---------------------------------------------------------------------------------------
def offer(turn: Turn) -> None:
    """Ask when to be reminded (after the first module, from the menu, or the word ``promemoria``)."""
    if not available(turn):
        turn.prompt()
        return
    _set(turn, offered=True)
    turn.progress = turn.progress.with_changes(pending=Pending.REMINDER_SLOT)
    show(turn)


def offer_after_first_module(turn: Turn) -> None:
    """The first finished module: the choice goes just before "Well done!" and its buttons (next module,
    menu), which stay the last ones on screen; the slots' buttons work from there too (navigation)."""
    if not available(turn) or _state(turn).offered or _state(turn).slot or not turn.replies:
        return
    _set(turn, offered=True)
    closing = turn.replies.pop()
    turn.say(_ask_text(turn), _slot_options(turn))
    turn.replies.append(closing)


def options(turn: Turn) -> list[Option]:
    lang, pending = turn.progress.lang, turn.progress.pending
    spec = _spec(turn)
    if pending == Pending.REMINDER_SLOT:
        return _slot_options(turn)
    if pending == Pending.REMINDER_DAYS:
        return [Option(id=f"{PAYLOAD_PREFIX}days:{days}", title=turn.text(f"label_days_{days}"))
                for days in ("every", "weekdays", "except")]
    return [Option(id=f"{PAYLOAD_PREFIX}closed:{number}", title=day.get(lang))
            for number, day in enumerate(spec.weekdays)]


def _slot_options(turn: Turn) -> list[Option]:
    lang = turn.progress.lang
    return [*(Option(id=f"{PAYLOAD_PREFIX}slot:{slot.id}", title=slot.label.get(lang)) for slot in _spec(turn).slots),
            Option(id=f"{PAYLOAD_PREFIX}slot:never", title=turn.text("label_remind_never"))]


def _ask_text(turn: Turn) -> str:
    lang = turn.progress.lang
    return turn.text("reminder_ask", slots="\n".join(f"• {slot.label.get(lang)}: {slot.time}"
                                                     for slot in _spec(turn).slots))


def show(turn: Turn) -> None:
    """The question on screen for the learner's pending reminder choice."""
    pending = turn.progress.pending
    if pending == Pending.REMINDER_SLOT:
        turn.say(_ask_text(turn), options(turn))
    elif pending == Pending.REMINDER_DAYS:
        turn.say(turn.text("reminder_days_ask"), options(turn))
    else:
        turn.say(turn.text("reminder_closed_day_ask"), options(turn))


def choose(turn: Turn, payload: str) -> None:
    """A tap of this feature: a choice, or a button of a reminder (free-form or template)."""
    if not available(turn):
        turn.prompt()
        return
    action, _, value = payload.removeprefix(PAYLOAD_PREFIX).partition(":")
    if action == "slot":
        _choose_slot(turn, value)
    elif action == "days" and value in ("every", "weekdays"):
        _finish(turn, value)
    elif action == "days":
        turn.progress = turn.progress.with_changes(pending=Pending.REMINDER_CLOSED_DAY)
        show(turn)
    elif action == "closed" and value.isdigit() and int(value) < 7:
        _finish(turn, f"except:{value}")
    elif action == "change":
        offer(turn)
    elif action == "off":
        _set(turn, slot="never", seq=_state(turn).seq + 1, moment_ms=0)
        turn.say(turn.text("reminder_turned_off"))
        turn.prompt()
    elif action == "fu":
        _answer_followup(turn, value)
    else:  # "go", or anything an older version sent: carry on where the learner is
        _carry_on(turn)


def _choose_slot(turn: Turn, slot_id: str) -> None:
    if slot_id != "never" and _spec(turn).slot(slot_id) is None:
        offer(turn)  # a slot an older reminders.yaml had: ask again
        return
    turn.progress = turn.progress.with_changes(reminders_chosen_at_ms=turn.now_ms)  # a merge keeps the latest
    p = turn.progress  # the opt-in (or out) recorded like the privacy notice: what, when, on which channel
    entry = NoticeShown(what="reminders_opt_out" if slot_id == "never" else "reminders_opt_in", version=slot_id,
                        at_ms=turn.now_ms, channel=p.channel)
    turn.progress = p.with_changes(notices=(*p.notices, entry)[-NOTICES_MAX:])
    if slot_id == "never":
        _set(turn, slot="never", seq=_state(turn).seq + 1, moment_ms=0, paused=False, tell_paused=False)
        turn.progress = turn.progress.with_changes(pending=Pending.NONE)
        turn.say(turn.text("reminder_off"))
        turn.prompt()
        return
    _set(turn, slot=slot_id)
    turn.progress = turn.progress.with_changes(pending=Pending.REMINDER_DAYS)
    show(turn)


def _finish(turn: Turn, days: str) -> None:
    _set(turn, days=days, paused=False, tell_paused=False, unanswered=0)
    turn.progress = turn.progress.with_changes(pending=Pending.NONE)
    plan(turn)
    slot = _spec(turn).slot(_state(turn).slot)
    assert slot is not None
    turn.say(turn.text("reminder_set", time=slot.time, days=describe_days(turn, days)))
    turn.prompt()


def describe_days(turn: Turn, days: str) -> str:
    if days.startswith("except:"):
        day = _spec(turn).weekdays[int(days.removeprefix("except:"))].get(turn.progress.lang)
        return turn.text("days_except", day=day.lower())
    return turn.text("days_weekdays" if days == "weekdays" else "days_every")


def _carry_on(turn: Turn) -> None:
    """A reminder's "Riprendi": the step the learner is on, else the next module."""
    step = turn.current_step()
    turn.progress = turn.progress.with_changes(pending=Pending.NONE)
    if step is not None and not step.end:
        turn.say(turn.text("resume"))
        turn.show_step(step)
        return
    following = _next_module(turn)
    if following:
        turn.start_module(following)
    else:
        turn.show_menu()


def _next_module(turn: Turn) -> str:
    done = turn.progress.modules_done
    return next((flow_id for flow_id in turn.course.modules if flow_id not in done), "")


# -- the learner writes -------------------------------------------------------------------------------
def on_learner_message(turn: Turn) -> None:
    """Whatever the learner did answers the reminders; paused ones are explained once."""
    state = _state(turn)
    if state.unanswered:
        _set(turn, unanswered=0)
    if state.tell_paused and available(turn):
        _set(turn, tell_paused=False)
        turn.say(turn.text("reminder_paused"))


def later(turn: Turn, flow_id: str, step_id: str) -> None:
    """A "Lo faccio dopo" (a choice in ``later_choices``): the next reminder asks about it."""
    if available(turn):
        _set(turn, followup=FollowUp(flow=flow_id, step=step_id, at_ms=turn.now_ms))


def is_later(turn: Turn, trigger: str) -> bool:
    return available(turn) and trigger in _spec(turn).later_choices


def _answer_followup(turn: Turn, answer: str) -> None:
    state = _state(turn)
    if state.followup is not None and answer in ("done", "not_yet"):
        answered = FollowUp(flow=state.followup.flow, step=state.followup.step, at_ms=turn.now_ms, answer=answer)
        _set(turn, followup=None, followups=(*state.followups, answered)[-FOLLOWUP_LOG_MAX:])
        turn.say(turn.text("followup_done" if answer == "done" else "followup_not_yet"))
    _carry_on(turn)


# -- planning and firing ------------------------------------------------------------------------------
def reach(turn: Turn) -> Reach:
    progress = turn.progress
    return Reach(channel=progress.channel, opted_out=not consent.may_message_first(progress),
                 last_inbound_ms=progress.last_inbound_at_ms, record=progress.proactive,
                 free_entry_until_ms=progress.entry.free_until_ms)


def plan(turn: Turn, *, after_ms: int | None = None) -> None:
    """Plan the next reminder after ``after_ms`` (default now) and set its timer; none if none is due."""
    state = _state(turn)
    slot = _spec(turn).slot(state.slot) if available(turn) else None
    if slot is None or not state.active or not consent.may_message_first(turn.progress):
        _set(turn, moment_ms=0, seq=state.seq + 1)
        return
    moment = next_moment(turn, slot, after_ms if after_ms is not None else turn.now_ms)
    seq = state.seq + 1
    _set(turn, moment_ms=moment, seq=seq)
    if moment:
        turn.timers.append((placement.first_look(moment, turn.now_ms, turn.source.policy), f"{TIMER_PREFIX}{seq}"))


def next_moment(turn: Turn, slot: ReminderSlot, after_ms: int) -> int:
    """The first moment after ``after_ms`` on an allowed day the learner was not already active on, or 0."""
    policy, progress = turn.source.policy, turn.progress
    zone = progress.proactive.time_zone
    active_day = policy.local_day(progress.last_inbound_at_ms, zone) if progress.last_inbound_at_ms else ""
    days = _state(turn).days
    for day in policy.next_days(after_ms, zone, PLAN_DAYS):
        weekday = day.weekday()
        if (days == "weekdays" and weekday >= 5) or days == f"except:{weekday}":
            continue
        moment = policy.at_local(day, slot.minute, zone)
        local_day = day.date().isoformat()
        if moment <= after_ms or local_day == active_day:
            continue
        if progress.proactive.count_on(local_day) >= policy.max_per_day or policy.quiet(moment, zone):
            continue
        return moment
    return 0


def on_timer(turn: Turn, payload: str) -> None:
    """A reminder's clock: wait, send, or skip to the next moment (``placement.place`` decides)."""
    state = _state(turn)
    seq = payload.removeprefix(TIMER_PREFIX)
    if not available(turn) or not seq.isdigit() or int(seq) != state.seq or not state.moment_ms:
        return  # an older plan's timer, or reminders are off
    policy, progress = turn.source.policy, turn.progress
    if state.unanswered >= policy.stop_after_ignored:  # the last ones went unanswered: pause, say so later
        _set(turn, paused=True, tell_paused=True, moment_ms=0, seq=state.seq + 1)
        return
    zone = progress.proactive.time_zone
    if progress.last_inbound_at_ms and policy.local_day(progress.last_inbound_at_ms, zone) == \
            policy.local_day(state.moment_ms, zone):
        plan(turn, after_ms=state.moment_ms)  # they came by themselves that day: no reminder needed
        return
    decided = placement.place(reach(turn), moment_ms=state.moment_ms, now_ms=turn.now_ms, policy=policy,
                              template=turn.course.template_for(KIND))
    if decided.how is How.WAIT:
        _set(turn, seq=state.seq + 1)
        turn.timers.append((decided.at_ms, f"{TIMER_PREFIX}{state.seq + 1}"))
        return
    if decided.sends:
        _send(turn, decided)
    plan(turn, after_ms=max(state.moment_ms, turn.now_ms))


def _send(turn: Turn, decided: Placement) -> None:
    state = _state(turn)
    slot = _spec(turn).slot(state.slot)
    assert slot is not None
    module = _module_title(turn)
    text, options = _free_form(turn, module)
    outreach.say(turn, decided, kind=KIND, text=text, options=options,
                 fields={"module": module, "time": slot.time, "name": turn.progress.name,
                         "business": turn.course.business_label(turn.progress.business, turn.progress.lang)})
    _set(turn, unanswered=state.unanswered + 1)


def _free_form(turn: Turn, module: str) -> tuple[str, list[Option]]:
    followup = _state(turn).followup
    task = _task(turn, followup) if followup else ""
    if followup and not task:  # a step without a task to quote (or gone from the course): nothing to ask
        _set(turn, followup=None)
    if task:
        return turn.text("followup_ask", task=task), [
            Option(id=f"{PAYLOAD_PREFIX}fu:done", title=turn.text("label_done")),
            Option(id=f"{PAYLOAD_PREFIX}fu:not_yet", title=turn.text("label_not_yet"))]
    return turn.text("reminder_message", module=module), [
        Option(id=f"{PAYLOAD_PREFIX}go", title=turn.text("label_resume")),
        Option(id=f"{PAYLOAD_PREFIX}change", title=turn.text("label_change_time")),
        Option(id=f"{PAYLOAD_PREFIX}off", title=turn.text("label_reminders_off"))]


def _module_title(turn: Turn) -> str:
    progress = turn.progress
    flow_id = progress.flow if progress.flow and progress.flow not in progress.modules_done else _next_module(turn)
    flow = turn.course.flows.get(flow_id)
    return flow.title.get(progress.lang) if flow else turn.course.title.get(progress.lang)


def _task(turn: Turn, followup: FollowUp) -> str:
    """The task of a *Prova ora* step, in the learner's language and business: the paragraph after the marker."""
    flow = turn.source.flow_for(followup.flow, 0) or turn.course.flows.get(followup.flow)
    step: Step | None = flow.steps.get(followup.step) if flow else None
    marker = _spec(turn).task_marker
    if step is None:
        return ""
    lang, business = turn.progress.lang, turn.progress.business
    for say in step.say:
        text = say.get(lang, business)
        at = text.find(marker.get(lang)) if marker else -1
        if at >= 0:
            paragraph = text[at + len(marker.get(lang)) if marker else 0:].strip().split("\n\n")[0].strip()
            return paragraph[:TASK_MAX_CHARS]
    return ""
