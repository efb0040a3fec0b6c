"""Words that work anywhere in the conversation, in Italian and English. No I/O.

They are matched after ``bot.engine.normalise`` (case, accents and punctuation ignored), before the
options on screen, so "AIUTO!" or "Menù" work in the middle of a quiz or a check-up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from bot.progress import Pending

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


def menu(turn: Turn) -> None:
    turn.show_menu()


def help_(turn: Turn) -> None:
    turn.say(turn.text("help"))
    turn.prompt()


def progress(turn: Turn) -> None:
    flow = turn.flow()
    p = turn.p
    where = flow.title.get(p.lang) if flow and p.flow not in p.modules_done else ""
    score = sum(scores[0] for scores in p.module_scores.values())
    max_score = sum(f.max_score for f in turn.course.flows.values())
    turn.say(turn.text("progress", done=len(p.modules_done), total=len(turn.course.modules), score=score,
                       max_score=max_score, where=where or turn.text("nowhere")))
    turn.prompt()


def stop(turn: Turn) -> None:
    """Opting out asks to confirm once (bot.engine.Turn.confirm); nothing proactive follows a yes."""
    turn.p = turn.p.with_changes(pending=Pending.CONFIRM_STOP)
    turn.prompt()


def restart(turn: Turn) -> None:
    turn.p = turn.p.with_changes(pending=Pending.CONFIRM_RESTART)
    turn.prompt()


def language(turn: Turn) -> None:
    turn.p = turn.p.with_changes(pending=Pending.LANGUAGE)
    turn.prompt()


def resume(turn: Turn, quiet: bool = False) -> None:
    """Back to where the learner was; writing "riprendi" also undoes an opt-out."""
    turn.p = turn.p.with_changes(pending=Pending.NONE, opted_out=False)
    if not quiet:
        turn.say(turn.text("resume"))
    turn.prompt()


HANDLERS: dict[str, Callable[[Turn], None]] = {
    "menu": menu, "help": help_, "progress": progress, "stop": stop, "restart": restart,
    "language": language, "resume": resume,
}
