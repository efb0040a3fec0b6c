"""Where and when a proactive message goes: the one decision every proactive sender asks. No I/O.

``place(reach, moment_ms=..., now_ms=..., policy=..., template=...)`` looks at a learner (``Reach``: their
channel, consent, the 24-hour window their last message opened, their proactive record) and at the moment
the message is meant for, and answers with a ``Placement``:

* ``FREE_FORM``: the window is still open at that moment: a normal message, then.
* ``MOVED``: the window closes before the moment, but not more than ``shift_max_ms`` before it: the
  message goes at the window's last allowed minute (its end less ``margin_ms``), inside it.
* ``TEMPLATE``: the window is closed at the moment (WhatsApp): the approved template, then.
* ``OPT_IN_TOKEN``: the window is closed (Messenger) but the learner gave a marketing-messages token.
* ``WAIT``: nothing now; ask again at ``at_ms`` (the moment, or the moved time).
* ``NONE``: not at all (``reason`` says why: opted out, quiet hours, the daily cap, no way outside the
  window, too late...). The caller skips to its next moment.

A send is only ever answered for "now": ``place`` is asked again when a ``WAIT`` falls due (a
server-side timer), so a learner who writes meanwhile (the window moves) is seen. Every send answer
respects the quiet hours and the daily cap in the learner's time zone, and carries its category and its
cost from the price table (``Policy.prices``; 0 on channels Meta does not bill per message).

A Click-to-WhatsApp ad's free entry point (``Reach.free_entry_until_ms``, 72 h from the learner's message
that came from the ad) counts as an open window until it ends, and what goes in it is billed as
``free_entry_point`` (nothing, unless the price table says otherwise).

What a channel allows outside the window is asked of its registration (``OutsideWindow``), never of its
name. Marketing templates and tokens also honour the learner's marketing stop (``user_preferences``,
131050, Messenger's STOP) and the per-user marketing limit (131049: not before ``marketing_retry_ms``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from bot import channels
from bot.channels.parts import OutsideWindow
from bot.flows.spec import TemplateSpec
from bot.proactive.policy import Policy
from bot.proactive.record import ProactiveRecord


class How(str, Enum):
    FREE_FORM = "free_form"
    MOVED = "moved"
    TEMPLATE = "template"
    OPT_IN_TOKEN = "opt_in_token"
    WAIT = "wait"
    NONE = "none"

    @property
    def sends(self) -> bool:
        return self in (How.FREE_FORM, How.MOVED, How.TEMPLATE, How.OPT_IN_TOKEN)


@dataclass(frozen=True, kw_only=True, slots=True)
class Reach:
    """A learner as the rules of writing first see them (built from their progress by the tutor)."""

    channel: str
    opted_out: bool  # bot.tutor.consent: nothing Bottega starts may reach them
    last_inbound_ms: int  # their last own message: it opened the 24-hour window
    record: ProactiveRecord
    # a Click-to-WhatsApp ad's free entry point ends (bot.tutor.entry): free-form and free until then
    free_entry_until_ms: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class Placement:
    how: How
    at_ms: int  # when: now for a send, the time to ask again for WAIT
    reason: str = ""
    category: str = ""  # what Meta bills it as: service | utility | marketing...
    cost: float = 0.0
    currency: str = ""
    template: TemplateSpec | None = None  # for TEMPLATE

    @property
    def sends(self) -> bool:
        return self.how.sends


def window_end(reach: Reach, policy: Policy) -> int:
    """The last moment a free-form message may go (the window's end less the margin); 0: no window open.

    A Click-to-WhatsApp ad's free entry point (72 h from the learner's message) keeps it open that long.
    """
    if not reach.last_inbound_ms or reach.record.window_refused_ms >= reach.last_inbound_ms:
        return 0
    free_entry_end = reach.free_entry_until_ms - policy.margin_ms if reach.free_entry_until_ms else 0
    return max(reach.last_inbound_ms + policy.window_ms - policy.margin_ms, free_entry_end)


def first_look(moment_ms: int, now_ms: int, policy: Policy) -> int:
    """When to first ask ``place`` about a message meant for ``moment_ms``: early enough to move it."""
    return max(now_ms, moment_ms - policy.shift_max_ms)


def place(reach: Reach, *, moment_ms: int, now_ms: int, policy: Policy, template: TemplateSpec | None = None,
          capped: bool = True) -> Placement:
    """The decision for a message meant for ``moment_ms``, asked at ``now_ms`` (see the module docstring).

    ``template``: what WhatsApp would send outside the window (None: nothing can go there). ``capped``:
    the message counts toward the daily cap (a reminder does; an answer the learner awaits would not).
    """
    if reach.opted_out:
        return Placement(how=How.NONE, at_ms=now_ms, reason="opted out")
    if now_ms > moment_ms + policy.late_ms:
        return Placement(how=How.NONE, at_ms=now_ms, reason="too late")
    decided = _decide(reach, moment_ms, now_ms, policy, template)
    if not decided.sends:
        return decided
    zone = reach.record.time_zone
    if policy.quiet(now_ms, zone):
        return Placement(how=How.NONE, at_ms=now_ms, reason="quiet hours")
    if capped and reach.record.count_on(policy.local_day(now_ms, zone)) >= policy.max_per_day:
        return Placement(how=How.NONE, at_ms=now_ms, reason="daily cap")
    return decided


def _decide(reach: Reach, moment_ms: int, now_ms: int, policy: Policy, template: TemplateSpec | None) -> Placement:
    parts = channels.parts_for(reach.channel)
    end = window_end(reach, policy)

    def priced(how: How, category: str, chosen: TemplateSpec | None = None) -> Placement:
        if now_ms < reach.free_entry_until_ms:  # a Click-to-WhatsApp ad's free entry point: everything is free
            category = "free_entry_point"
        cost = policy.prices.cost(category) if parts.billed else 0.0
        return Placement(how=how, at_ms=now_ms, category=category, cost=cost, currency=policy.prices.currency,
                         template=chosen)

    closes = end + policy.margin_ms  # when the window really closes
    if end >= moment_ms:  # the window is still open at the moment
        if now_ms < moment_ms:
            return Placement(how=How.WAIT, at_ms=moment_ms)
        if now_ms < closes:
            return priced(How.FREE_FORM, "service")
    elif end and end >= moment_ms - policy.shift_max_ms and not policy.quiet(end, reach.record.time_zone):
        if now_ms < end:
            return Placement(how=How.WAIT, at_ms=end, reason="moved inside the window")
        if now_ms < closes:
            return priced(How.MOVED, "service")
    if parts.outside_window is OutsideWindow.TEMPLATE:
        if template is None:
            return Placement(how=How.NONE, at_ms=now_ms, reason="window closed and no template for it")
        refused = _marketing_refused(reach, template.category, now_ms)
        if refused:
            return refused
        if now_ms < moment_ms:
            return Placement(how=How.WAIT, at_ms=moment_ms)
        return priced(How.TEMPLATE, template.category, template)
    if parts.outside_window is OutsideWindow.OPT_IN_TOKEN:
        record = reach.record
        if not record.optin_token or (record.optin_expires_ms and record.optin_expires_ms <= moment_ms):
            return Placement(how=How.NONE, at_ms=now_ms, reason="window closed and no marketing-messages opt-in")
        refused = _marketing_refused(reach, "marketing", now_ms)
        if refused:
            return refused
        if now_ms < moment_ms:
            return Placement(how=How.WAIT, at_ms=moment_ms)
        return priced(How.OPT_IN_TOKEN, "marketing")
    return Placement(how=How.NONE, at_ms=now_ms, reason="window closed")


def _marketing_refused(reach: Reach, category: str, now_ms: int) -> Placement | None:
    if category != "marketing":
        return None
    if reach.record.marketing_stopped:
        return Placement(how=How.NONE, at_ms=now_ms, reason="the learner stopped marketing messages")
    if reach.record.marketing_retry_ms > now_ms:
        return Placement(how=How.NONE, at_ms=now_ms, reason="per-user marketing limit (131049): a day later")
    return None
