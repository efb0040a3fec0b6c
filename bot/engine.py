"""The tutor's brain: ``Engine.step(progress, event) -> Outcome(progress, replies)``. No I/O.

What a learner's message does, in order:
1. a new learner is welcomed (Bottega says it is an automated tutor) and asked for a language;
2. global words (menu, aiuto/help, progressi/progress, stop/basta, riprendi/resume, lingua/language,
   ricomincia/restart) work anywhere, in both languages, ignoring case, accents and punctuation —
   typed, or tapped on a template's quick-reply button (a tapped Stop opts out at once);
3. otherwise the input is matched against the options on screen (button id, label, or number) and
   fired on the flow's state machine; an old button or an unknown input gets a polite re-prompt.
A clock event (TIMER) may move the learner on but never writes to one who opted out (``bot.consent``).

No reply floods: re-prompts, the menu and help are ``ephemeral`` (a later turn's replies supersede
them in the outbox), and "non ho capito" / "old button" / "can't read that" are said at most once per
``NOT_UNDERSTOOD_PAUSE_MS``; within the pause such input gets no answer (the last one is on screen).
Per-message work is independent of the flow's size: the machines are built once, here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from bot import checkup, consent, global_words, graduation, menu, review, revisit
from bot.certificates import Certificate
from bot.events import EventKind, InboundEvent
from bot.flows.conditions import LearnerView
from bot.flows.machine import AUTO, FlowMachine, UnknownTrigger
from bot.flows.spec import Course, Flow, Step
from bot.progress import Pending, Progress
from bot.replies import Media, MediaKind, Option, Reply
from bot.typed_text import normalise, option_number

MAX_AUTO_STEPS = 50  # guard against a cycle of steps that move on by themselves
NOT_UNDERSTOOD_PAUSE_MS = 30_000  # at most one "non ho capito" (or stale-button note) per learner per 30 s
_UNREADABLE_TEXTS = {"edit": "edit_reply", "order": "order_reply"}



@dataclass(frozen=True, kw_only=True, slots=True)
class Outcome:
    progress: Progress
    replies: tuple[Reply, ...]
    timers: tuple[tuple[int, str], ...] = ()  # (due ms, payload): clock events to schedule
    certificates: tuple[Certificate, ...] = ()  # certificates issued in this turn, to be stored
    cancel_timers: bool = False  # drop every pending clock event first (the learner opted out)


OUR_PAYLOADS = ("sys:", "c:", "k:", "r:")  # the prefixes of every option id Bottega renders


class Engine:
    """The live course plus every older module version a learner may still be on.

    Machines are built here, once per (module, version); ``machines`` lets a rebuilt engine reuse the
    ones an earlier engine built (a (module, version) pair never changes content once published).
    """

    def __init__(self, course: Course, *, older: Iterable[Flow] = (),
                 machines: Mapping[tuple[str, int], FlowMachine] | None = None, public_base_url: str = ""):
        self.course = course
        self.public_base_url = public_base_url  # where certificates are served (PUBLIC_BASE_URL)
        self.flows: dict[tuple[str, int], Flow] = {(f.id, f.version): f for f in older}
        self.flows.update({(f.id, f.version): f for f in course.flows.values()})
        built = machines or {}
        self.machines = {key: built.get(key) or FlowMachine(flow) for key, flow in self.flows.items()}

    def flow_for(self, flow_id: str, version: int) -> Flow | None:
        """The version a learner is on; the live one if that version is unknown here (never published)."""
        return self.flows.get((flow_id, version)) or self.course.flows.get(flow_id)

    def machine_for(self, flow: Flow) -> FlowMachine:
        return self.machines[(flow.id, flow.version)]

    def step(self, progress: Progress, event: InboundEvent) -> Outcome:
        turn = Turn(self, progress)
        if event.kind is EventKind.TIMER:
            if not progress.is_new:
                checkup.on_timer(turn, event.payload)
            if not consent.may_message_first(progress):
                turn.replies.clear()  # the clock may move state on; it never writes to an opted-out learner
        elif progress.is_new:
            turn.welcome()
        elif event.kind is EventKind.OPENED:
            pass  # a known learner opened the chat again: nothing to say until they write
        elif event.kind is EventKind.MEDIA:
            turn.not_understood("media_reply")
        elif event.kind is EventKind.UNREADABLE:
            turn.not_understood(_UNREADABLE_TEXTS.get(event.detail, "unreadable_reply"))
        else:
            turn.handle(event)
        return Outcome(progress=turn.p, replies=tuple(turn.replies), timers=tuple(turn.timers),
                       certificates=tuple(turn.certificates), cancel_timers=turn.cancel_timers)


class Turn:
    """One message's worth of work: the progress being changed and the replies gathered."""

    def __init__(self, engine: Engine, progress: Progress):
        self.engine = engine
        self.course = engine.course
        self.p = progress
        self.replies: list[Reply] = []
        self.timers: list[tuple[int, str]] = []
        self.certificates: list[Certificate] = []
        self.cancel_timers = False

    @property
    def now_ms(self) -> int:
        """The time of this turn (the dispatcher stamps it on the progress; the engine reads no clock)."""
        return self.p.updated_at_ms

    # -- helpers -------------------------------------------------------------------------------
    def text(self, key: str, **values: object) -> str:
        return self.fill(self.course.text(key, self.p.lang), **values)

    def fill(self, template: str, **values: object) -> str:
        defaults = {"name": self.p.name, "support_email": self.course.support_email,
                    "business": self.course.business_label(self.p.business, self.p.lang)}
        return template.format_map({**defaults, **values})

    def say(self, text: str, options: list[Option] | None = None, media: Media | None = None, *,
            ephemeral: bool = False) -> None:
        self.replies.append(Reply(text=text, options=tuple(options or ()), media=media, lang=self.p.lang,
                                  choose_label=self.text("label_choose"), ephemeral=ephemeral))

    def ephemeral_from(self, start: int) -> None:
        """Mark the replies said since index ``start`` as ephemeral (they only show where we are)."""
        self.replies[start:] = [replace(reply, ephemeral=True) for reply in self.replies[start:]]

    def not_understood(self, key: str = "not_understood") -> None:
        """Say ``key`` and show where we are — unless a note like it went out moments ago."""
        if self.now_ms - self.p.not_understood_at_ms < NOT_UNDERSTOOD_PAUSE_MS:
            return  # the last note and prompt are on the learner's screen: silence, not a flood
        self.p = self.p.with_changes(not_understood_at_ms=self.now_ms)
        self.say(self.text(key), ephemeral=True)
        self.prompt()

    def flow(self) -> Flow | None:
        return self.engine.flow_for(self.p.flow, self.p.flow_version) if self.p.flow else None

    def current_step(self) -> Step | None:
        flow = self.flow()
        return flow.steps.get(self.p.step) if flow else None

    # -- what is on screen -----------------------------------------------------------------------
    def options(self) -> list[Option]:
        """The options the learner sees now, in the order they are shown (numbers map to these)."""
        pending = self.p.pending
        if pending == Pending.LANGUAGE:
            return [Option(id="sys:lang:it", title=self.text("label_italian")),
                    Option(id="sys:lang:en", title=self.text("label_english"))]
        if pending == Pending.BUSINESS:
            return [Option(id=f"sys:biz:{kind.id}", title=kind.label.get(self.p.lang))
                    for kind in self.course.business_types]
        if pending in (Pending.CONFIRM_STOP, Pending.CONFIRM_RESTART):
            return [Option(id="sys:yes", title=self.text("label_yes")),
                    Option(id="sys:no", title=self.text("label_no"))]
        if pending == Pending.CHECKUP_CONFIRM:
            return checkup.confirm_options(self)
        if pending == Pending.CHECKUP_LEAVE:
            return checkup.leave_options(self)
        if pending in (Pending.NONE, Pending.CHECKUP) and checkup.running(self):
            return checkup.question_options(self)
        if pending == Pending.REVISIT_QUIZ:
            return revisit.options(self)
        if pending == Pending.REVIEW:
            return review.options(self)
        if pending in (Pending.CERTIFICATE_NAME, Pending.CERTIFICATE_BUSINESS):
            return []
        step = self.current_step()
        if pending == Pending.MENU or step is None:
            return menu.options(self)
        flow = self.flow()
        assert flow is not None
        if step.quiz:
            return [Option(id=f"c:{flow.id}:{step.id}:{o.id}", title=o.label.get(self.p.lang))
                    for o in step.quiz.options]
        if step.choices:
            return [Option(id=f"c:{flow.id}:{step.id}:{c.id}", title=c.label.get(self.p.lang))
                    for c in step.choices]
        if step.end:
            return self.after_module_options()
        return []

    def after_module_options(self) -> list[Option]:
        if self.next_module():
            return [Option(id="sys:next", title=self.text("label_next_module")),
                    Option(id="sys:menu", title=self.text("label_menu"))]
        if self.course.checkup:
            return [Option(id="sys:checkup", title=self.course.checkup.short_title.get(self.p.lang)),
                    Option(id="sys:menu", title=self.text("label_menu"))]
        return [Option(id="sys:menu", title=self.text("label_menu"))]

    def next_module(self) -> str:
        for flow_id in self.course.modules:
            if flow_id not in self.p.modules_done and flow_id != self.p.flow:
                return flow_id
        return ""

    # -- showing ---------------------------------------------------------------------------------
    def prompt(self) -> None:
        """Show again where the learner is: the current question, choices, menu or confirmation."""
        start = len(self.replies)
        self._show_where()
        self.ephemeral_from(start)

    def _show_where(self) -> None:
        pending = self.p.pending
        if pending == Pending.LANGUAGE:
            self.say(self.text("choose_language"), self.options())
        elif pending == Pending.BUSINESS:
            self.say(self.text("choose_business"), self.options())
        elif pending == Pending.CONFIRM_STOP:
            self.say(self.text("stop_confirm"), self.options())
        elif pending == Pending.CONFIRM_RESTART:
            self.say(self.text("restart_confirm"), self.options())
        elif pending == Pending.CHECKUP_CONFIRM:
            checkup.offer(self)
        elif pending == Pending.CHECKUP_LEAVE:
            checkup.ask_leave(self)
        elif pending in (Pending.NONE, Pending.CHECKUP) and checkup.running(self):
            checkup.show_question(self)
        elif pending == Pending.REVISIT_QUIZ:
            revisit.offer(self)
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
        """The menu — except during a running check-up, where it asks first whether to hand it in."""
        if checkup.running(self):
            checkup.ask_leave(self)
        else:
            menu.show(self, page)

    def show_step(self, step: Step, *, prompt_only: bool = False) -> None:
        flow = self.flow()
        assert flow is not None
        lang = self.p.lang
        values = {"score": self.p.flow_score(flow.id), "max_score": flow.max_score,
                  "module": flow.title.get(lang)}
        messages = [self.fill(say.get(lang, self.p.business), **values) for say in step.say]
        if step.quiz:
            messages.append(self.fill(step.quiz.question.get(lang), **values))
        if prompt_only and len(messages) > 1:
            messages = messages[-1:]
        media = None
        if step.media and not prompt_only:
            caption = step.media.caption.get(lang) if step.media.caption else ""
            media = Media(kind=MediaKind(step.media.kind), url=step.media.url, caption=caption)
        options = self.options()
        for index, message in enumerate(messages):
            last = index == len(messages) - 1
            self.say(message, options if last else None, media if index == 0 else None)

    # -- handling --------------------------------------------------------------------------------
    def welcome(self) -> None:
        self.say(self.text("welcome"))
        self.p = self.p.with_changes(pending=Pending.LANGUAGE)
        self.say(self.text("choose_language"), self.options())

    def handle(self, event: InboundEvent) -> None:
        payload = event.payload if event.kind is EventKind.CHOICE else ""
        words = normalise(event.text) if event.kind is EventKind.TEXT else ""
        if words in global_words.WORDS:
            global_words.HANDLERS[global_words.WORDS[words]](self, typed=True)
            return
        if self.p.pending in (Pending.CERTIFICATE_NAME, Pending.CERTIFICATE_BUSINESS) and event.text.strip():
            graduation.field_typed(self, event.text.strip())
            return
        options = self.options()
        if not payload and words:
            payload = self.match_text(words, options)
        if not payload:
            self.not_understood()
        elif payload in {o.id for o in options}:
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

    def navigation(self, payload: str) -> bool:
        """A tap that goes somewhere rather than answers something: it stays valid after the screen moved on
        (an action plan's module button, an older menu page). Answers (``c:``, ``k:``, ``r:``) never do."""
        if payload.startswith("sys:module:"):
            return payload.removeprefix("sys:module:") in self.course.flows
        return payload in ("sys:menu", "sys:checkup") or payload.startswith(menu.PAGE_PREFIX)

    def foreign_payload(self, event: InboundEvent) -> None:
        """A tap we did not render: a template's quick reply ("Stop", "Riprendi"), a referral, Get Started.

        A global word in its payload or label works as if tapped (a tapped Stop opts out at once: a
        tap is deliberate); anything else brings the learner back to where they were, quietly. A tap
        never undoes an opt-out: only a written message does (``bot.consent``).
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
            self.start_module(self.next_module())
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
        else:
            _, flow_id, step_id, trigger = payload.split(":", 3)
            self.advance(flow_id, step_id, trigger)

    def set_language(self, lang: str) -> None:
        first_time = not self.p.lang_chosen
        self.p = self.p.with_changes(lang=lang, lang_chosen=True, pending=Pending.NONE)
        self.say(self.text("language_set"))
        if first_time and self.course.business_types and not self.p.business:
            self.p = self.p.with_changes(pending=Pending.BUSINESS)
            self.prompt()
        elif (first_time or self.current_step() is None) and not checkup.running(self):
            self.show_menu()
        else:
            self.prompt()  # back to the step, or to the running check-up's question

    def set_business(self, business: str) -> None:
        self.p = self.p.with_changes(business=business, pending=Pending.NONE)
        self.say(self.text("business_set"))
        if self.current_step() is None and not checkup.running(self):
            self.show_menu()
        else:
            self.prompt()

    def view(self, flow: Flow) -> LearnerView:
        return LearnerView(score=self.p.flow_score(flow.id), answers=self.p.answers.get(flow.id, {}),
                           business=self.p.business, variables=self.p.variables)

    def confirm(self, yes: bool) -> None:
        asked, self.p = self.p.pending, self.p.with_changes(pending=Pending.NONE)
        if asked == Pending.CONFIRM_STOP and yes:
            global_words.stop_now(self, how="typed stop")
        elif asked == Pending.CONFIRM_STOP:
            self.say(self.text("stop_cancelled"))
            self.prompt()
        elif yes:
            self.p = self.p.with_changes(flow="", flow_version=0, step="", answers={}, module_scores={},
                                         modules_done=[], revisiting="")
            self.say(self.text("restarted"))
            if checkup.running(self):
                checkup.abandon(self)
                self.cancel_timers = True
                self.say(self.text("checkup_abandoned"))
            self.show_menu()
        else:
            self.say(self.text("restart_cancelled"))
            self.prompt()

    def start_module(self, flow_id: str) -> None:
        flow = self.course.flows.get(flow_id)
        if flow is None:
            self.say(self.text("course_done"))
            self.show_menu()
            return
        step = self.current_step()
        if self.p.flow == flow_id and step is not None and not step.end:
            self.p = self.p.with_changes(pending=Pending.NONE)
            self.say(self.text("resume"))
            self.show_step(step)
            return
        if flow_id in self.p.modules_done:
            revisit.start(self, flow)
            return
        if review.due_before(self, flow_id):
            return
        answers = {**self.p.answers, flow_id: {}}
        scores = {**self.p.module_scores, flow_id: [0, flow.max_score]}
        self.p = self.p.with_changes(flow=flow_id, flow_version=flow.version, step=flow.start,
                                     pending=Pending.NONE, answers=answers, module_scores=scores, revisiting="")
        self.enter(flow.steps[flow.start])

    def advance(self, flow_id: str, step_id: str, trigger: str) -> None:
        flow = self.flow()
        assert flow is not None and flow.id == flow_id  # options() only offers the current module's ids
        machine = self.engine.machine_for(flow)
        try:
            fired = machine.fire(step_id, trigger, self.view(flow))
        except UnknownTrigger:
            self.say(self.text("stale_button"))
            self.prompt()
            return
        self.p = self.p.with_changes(pending=Pending.NONE, step=fired.state)
        if fired.sets:
            self.p = self.p.with_changes(variables={**self.p.variables, **dict(fired.sets)})
        step = flow.steps[step_id]
        if step.quiz and fired.answered:
            self.record_answer(flow, step, fired.answered.id)
            prefix = self.text("correct_prefix" if fired.answered.correct else "wrong_prefix")
            self.say(f"{prefix} {fired.answered.feedback.get(self.p.lang)}")
        self.enter(flow.steps[fired.state])

    def record_answer(self, flow: Flow, step: Step, option_id: str) -> None:
        answers = {**self.p.answers, flow.id: {**self.p.answers.get(flow.id, {}), step.id: option_id}}
        score = revisit.best_score(self, flow.id, flow.score_of(answers[flow.id]))
        self.p = self.p.with_changes(answers=answers,
                                     module_scores={**self.p.module_scores, flow.id: [score, flow.max_score]})

    def enter(self, step: Step) -> None:
        """Show ``step``, moving on through steps that need no input, and close the module at the end."""
        flow = self.flow()
        assert flow is not None
        for _ in range(MAX_AUTO_STEPS):
            flow, step = self.take_over(flow, step)
            self.p = self.p.with_changes(step=step.id)
            if step.end:
                self.finish_module(flow, step)
                return
            if revisit.holds_quiz(self, step):
                return
            self.show_step(step)
            if step.choices or step.quiz:
                return
            step = flow.steps[self.engine.machine_for(flow).fire(step.id, AUTO, self.view(flow)).state]
        self.show_menu()

    def take_over(self, flow: Flow, step: Step) -> tuple[Flow, Step]:
        """At a step boundary, move a learner on an older version to the live one.

        The live version takes over when it has the same step id, or maps the old step with
        ``migrate``; otherwise the learner goes on in the version they started.
        """
        live = self.course.flows.get(flow.id)
        if live is None or live.version == flow.version:
            return flow, step
        target = step.id if step.id in live.steps else live.migrate.get(step.id, "")
        if not target:
            return flow, step
        self.p = self.p.with_changes(flow_version=live.version)
        return live, live.steps[target]

    def finish_module(self, flow: Flow, step: Step) -> None:
        done = self.p.modules_done + ([flow.id] if flow.id not in self.p.modules_done else [])
        self.p = self.p.with_changes(modules_done=done, revisiting="")
        lang = self.p.lang
        score, max_score = self.p.flow_score(flow.id), flow.max_score
        for say in step.say:
            self.say(self.fill(say.get(lang, self.p.business), score=score, max_score=max_score,
                               module=flow.title.get(lang)))
        key = "module_done" if self.next_module() else "course_done"
        self.say(self.text(key, score=score, max_score=max_score, module=flow.title.get(lang)),
                 self.after_module_options())
