"""The end of the course in the conversation: asking the names for the certificate and issuing it.

No I/O: the certificate is returned in the turn's outcome and stored by the dispatcher after the
commit (``bot.storage.certificate_store``); the PDF is drawn when its link is opened.
"""

from __future__ import annotations

from bot.certificates.model import Certificate, new_code, new_token
from bot.model.replies import Media, MediaKind, Option
from bot.tutor import checkup
from bot.tutor.progress import Pending
from bot.tutor.turn import Turn

FIELD_MAX_CHARS = 60  # what a learner types for the certificate's name and business name


def after_checkup(turn: Turn) -> None:
    """After a check-up: a certificate once every module is done and the pass mark is reached."""
    if turn.progress.certificate.code or not checkup.passed(turn) or turn.course.checkup is None:
        return
    if all(m in turn.progress.modules_done for m in turn.course.modules):
        turn.progress = turn.progress.with_changes(pending=Pending.CERTIFICATE_NAME)
        turn.say(turn.text("certificate_ask_name"))
    else:
        turn.say(turn.text("certificate_not_yet", percent=turn.course.checkup.pass_percent))


def field_typed(turn: Turn, value: str) -> None:
    """The learner typed their name, then their business name; then the certificate is issued."""
    value = value[:FIELD_MAX_CHARS]
    if turn.progress.pending == Pending.CERTIFICATE_NAME:
        turn.progress = turn.progress.with_changes(pending=Pending.CERTIFICATE_BUSINESS,
                                                   certificate=turn.progress.certificate.with_changes(name=value))
        turn.say(turn.text("certificate_ask_business"))
        return
    best = checkup.best_knowledge_percent(turn)  # what passed: the knowledge questions
    certificate = Certificate(code=new_code(), token=new_token(), learner_id=turn.progress.learner_id,
                              name=turn.progress.certificate.name, business_name=value,
                              issued_ms=turn.now_ms, score_percent=best, lang=turn.progress.lang)
    turn.certificates.append(certificate)
    turn.progress = turn.progress.with_changes(pending=Pending.NONE, certificate=turn.progress.certificate.with_changes(
        business_name=value, code=certificate.code, issued_ms=turn.now_ms))
    base = turn.source.public_base_url.rstrip("/")
    turn.say(turn.text("certificate_ready", code=certificate.code, url=f"{base}/verify/{certificate.code}"),
             [Option(id="sys:menu", title=turn.text("label_menu"))],
             Media(kind=MediaKind.DOCUMENT, url=f"{base}/certificates/{certificate.token}.pdf",
                   caption=turn.text("certificate_caption"), filename="attestato-bottega.pdf"))
