"""The learner's data under their control, inside the chat: the notice, the export, the erasure. No I/O.

* The first message links the privacy notice (``{public_base_url}/privacy``: the web app serves it, or
  redirects to ``PRIVACY_NOTICE_URL``) and records that it was shown: what, when, on which channel
  (``progress.notices``, the opt-in evidence); opting in to reminders is recorded the same way.
* ``i miei dati``/``my data``: a JSON document of everything stored about the learner, served once at an
  unguessable, short-lived URL (``/data/<token>.json``, 256 random bits); the dispatcher builds it
  (``bot.privacy``) and stores it before the reply leaves, like a link code.
* ``cancella i miei dati``/``delete my data``: after a yes, the worker erases every key that names the
  learner (``bot.privacy.erase_learner``), right after this turn's goodbye has been sent.
"""

from __future__ import annotations

import secrets

from bot.model.replies import Media, MediaKind
from bot.tutor.progress import Pending
from bot.tutor.progress_parts import NOTICES_MAX, NoticeShown
from bot.tutor.turn import Turn

EXPORT_FILENAME = "bottega-i-miei-dati.json"


def notice_url(turn: Turn) -> str:
    return f"{turn.source.public_base_url.rstrip('/')}/privacy"


def record_notice(turn: Turn, what: str, version: str) -> None:
    p = turn.progress
    entry = NoticeShown(what=what, version=version, at_ms=turn.now_ms, channel=p.channel)
    turn.progress = p.with_changes(notices=(*p.notices, entry)[-NOTICES_MAX:])


def show_notice(turn: Turn) -> None:
    """The privacy notice, linked in the first message, and the record that it was shown."""
    url = notice_url(turn)
    turn.say(turn.text("privacy_notice", url=url))
    record_notice(turn, "privacy_notice", url)


def export(turn: Turn, *, typed: bool) -> None:
    """``i miei dati``: everything stored about the learner, as a JSON file."""
    token = secrets.token_urlsafe(32)
    turn.privacy_action, turn.export_token = "export", token
    url = f"{turn.source.public_base_url.rstrip('/')}/data/{token}.json"
    turn.say(turn.text("my_data_ready"), media=Media(kind=MediaKind.DOCUMENT, url=url, filename=EXPORT_FILENAME,
                                                     caption=turn.text("my_data_caption")))
    turn.prompt()


def erase(turn: Turn, *, typed: bool) -> None:
    """``cancella i miei dati``: asked once (bot.tutor.engine.Conversation.confirm) -> ``confirm_erase``."""
    turn.progress = turn.progress.with_changes(pending=Pending.CONFIRM_ERASE)
    turn.prompt()


def confirm_erase(turn: Turn, yes: bool) -> None:
    if not yes:
        turn.say(turn.text("erase_cancelled"))
        turn.prompt()
        return
    turn.privacy_action = "erase"
    turn.cancel_timers = True
    turn.say(turn.text("erased"))
