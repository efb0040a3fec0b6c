"""The one rule every proactive sender asks: may Bottega write to this learner first? No I/O.

A learner who opted out (``stop`` + yes, or a template's Stop button) gets nothing Bottega starts:
no check-up warnings, no reminders, no broadcasts — only answers to what they write. Opting out
cancels their pending clock events in the same commit (``Outcome.cancel_timers``). Only a message the
learner *writes* (``riprendi``/``resume`` typed, not a tap or a referral) reopens the conversation.
Every change is recorded in ``progress.consent``: when, which way, and how it was asked — the
evidence a policy review or a GDPR request needs.
"""

from __future__ import annotations

from bot.tutor.progress import Progress
from bot.tutor.progress_parts import ConsentEntry

CONSENT_LOG_MAX = 20  # entries kept per learner, newest last


def may_message_first(progress: Progress) -> bool:
    """True when Bottega may send this learner something they did not just ask for."""
    return not progress.opted_out


def opt_out(progress: Progress, *, now_ms: int, how: str) -> Progress:
    """The learner stops Bottega's own messages (``how``: e.g. "typed stop", "template button")."""
    return progress.with_changes(opted_out=True, opted_out_at_ms=now_ms,
                                 consent=_logged(progress, "opted_out", how, now_ms))


def opt_in(progress: Progress, *, now_ms: int, how: str) -> Progress:
    """The learner wrote to come back: Bottega may write first again."""
    return progress.with_changes(opted_out=False, consent=_logged(progress, "opted_in", how, now_ms))


def _logged(progress: Progress, state: str, how: str, now_ms: int) -> tuple[ConsentEntry, ...]:
    entry = ConsentEntry(state=state, how=how, at_ms=now_ms, channel=progress.channel)
    return (*progress.consent, entry)[-CONSENT_LOG_MAX:]
