"""Sandbox learners: the reserved learner ids the production simulator's phones talk as. No I/O.

A sandbox learner's user id is ``SANDBOX_MARK`` followed by the simulator session's ``SESSION_DIGITS``
digits, on every channel: ``wa:000012345678``, ``ms:000012345678``, ``ig:000012345678``. No real user
can have one:

* WhatsApp: ``from`` / ``wa_id`` is a phone number in international form, and no country calling code
  starts with 0 (E.164); a BSUID starts with its country's letters (``IT.1349...``);
* Messenger PSIDs and Instagram IGSIDs are Meta object ids, decimal integers never written with a
  leading zero.

So the form passes every channel's webhook parser unchanged (digits), yet never names a person. The
worker never sends a sandbox learner's messages to Meta: ``bot.delivery.sandbox`` records them for the
simulator instead; learning analytics leave them out (``bot.analytics``).
"""

from __future__ import annotations

SANDBOX_MARK = "0000"
SESSION_DIGITS = 8  # a simulator session: this many digits (``bot.simulator.session``)

__all__ = ["SANDBOX_MARK", "SESSION_DIGITS", "is_sandbox", "sandbox_user", "session_of"]


def sandbox_user(session: str) -> str:
    """The user id of session ``session``'s sandbox learner (the same on every channel)."""
    if not _valid_session(session):
        raise ValueError(f"simulator session {session!r} is not {SESSION_DIGITS} digits")
    return f"{SANDBOX_MARK}{session}"


def session_of(learner_id: str) -> str | None:
    """The simulator session of a sandbox learner (``wa:000012345678`` or a conversation address
    ``wa:000012345678@messenger``), or None when ``learner_id`` is not a sandbox learner's."""
    owner = learner_id.partition("@")[0]
    prefix, colon, user = owner.partition(":")
    if not (prefix and colon) or not user.startswith(SANDBOX_MARK):
        return None
    session = user[len(SANDBOX_MARK):]
    return session if _valid_session(session) else None


def is_sandbox(learner_id: str) -> bool:
    return session_of(learner_id) is not None


def _valid_session(session: str) -> bool:
    return len(session) == SESSION_DIGITS and session.isascii() and session.isdigit()
