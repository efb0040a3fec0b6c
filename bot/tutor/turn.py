"""The turn: one message's worth of work, and the context every feature writes into. No I/O.

A ``Turn`` holds the learner's progress as it changes, the replies gathered so far, the clock events
to schedule and the certificates issued; it fills texts and says things. It imports no feature: the
ways on — show where the learner is, the menu, a step, a module — are the engine's, declared here as
hooks (``bot.tutor.engine.Conversation`` implements them). Features (check-up, review, revisit,
menu, graduation, global words) take a ``Turn``, so they depend on this module and the engine on
them, and nothing points back up.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import replace
from typing import Protocol

from bot.certificates.model import Certificate
from bot.flows.machine import FlowMachine
from bot.flows.spec import Course, Flow, Step
from bot.model.replies import Media, Option, Reply
from bot.proactive.policy import Policy
from bot.tutor.progress import Progress

NOT_UNDERSTOOD_PAUSE_MS = 30_000  # at most one "non ho capito" (or stale-button note) per learner per 30 s


class CourseSource(Protocol):
    """The course a turn runs on: the live release plus every module version a learner may be on."""

    course: Course
    public_base_url: str  # where certificates are served (PUBLIC_BASE_URL)
    policy: Policy  # the rules of writing first (bot.proactive.policy), from the settings

    def flow_for(self, flow_id: str, version: int) -> Flow | None: ...

    def machine_for(self, flow: Flow) -> FlowMachine: ...


class Turn(ABC):
    """One message's worth of work: the learner's progress being changed and the replies gathered."""

    def __init__(self, source: CourseSource, progress: Progress):
        self.source = source
        self.course = source.course
        self.progress = progress
        self.replies: list[Reply] = []
        self.timers: list[tuple[int, str]] = []  # (due ms, payload): clock events to schedule
        self.certificates: list[Certificate] = []
        self.cancel_timers = False  # drop every pending clock event first (the learner opted out)
        self.drop_proactive = False  # drop proactive messages still waiting in the outbox (the learner opted out)
        self.checkup_finished = False  # a check-up attempt ended in this turn: the engine follows up
        self.module_finished = False  # a module ended in this turn: the engine may offer reminders
        self.elsewhere: list[tuple[str, Reply]] = []  # (channel, reply): said in another linked conversation
        self.link_code = ""  # a link code offered in this turn: the dispatcher stores it (bot.tutor.linking)
        self.unlink = False  # the learner confirmed "scollega": the dispatcher splits the channels after the commit
        self.privacy_action = ""  # "export" | "erase": the dispatcher does it (bot.tutor.privacy)
        self.export_token = ""  # where the export is served (bot.tutor.privacy)

    @property
    def now_ms(self) -> int:
        """The time of this turn (the dispatcher stamps it on the progress; the engine reads no clock)."""
        return self.progress.updated_at_ms

    # -- texts and replies ---------------------------------------------------------------------
    def text(self, key: str, **values: object) -> str:
        return self.fill(self.course.text(key, self.progress.lang), **values)

    def fill(self, template: str, **values: object) -> str:
        contact = self.source.policy.support_contact or self.course.support_email  # SUPPORT_CONTACT, else course.yaml
        defaults = {"name": self.progress.name, "support_email": contact,
                    "business": self.course.business_label(self.progress.business, self.progress.lang)}
        return template.format_map({**defaults, **values})

    def say(self, text: str, options: list[Option] | None = None, media: Media | None = None, *,
            ephemeral: bool = False) -> None:
        self.replies.append(Reply(text=text, options=tuple(options or ()), media=media, lang=self.progress.lang,
                                  choose_label=self.text("label_choose"), ephemeral=ephemeral))

    def say_in(self, channel: str, text: str) -> None:
        """Say ``text`` in the learner's conversation on ``channel`` (another linked channel), not this one."""
        reply = Reply(text=text, lang=self.progress.lang, choose_label=self.text("label_choose"))
        self.elsewhere.append((channel, reply))

    def ephemeral_from(self, start: int) -> None:
        """Mark the replies said since index ``start`` as ephemeral (they only show where we are)."""
        self.replies[start:] = [replace(reply, ephemeral=True) for reply in self.replies[start:]]

    def not_understood(self, key: str = "not_understood") -> None:
        """Say ``key`` and show where we are — unless a note like it went out moments ago."""
        if self.now_ms - self.progress.not_understood_at_ms < NOT_UNDERSTOOD_PAUSE_MS:
            return  # the last note and prompt are on the learner's screen: silence, not a flood
        self.progress = self.progress.with_changes(not_understood_at_ms=self.now_ms)
        self.say(self.text(key), ephemeral=True)
        self.prompt()

    # -- where the learner is -------------------------------------------------------------------
    def flow(self) -> Flow | None:
        """The module version the learner is in, if any."""
        progress = self.progress
        return self.source.flow_for(progress.flow, progress.flow_version) if progress.flow else None

    def current_step(self) -> Step | None:
        flow = self.flow()
        return flow.steps.get(self.progress.step) if flow else None

    # -- the ways on: the engine's (bot.tutor.engine.Conversation) ------------------------------
    @abstractmethod
    def options(self) -> list[Option]:
        """The options the learner sees now, in the order shown (typed numbers map to these)."""

    @abstractmethod
    def prompt(self) -> None:
        """Show again where the learner is (ephemeral): the question, the choices, the menu."""

    @abstractmethod
    def show_menu(self, page: int = 0) -> None:
        """The course menu (or, during a running check-up, whether to hand it in first)."""

    @abstractmethod
    def show_step(self, step: Step, *, prompt_only: bool = False) -> None:
        """Say a step of the current module, with its options."""

    @abstractmethod
    def enter(self, step: Step) -> None:
        """Move to ``step`` of the current module, and on through steps that need no input."""

    @abstractmethod
    def start_module(self, flow_id: str) -> None:
        """Open a module: resume it, revisit it, or start it (after a due review)."""
