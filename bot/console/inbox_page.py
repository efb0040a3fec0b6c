"""The Inbox pages: the open handovers to a person, one learner's conversation, an admin's reply and the
hand-back — through ``bot.handover.Inbox``, the code `bottega inbox` runs (list, show, reply, back).

A viewer reads; replying and handing back are an editor's, each audited by ``learner_ref`` (the reply's
text stays out of the audit log). Learners are shown by name, ``learner_ref`` and their id masked, and
linked by ``learner_links`` (no phone number in a URL). Each reply form carries a request id made when the
page was drawn, so a form sent twice (a double click, a reload after a slow answer) sends one message.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from bot.console import audit
from bot.console.learner_page import mask, when
from bot.console.pages import Console, learner_of, me
from bot.console.users import Role
from bot.handover import Conversation, Inbox, InboxError, OpenHandover, age_text
from bot.model.privacy import learner_ref
from bot.tutor.handover import Route

REQUEST_ID = re.compile(r"[0-9a-f]{32}")  # uuid4().hex, as the reply form writes it
# how a reply would go now (bot.tutor.handover.reply_route), as the pages say it
ROUTE_LABELS = {Route.FREE_FORM: "window open: a normal message",
                Route.HUMAN_AGENT: "window closed: sent with Messenger's HUMAN_AGENT tag",
                Route.CLOSED: "window closed: no reply possible until the learner writes"}
REASON_LABELS = {"asked": "asked for a person", "not_understood": "Bottega did not understand them"}


@dataclass(frozen=True, kw_only=True, slots=True)
class InboxRow:
    handover: OpenHandover
    link: str  # the conversation page's URL key (bot.console.learner_links)
    shown_id: str  # masked
    age: str
    reason: str
    route: str


def add_routes(pages: Blueprint, console: Console, inbox: Inbox) -> None:
    """``/admin/inbox`` and ``/admin/inbox/<key>`` (viewer); reply and hand back (editor, audited)."""
    read, act = console.require(Role.VIEWER), console.require(Role.EDITOR)

    @pages.get("/inbox")
    @read
    def inbox_list() -> ResponseReturnValue:
        rows = [InboxRow(handover=item, link=console.links.link(item.learner_id), shown_id=mask(item.learner_id),
                         age=age_text(item.age_ms), reason=REASON_LABELS.get(item.reason, item.reason or "—"),
                         route=ROUTE_LABELS[item.route]) for item in inbox.list_open()]
        return render_template("console/inbox.html", rows=rows)

    @pages.get("/inbox/<key>")
    @read
    def inbox_conversation(key: str) -> ResponseReturnValue:
        learner_id = learner_of(console, key)
        talk = inbox.show(learner_id)
        return render_template("console/conversation.html", talk=talk, ref=learner_ref(learner_id),
                               link=console.links.link(learner_id), shown_id=mask(learner_id),
                               age=age_text(inbox.now_ms() - talk.since_ms) if talk.open else "",
                               reason=REASON_LABELS.get(talk.reason, talk.reason), route=ROUTE_LABELS[talk.route],
                               messages=_messages(talk), may_reply=talk.open and talk.route is not Route.CLOSED,
                               request_id=uuid.uuid4().hex)

    @pages.post("/inbox/<key>/reply")
    @act
    def inbox_reply(key: str) -> ResponseReturnValue:
        learner_id = learner_of(console, key)
        request_id = request.form.get("request_id", "")
        try:
            sent = inbox.reply(learner_id, request.form.get("text", ""), admin=me(console),
                               request_id=request_id if REQUEST_ID.fullmatch(request_id) else "")
        except InboxError as error:
            flash(f"Not sent: {error}.", "error")
        else:
            how = "tagged HUMAN_AGENT" if sent.tag else "inside the window"
            audit.record(console.client, me(console), "handover.reply", learner_ref(learner_id), how)
            flash(f"Reply sent ({how}): it goes out through the worker's queue.", "ok")
        return redirect(url_for("console.inbox_conversation", key=console.links.link(learner_id)), 303)

    @pages.post("/inbox/<key>/back")
    @act
    def inbox_hand_back(key: str) -> ResponseReturnValue:
        learner_id = learner_of(console, key)
        try:
            inbox.hand_back(learner_id, admin=me(console))
        except InboxError as error:
            flash(f"Nothing handed back: {error}.", "error")
            return redirect(url_for("console.inbox_conversation", key=console.links.link(learner_id)), 303)
        audit.record(console.client, me(console), "handover.hand_back", learner_ref(learner_id))
        flash(f"Learner {learner_ref(learner_id)} handed back to Bottega: the course goes on where they were, "
              "and they are told so.", "ok")
        return redirect(url_for("console.inbox_list"), 303)


def _messages(talk: Conversation) -> list[tuple[str, str, str]]:
    """(when, who, text) for each kept message, oldest first."""
    rows = []
    for message in talk.messages:
        who = {"learner": talk.name or "learner", "admin": f"admin {message.by}".strip(), "bot": "Bottega"}.get(
            message.who, message.who)
        rows.append((when(message.at_ms), f"{who} [{message.tag}]" if message.tag else who, message.text))
    return rows
