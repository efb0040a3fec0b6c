"""Words that work anywhere in the conversation, in Italian and English. No I/O.

menu, aiuto/help, progressi/progress, stop/basta, riprendi/resume, lingua/language, ricomincia/restart,
promemoria/reminders, operatore/persona/human (a person answers: ``bot.tutor.handover``).

They are matched after ``bot.tutor.typed_text.normalise`` (case, accents and punctuation ignored), before the
options on screen, so "AIUTO!" or "Menù" work in the middle of a quiz or a check-up. Typed, or tapped
on a button we did not render (a template's quick reply): ``typed`` says which, because only a
written ``riprendi`` reopens the conversation after an opt-out (``bot.tutor.consent``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from bot.tutor import checkup, consent, handover, linking, open_days, privacy, reminders
from bot.tutor.progress import Pending
from bot.tutor.turn import Turn
from bot.tutor.typed_text import normalise

WORDS = {
    "menu": "menu",
    "aiuto": "help", "help": "help",
    "progressi": "progress", "progress": "progress",
    "stop": "stop", "basta": "stop", "disiscrivimi": "stop", "unsubscribe": "stop",
    "riprendi": "resume", "resume": "resume",
    "lingua": "language", "language": "language",
    "ricomincia": "restart", "restart": "restart",
    "promemoria": "reminders", "reminders": "reminders",
    "operatore": "person", "persona": "person", "human": "person",
    "collega": "link", "link": "link",
    "scollega": "unlink", "unlink": "unlink",
    "i miei dati": "my_data", "my data": "my_data", "miei dati": "my_data",
    "cancella i miei dati": "erase", "delete my data": "erase", "cancella dati": "erase",
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
    p = turn.progress
    where = flow.title.get(p.lang) if flow and p.flow not in p.modules_done else ""
    score = sum(scores[0] for scores in p.module_scores.values())
    max_score = sum(f.max_score for f in turn.course.flows.values())
    turn.say(turn.text("progress", done=len(p.modules_done), total=len(turn.course.modules), score=score,
                       max_score=max_score, where=where or turn.text("nowhere")), ephemeral=True)
    turn.prompt()


def stop(turn: Turn, *, typed: bool) -> None:
    """Typed "stop" asks to confirm once (bot.tutor.engine.Conversation.confirm) -> ``stop_now``."""
    turn.progress = turn.progress.with_changes(pending=Pending.CONFIRM_STOP)
    turn.prompt()


def stop_now(turn: Turn, *, how: str) -> None:
    """Opt out: nothing Bottega starts reaches the learner from now on; their clock events are cancelled
    in this very commit, and a running check-up ends without counting as an attempt."""
    turn.progress = consent.opt_out(turn.progress, now_ms=turn.now_ms, how=how).with_changes(pending=Pending.NONE)
    turn.cancel_timers = True
    turn.drop_proactive = True  # a reminder already waiting in the outbox goes nowhere either
    turn.say(turn.text("stopped"))
    if checkup.running(turn):
        checkup.abandon(turn)
        turn.say(turn.text("checkup_abandoned"))


def restart(turn: Turn, *, typed: bool) -> None:
    turn.progress = turn.progress.with_changes(pending=Pending.CONFIRM_RESTART)
    turn.prompt()


def language(turn: Turn, *, typed: bool) -> None:
    turn.progress = turn.progress.with_changes(pending=Pending.LANGUAGE)
    turn.prompt()


def resume(turn: Turn, *, typed: bool, quiet: bool = False) -> None:
    """Back to where the learner was; a *written* "riprendi" also undoes an opt-out (and records it)."""
    turn.progress = turn.progress.with_changes(pending=Pending.NONE)
    if typed and turn.progress.opted_out:
        turn.progress = consent.opt_in(turn.progress, now_ms=turn.now_ms, how="typed riprendi")
        reminders.plan(turn)  # the opt-out cancelled their clock: reminders they had chosen start again
        open_days.replan(turn)  # and an Open Day they hold a seat for keeps its reminders
    if not quiet:
        turn.say(turn.text("resume"), ephemeral=True)
    turn.prompt()


def reminders_(turn: Turn, *, typed: bool) -> None:
    """When to be reminded of the lessons (``bot.tutor.reminders``); it also resumes paused reminders.
    During a running check-up the question stays on screen: its clock is running."""
    if checkup.running(turn):
        turn.prompt()
    else:
        reminders.offer(turn)


def person(turn: Turn, *, typed: bool) -> None:
    """Offer a handover to a person (``bot.tutor.handover``)."""
    handover.offer(turn, reason="asked")


class _Handler(Protocol):
    def __call__(self, turn: Turn, *, typed: bool) -> None: ...


HANDLERS: dict[str, _Handler | Callable[..., None]] = {
    "menu": menu, "help": help_, "progress": progress, "stop": stop, "restart": restart,
    "language": language, "resume": resume, "reminders": reminders_,
    "link": linking.offer, "unlink": linking.unlink, "my_data": privacy.export, "erase": privacy.erase,
    "person": person,
}
