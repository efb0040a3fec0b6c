"""The tutor's brain: ``Engine.step(progress, event) -> Outcome(progress, replies)``. No I/O.

What a learner's message does, in order:
1. a new learner is welcomed (Bottega says it is an automated tutor) and asked for a language;
2. global words (menu, aiuto/help, progressi/progress, stop/basta, riprendi/resume, lingua/language,
   ricomincia/restart, promemoria/reminders) work anywhere, in both languages, ignoring case, accents and punctuation —
   typed, or tapped on a template's quick-reply button (a tapped Stop opts out at once);
3. otherwise the input is matched against the options on screen (button id, label, or number) and
   routed to the feature it belongs to; an old button or an unknown input gets a polite re-prompt.
A clock event (TIMER) may move the learner on but never writes to one who opted out (``bot.tutor.consent``):
``rem:`` timers are reminders (``bot.tutor.reminders``), ``od:`` ones Business Open Days
(``bot.tutor.open_days``), ``bc:`` a broadcast's message (``bot.tutor.broadcast``), the others the check-up's.
PREFERENCE events and
Meta's refusals (failed STATUS) only update what the learner's record keeps about writing first
(``bot.tutor.preferences``).

No reply floods: re-prompts, the menu and help are ``ephemeral`` (a later turn's replies supersede
them in the outbox), and "non ho capito" / "old button" / "can't read that" are said at most once per
``NOT_UNDERSTOOD_PAUSE_MS``; within the pause such input gets no answer (the last one is on screen).

The engine composes the features: a ``Conversation`` is the turn (``bot.tutor.turn``) with its ways
on implemented here, routing each tap to the feature that handles it (``lessons``, ``checkup``,
``review``, ``revisit``, ``menu``, ``graduation``, ``global_words``) and following up across them (a
finished check-up -> the certificate). Features import the turn, never this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bot.certificates.model import Certificate
from bot.flows.machine import FlowMachine
from bot.flows.spec import Course, Flow, Step
from bot.model.events import EventKind, InboundEvent
from bot.model.replies import Option, Reply
from bot.model.seats import Seat
from bot.proactive.policy import Policy
from bot.tutor import (
    broadcast,
    checkup,
    consent,
    conversations,
    entry,
    global_words,
    graduation,
    handover,
    lessons,
    linking,
    menu,
    open_days,
    preferences,
    privacy,
    reminders,
    retention,
    review,
    revisit,
)
from bot.tutor.linking import LinkNews
from bot.tutor.progress import Pending, Progress
from bot.tutor.turn import NOT_UNDERSTOOD_PAUSE_MS, Turn
from bot.tutor.typed_text import normalise, option_number

__all__ = ["NOT_UNDERSTOOD_PAUSE_MS", "OUR_PAYLOADS", "Conversation", "Engine", "Outcome"]

OUR_PAYLOADS = ("sys:", "c:", "k:", "r:")  # the prefixes of every option id Bottega renders
_UNREADABLE_TEXTS = {"edit": "edit_reply", "order": "order_reply"}


@dataclass(frozen=True, kw_only=True, slots=True)
class Outcome:
    progress: Progress
    replies: tuple[Reply, ...]
    timers: tuple[tuple[int, str], ...] = ()  # (due ms, payload): clock events to schedule
    certificates: tuple[Certificate, ...] = ()  # certificates issued in this turn, to be stored
    cancel_timers: bool = False  # drop every pending clock event first (the learner opted out)
    drop_proactive: bool = False  # drop proactive messages still waiting in the outbox (the learner opted out)
    elsewhere: tuple[tuple[str, Reply], ...] = ()  # (channel, reply) for the learner's other linked conversations
    link_code: str = ""  # a link code offered: stored by the dispatcher before the commit (bot.tutor.linking)
    unlink: bool = False  # split the linked channels apart after the commit
    privacy_action: str = ""  # "export" | "erase" (bot.tutor.privacy)
    export_token: str = ""  # where the export is served: stored by the dispatcher before the commit


class Engine:
    """The live course plus every older module version a learner may still be on.

    Machines are built here, once per (module, version); ``machines`` lets a rebuilt engine reuse the
    ones an earlier engine built (a (module, version) pair never changes content once published).
    """

    def __init__(self, course: Course, *, older: Iterable[Flow] = (),
                 machines: Mapping[tuple[str, int], FlowMachine] | None = None, public_base_url: str = "",
                 policy: Policy | None = None):
        self.course = course
        self.public_base_url = public_base_url  # where certificates are served (PUBLIC_BASE_URL)
        self.policy = policy or Policy()  # the rules of writing first (bot.proactive.policy)
        self.flows: dict[tuple[str, int], Flow] = {(f.id, f.version): f for f in older}
        self.flows.update({(f.id, f.version): f for f in course.flows.values()})
        built = machines or {}
        self.machines = {key: built.get(key) or FlowMachine(flow) for key, flow in self.flows.items()}

    def flow_for(self, flow_id: str, version: int) -> Flow | None:
        """The version a learner is on; the live one if that version is unknown here (never published)."""
        return self.flows.get((flow_id, version)) or self.course.flows.get(flow_id)

    def machine_for(self, flow: Flow) -> FlowMachine:
        return self.machines[(flow.id, flow.version)]

    def step(self, progress: Progress, event: InboundEvent, *, seat: Seat | None = None,
             link: LinkNews | None = None) -> Outcome:
        """One event's turn. ``seat``: the Open Day ledger's answer to this RSVP tap (``bot.dispatch`` asks it);
        ``link``: what came of a link code the learner sent (``bot.dispatch`` redeems it)."""
        if event.kind is EventKind.TIMER:  # Bottega writes first: where it is free, else where it may
            progress = conversations.for_proactive(progress, progress.updated_at_ms, window_ms=self.policy.window_ms,
                                                   margin_ms=self.policy.margin_ms)
        turn = Conversation(self, progress)
        start = entry.arrival(turn, event) if event.kind.from_learner else ""  # an entry link's start code
        turn.seat = seat
        if event.kind.from_learner and not progress.is_new and not progress.handover.open:
            review.note_visit(turn)  # a message after a long gap starts a visit: missed questions come back
            reminders.on_learner_message(turn)
            retention.on_learner_message(turn)
        if event.kind is EventKind.ADMIN:
            handover.on_admin(turn, event)  # a person's reply or hand-back (bot.handover)
        elif progress.handover.open and event.kind.from_learner and handover.while_open(turn, event):
            pass  # a person answers: the message is kept for the inbox (or riprendi resumed the course)
        elif event.kind is EventKind.TIMER:
            if progress.is_new:
                pass
            elif event.payload.startswith(reminders.TIMER_PREFIX):
                reminders.on_timer(turn, event.payload)
            elif event.payload.startswith(retention.TIMER_PREFIX):
                retention.warn(turn, event.payload)
            elif event.payload.startswith(open_days.TIMER_PREFIX):
                open_days.on_timer(turn, event.payload, event.timestamp_ms)
            elif event.payload.startswith(broadcast.TIMER_PREFIX):
                broadcast.on_timer(turn, event.payload)
            else:
                checkup.on_timer(turn, event.payload)
        elif event.kind is EventKind.PREFERENCE:
            preferences.on_preference(turn, event)
        elif event.kind is EventKind.STATUS:
            preferences.on_refusal(turn, event)
        elif link is not None:
            linking.news(turn, link)
            if progress.is_new and link is not LinkNews.LINKED:
                turn.welcome()
        elif progress.is_new:
            turn.welcome()
        elif event.kind is EventKind.OPENED:
            pass  # a known learner opened the chat again: nothing to say until they write
        elif start and turn.navigation(start):
            turn.start_target(start)
        elif event.kind is EventKind.MEDIA:
            turn.not_understood("media_reply")
        elif event.kind is EventKind.UNREADABLE:
            turn.not_understood(_UNREADABLE_TEXTS.get(event.detail, "unreadable_reply"))
        else:
            turn.handle(event)
        if turn.checkup_finished:
            graduation.after_checkup(turn)
        if turn.module_finished:
            reminders.offer_after_first_module(turn)
        if turn.cancel_timers and consent.may_message_first(turn.progress):
            reminders.plan(turn)  # a restart cancelled every clock: the reminders keep theirs
            open_days.replan(turn)  # and so do the Open Days the learner holds a seat for
        if event.kind is EventKind.TIMER and (not consent.may_message_first(progress) or progress.handover.open):
            turn.replies.clear()  # the clock may move state on; it never writes to an opted-out learner, nor
            # while a person answers them
        if event.kind.from_learner:
            turn.progress = turn.progress.with_changes(seen_ms=turn.now_ms)
        return Outcome(progress=turn.progress, replies=tuple(turn.replies), timers=tuple(turn.timers),
                       certificates=tuple(turn.certificates), cancel_timers=turn.cancel_timers,
                       drop_proactive=turn.drop_proactive, elsewhere=tuple(turn.elsewhere), link_code=turn.link_code,
                       unlink=turn.unlink, privacy_action=turn.privacy_action, export_token=turn.export_token)


class Conversation(Turn):
    """A turn with the engine's ways on: what is on screen, where a tap leads, what to show again."""

    seat: Seat | None = None  # the Open Day ledger's answer to this turn's RSVP tap, if it is one

    # -- what is on screen -----------------------------------------------------------------------
    def options(self) -> list[Option]:
        pending = self.progress.pending
        if pending == Pending.LANGUAGE:
            return [Option(id="sys:lang:it", title=self.text("label_italian")),
                    Option(id="sys:lang:en", title=self.text("label_english"))]
        if pending == Pending.BUSINESS:
            return [Option(id=f"sys:biz:{kind.id}", title=kind.label.get(self.progress.lang))
                    for kind in self.course.business_types]
        if pending in (Pending.CONFIRM_STOP, Pending.CONFIRM_RESTART, Pending.CONFIRM_UNLINK, Pending.CONFIRM_ERASE):
            return [Option(id="sys:yes", title=self.text("label_yes")),
                    Option(id="sys:no", title=self.text("label_no"))]
        if pending == Pending.HANDOVER_CONFIRM:
            return handover.options(self)
        if pending == Pending.CHECKUP_CONFIRM:
            return checkup.confirm_options(self)
        if pending == Pending.CHECKUP_LEAVE:
            return checkup.leave_options(self)
        if pending in (Pending.NONE, Pending.CHECKUP) and checkup.running(self):
            return checkup.question_options(self)
        if pending == Pending.REVISIT_QUIZ:
            return revisit.options(self)
        if pending in reminders.PENDING and reminders.available(self):
            return reminders.options(self)
        if pending == Pending.REVIEW:
            return review.options(self)
        if pending in (Pending.CERTIFICATE_NAME, Pending.CERTIFICATE_BUSINESS):
            return []
        step = self.current_step()
        if pending == Pending.MENU or step is None:
            return menu.options(self)
        flow = self.flow()
        assert flow is not None
        return lessons.step_options(self, flow, step)

    # -- showing ---------------------------------------------------------------------------------
    def prompt(self) -> None:
        start = len(self.replies)
        self._show_where()
        self.ephemeral_from(start)

    def _show_where(self) -> None:
        pending = self.progress.pending
        if pending == Pending.LANGUAGE:
            self.say(self.text("choose_language"), self.options())
        elif pending == Pending.BUSINESS:
            self.say(self.text("choose_business"), self.options())
        elif pending == Pending.CONFIRM_STOP:
            self.say(self.text("stop_confirm"), self.options())
        elif pending == Pending.CONFIRM_RESTART:
            self.say(self.text("restart_confirm"), self.options())
        elif pending == Pending.HANDOVER_CONFIRM:
            handover.show(self)
        elif pending == Pending.CONFIRM_UNLINK:
            self.say(self.text("unlink_confirm"), self.options())
        elif pending == Pending.CONFIRM_ERASE:
            self.say(self.text("erase_confirm"), self.options())
        elif pending == Pending.CHECKUP_CONFIRM:
            checkup.offer(self)
        elif pending == Pending.CHECKUP_LEAVE:
            checkup.ask_leave(self)
        elif pending in (Pending.NONE, Pending.CHECKUP) and checkup.running(self):
            checkup.show_question(self)
        elif pending == Pending.REVISIT_QUIZ:
            revisit.offer(self)
        elif pending in reminders.PENDING and reminders.available(self):
            reminders.show(self)
        elif pending == Pending.REVIEW:
            review.show_question(self)
        elif pending == Pending.CERTIFICATE_NAME:
            self.say(self.text("certificate_ask_name"))
        elif pending == Pending.CERTIFICATE_BUSINESS:
            self.say(self.text("certificate_ask_business"))
        elif pending == Pending.MENU or self.current_step() is None:
            self.show_menu()
        else:
            step = self.current_step()
            assert step is not None
            self.show_step(step, prompt_only=True)

    def show_menu(self, page: int = 0) -> None:
        if checkup.running(self):
            checkup.ask_leave(self)
        else:
            menu.show(self, page)

    def show_step(self, step: Step, *, prompt_only: bool = False) -> None:
        lessons.show_step(self, step, prompt_only=prompt_only)

    def enter(self, step: Step) -> None:
        lessons.enter(self, step)

    def start_module(self, flow_id: str) -> None:
        lessons.start_module(self, flow_id)

    # -- handling --------------------------------------------------------------------------------
    def welcome(self) -> None:
        self.say(self.text("welcome"))
        privacy.show_notice(self)
        self.progress = self.progress.with_changes(pending=Pending.LANGUAGE)
        self.say(self.text("choose_language"), self.options())

    def handle(self, event: InboundEvent) -> None:
        payload = event.payload if event.kind is EventKind.CHOICE else ""
        words = normalise(event.text) if event.kind is EventKind.TEXT else ""
        if words in global_words.WORDS:
            handover.recognised(self)
            global_words.HANDLERS[global_words.WORDS[words]](self, typed=True)
            return
        if self.progress.pending in (Pending.CERTIFICATE_NAME, Pending.CERTIFICATE_BUSINESS) and event.text.strip():
            graduation.field_typed(self, event.text.strip())
            return
        options = self.options()
        payload = payload or open_days.typed_answer(event, self.progress.open_days, self.course)
        if open_days.is_tap(payload):  # an Open Day's buttons work from any message, even mid-check-up
            open_days.choose(self, payload, self.seat)
            return
        if not payload and words:
            payload = self.match_text(words, options)
        if not payload and review.owed_now(self):
            return  # back after a while: the missed questions first, then where the learner was
        if not payload:
            if not (words and handover.unrecognised(self)):  # the third text in a row offers a person
                self.not_understood()
            return
        handover.recognised(self)
        if payload in {o.id for o in options}:
            self.choose(payload)
        elif self.navigation(payload):  # a module, the menu or the check-up from an older message: still valid
            if checkup.running(self):
                checkup.ask_leave(self)
            else:
                self.choose(payload)
        elif payload.startswith(OUR_PAYLOADS):
            self.not_understood("stale_button")
        else:  # a template button, a referral ref, a Get Started payload or an id we never sent
            self.foreign_payload(event)

    def start_target(self, payload: str) -> None:
        """What an entry link's start code asks for (``bot.tutor.entry``): an Open Day's invitation at once
        (its buttons work mid-check-up too), anything else after a running check-up asked first."""
        if open_days.is_tap(payload):
            open_days.choose(self, payload, self.seat)
        elif checkup.running(self):
            checkup.ask_leave(self)
        else:
            self.choose(payload)

    def first_screen(self) -> None:
        """After onboarding: what the entry link asked for, if anything, else the menu."""
        payload = entry.take_waiting(self)
        if payload and self.navigation(payload):
            self.start_target(payload)
        else:
            self.show_menu()

    def navigation(self, payload: str) -> bool:
        """A tap that goes somewhere rather than answers something: it stays valid after the screen moved on
        (an action plan's module button, an older menu page). Answers (``c:``, ``k:``, ``r:``) never do."""
        if payload.startswith("sys:module:"):
            return payload.removeprefix("sys:module:") in self.course.flows
        if payload.startswith(open_days.ENTRY_PREFIX):
            return self.course.open_day(payload.removeprefix(open_days.ENTRY_PREFIX)) is not None
        return payload in ("sys:menu", "sys:checkup", "sys:next") or payload.startswith(
            (menu.PAGE_PREFIX, reminders.PAYLOAD_PREFIX, open_days.PAYLOAD_PREFIX))

    def foreign_payload(self, event: InboundEvent) -> None:
        """A tap we did not render: a template's quick reply ("Stop", "Riprendi"), a referral, Get Started.

        A global word in its payload or label works as if tapped (a tapped Stop opts out at once: a
        tap is deliberate); anything else brings the learner back to where they were, quietly. A tap
        never undoes an opt-out: only a written message does (``bot.tutor.consent``).
        """
        word = global_words.word_in(event.payload) or global_words.word_in(event.text)
        if word == "stop":
            global_words.stop_now(self, how="tapped " + (event.detail or "button"))
        elif word:
            global_words.HANDLERS[word](self, typed=False)
        else:
            global_words.resume(self, typed=False, quiet=True)

    def match_text(self, words: str, options: list[Option]) -> str:
        number = option_number(words)
        if 1 <= number <= len(options):
            return options[number - 1].id
        for option in options:
            if normalise(option.title) == words:
                return option.id
        return ""

    def choose(self, payload: str) -> None:
        if payload.startswith("sys:lang:"):
            self.set_language(payload.removeprefix("sys:lang:"))
        elif payload.startswith("sys:biz:"):
            self.set_business(payload.removeprefix("sys:biz:"))
        elif payload in ("sys:yes", "sys:no"):
            self.confirm(payload == "sys:yes")
        elif payload.startswith("sys:module:"):
            self.start_module(payload.removeprefix("sys:module:"))
        elif payload == "sys:next":
            self.start_module(lessons.next_module(self))
        elif payload == "sys:checkup":
            checkup.offer(self)
        elif payload == "sys:checkup:start":
            checkup.start(self)
        elif payload in ("sys:checkup:continue", "sys:checkup:submit"):
            checkup.leave_answered(self, submit=payload == "sys:checkup:submit")
        elif payload.startswith(menu.PAGE_PREFIX):
            self.show_menu(int(payload.removeprefix(menu.PAGE_PREFIX)))
        elif payload.startswith("sys:revisit:"):
            revisit.choose(self, payload)
        elif payload.startswith("k:"):
            checkup.answer(self, payload)
        elif payload.startswith("r:"):
            review.answer(self, payload)
        elif payload == "sys:menu":
            self.show_menu()
        elif payload.startswith(reminders.PAYLOAD_PREFIX):
            reminders.choose(self, payload)
        elif payload.startswith(open_days.ENTRY_PREFIX):
            open_days.show_invitation(self, payload)
        elif payload.startswith(handover.PAYLOAD_PREFIX):
            handover.choose(self, payload)
        else:
            _, flow_id, step_id, trigger = payload.split(":", 3)
            if reminders.is_later(self, trigger):
                reminders.later(self, flow_id, step_id)
            lessons.advance(self, flow_id, step_id, trigger)

    def set_language(self, lang: str) -> None:
        first_time = not self.progress.lang_chosen
        self.progress = self.progress.with_changes(lang=lang, lang_chosen=True, pending=Pending.NONE,
                                                   lang_chosen_at_ms=self.now_ms)
        self.say(self.text("language_set"))
        if first_time and self.course.business_types and not self.progress.business:
            self.progress = self.progress.with_changes(pending=Pending.BUSINESS)
            self.prompt()
        elif first_time and not checkup.running(self):
            self.first_screen()
        elif self.current_step() is None and not checkup.running(self):
            self.show_menu()
        else:
            self.prompt()  # back to the step, or to the running check-up's question

    def set_business(self, business: str) -> None:
        self.progress = self.progress.with_changes(business=business, pending=Pending.NONE)
        self.say(self.text("business_set"))
        if self.current_step() is None and not checkup.running(self):
            self.first_screen()
        else:
            self.prompt()

    def confirm(self, yes: bool) -> None:
        asked, self.progress = self.progress.pending, self.progress.with_changes(pending=Pending.NONE)
        if asked == Pending.CONFIRM_UNLINK:
            linking.confirm_unlink(self, yes)
        elif asked == Pending.CONFIRM_ERASE:
            privacy.confirm_erase(self, yes)
        elif asked == Pending.CONFIRM_STOP and yes:
            global_words.stop_now(self, how="typed stop")
        elif asked == Pending.CONFIRM_STOP:
            self.say(self.text("stop_cancelled"))
            self.prompt()
        elif yes:
            self.progress = self.progress.with_changes(flow="", flow_version=0, step="", answers={},
                                                       module_scores={}, modules_done=[], revisiting="")
            self.say(self.text("restarted"))
            if checkup.running(self):
                checkup.abandon(self)
                self.cancel_timers = True
                self.say(self.text("checkup_abandoned"))
            self.show_menu()
        else:
            self.say(self.text("restart_cancelled"))
            self.prompt()
