"""The 24-hour window as the simulator shows it, and how the next message Bottega starts would go. No I/O.

The window opens (and reopens) with every message the learner sends themselves — what
``progress.last_inbound_at_ms`` records (``bot.dispatch``) — and closes 24 hours later on every channel
(docs/platform.md §9). Inside it any message is free-form; after it, the channel's registered
``outside_window`` says what may still go: an approved template (WhatsApp), a message to the learner's
marketing-messages token if they gave one (Messenger), or nothing (Instagram). A learner who opted out
gets nothing Bottega starts (``bot.tutor.consent.may_message_first``).

``NextProactive`` is the seam for the proactive-messaging decision (reminders, broadcasts): when that
module lands it is handed to ``bot.simulator.install`` and the inspector shows its answer instead of
``next_proactive``'s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot import channels
from bot.channels.parts import OutsideWindow
from bot.tutor.consent import may_message_first
from bot.tutor.progress import Progress

SERVICE_WINDOW_MS = 24 * 3600 * 1000


@dataclass(frozen=True, kw_only=True, slots=True)
class ServiceWindow:
    last_inbound_ms: int  # 0: the learner never wrote
    now_ms: int

    @property
    def closes_ms(self) -> int:
        return self.last_inbound_ms + SERVICE_WINDOW_MS if self.last_inbound_ms else 0

    @property
    def open(self) -> bool:
        return self.now_ms < self.closes_ms

    @property
    def remaining_ms(self) -> int:
        return max(self.closes_ms - self.now_ms, 0)

    @property
    def closed_for_ms(self) -> int:
        return max(self.now_ms - self.closes_ms, 0) if self.last_inbound_ms else 0


@dataclass(frozen=True, kw_only=True, slots=True)
class Proactive:
    """How a message Bottega starts now would go: ``how`` is "free-form", "template" or "nothing"."""

    how: str
    why: str


NextProactive = Callable[[Progress, int], Proactive]  # (progress, now ms) -> how the next one would go


def service_window(progress: Progress, now_ms: int) -> ServiceWindow:
    return ServiceWindow(last_inbound_ms=progress.last_inbound_at_ms, now_ms=now_ms)


def next_proactive(progress: Progress, now_ms: int) -> Proactive:
    """The rule until the proactive-messaging module decides: consent, then the window, then the channel."""
    if not may_message_first(progress):
        return Proactive(how="nothing", why="the learner opted out: only answers to what they write")
    if service_window(progress, now_ms).open:
        return Proactive(how="free-form", why="inside the 24-hour window: any message, free")
    parts = channels.parts_for(progress.channel)
    if parts.outside_window is OutsideWindow.TEMPLATE:
        return Proactive(how="template", why=f"the window has closed: only an approved {parts.title} template")
    if parts.outside_window is OutsideWindow.OPT_IN_TOKEN:
        return Proactive(how="nothing", why=f"the window has closed: {parts.title} takes nothing more unless the "
                                            "learner gave a marketing-messages token")
    return Proactive(how="nothing", why=f"the window has closed: {parts.title} takes nothing more until the "
                                        "learner writes")
