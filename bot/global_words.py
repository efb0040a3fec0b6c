"""Words that work anywhere in the conversation, in Italian and English. No I/O.

They are matched after ``bot.typed_text.normalise`` (case, accents and punctuation ignored), before the
options on screen, so "AIUTO!" or "Menù" work in the middle of a quiz or a check-up. Typed, or tapped
on a button we did not render (a template's quick reply): ``typed`` says which, because only a
written ``riprendi`` reopens the conversation after an opt-out (``bot.consent``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from bot import checkup, consent
from bot.progress import Pending
from bot.typed_text import normalise

if TYPE_CHECKING:
    from bot.engine import Turn

WORDS = {
    "menu": "menu",
    "aiuto": "help", "help": "help",
    "progressi": "progress", "progress": "progress",
    "stop": "stop", "basta": "stop", "disiscrivimi": "stop", "unsubscribe": "stop",
    "riprendi": "resume", "resume": "resume",
    "lingua": "language", "language": "language",
    "ricomincia": "restart", "restart": "restart",
}


def word_in(text: str) -> str:
    """The global word ``text`` is (a payload or a button label), or ""."""
    return WORDS.get(normalise(text), "")


def menu(turn: Turn, *, typed: bool) -> None:
    turn.show_menu()


def help_(turn: Turn, *, typed: bool) -> None:
    turn.say(turn.text("help"), ephemeral=True)
    turn.prompt()


def progress(turn: Turn, *, typed: bool) -> None:
    flow = turn.flow()
    p = turn.p
    where = flow.title.get(p.lang) if flow and p.flow not in p.modules_done else ""
    score = sum(scores[0] for scores in p.module_scores.values())
    max_score = sum(f.max_score for f in turn.course.flows.values())
    turn.say(turn.text("progress", done=len(p.modules_done), total=len(turn.course.modules), score=score,
                       max_score=max_score, where=where or turn.text("nowhere")), ephemeral=True)
    turn.prompt()


def stop(turn: Turn, *, typed: bool) -> None:
    """Typed "stop" asks to confirm once (bot.engine.Turn.confirm) -> ``stop_now``."""
    turn.p = turn.p.with_changes(pending=Pending.CONFIRM_STOP)
    turn.prompt()


def stop_now(turn: Turn, *, how: str) -> None:
    """Opt out: nothing Bottega starts reaches the learner from now on; their clock events are cancelled
    in this very commit, and a running check-up ends without counting as an attempt."""
    turn.p = consent.opt_out(turn.p, now_ms=turn.now_ms, how=how).with_changes(pending=Pending.NONE)
    turn.cancel_timers = True
    turn.say(turn.text("stopped"))
    if checkup.running(turn):
        checkup.abandon(turn)
        turn.say(turn.text("checkup_abandoned"))


def restart(turn: Turn, *, typed: bool) -> None:
    turn.p = turn.p.with_changes(pending=Pending.CONFIRM_RESTART)
    turn.prompt()


def language(turn: Turn, *, typed: bool) -> None:
    turn.p = turn.p.with_changes(pending=Pending.LANGUAGE)
    turn.prompt()


def resume(turn: Turn, *, typed: bool, quiet: bool = False) -> None:
    """Back to where the learner was; a *written* "riprendi" also undoes an opt-out (and records it)."""
    turn.p = turn.p.with_changes(pending=Pending.NONE)
    if typed and turn.p.opted_out:
        turn.p = consent.opt_in(turn.p, now_ms=turn.now_ms, how="typed riprendi")
    if not quiet:
        turn.say(turn.text("resume"), ephemeral=True)
    turn.prompt()


class _Handler(Protocol):
    def __call__(self, turn: Turn, *, typed: bool) -> None: ...


HANDLERS: dict[str, _Handler | Callable[..., None]] = {
    "menu": menu, "help": help_, "progress": progress, "stop": stop, "restart": restart,
    "language": language, "resume": resume,
}
