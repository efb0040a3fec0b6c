"""`bottega inbox`: the open handovers in the terminal (the admin console's Inbox runs the same ``Inbox``).

    bottega inbox                          open handovers, oldest first, with their age
    bottega inbox show LEARNER             one conversation, and where the course will resume
    bottega inbox reply LEARNER TEXT [--as NAME]   an admin's reply (inside the window; Messenger: HUMAN_AGENT)
    bottega inbox back LEARNER [--as NAME] hand the learner back to the course
    bottega inbox rescan                   rebuild the list from every learner's record

LEARNER is the learner id the list prints (``wa:393331234567``). The reply goes through the worker's
queue, like every reply: the worker must be running.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

from bot import composition
from bot.handover.inbox import Inbox, InboxError, age_text
from config.settings import Settings


def run(settings: Settings, action: str, learner_id: str = "", text: str = "", *, admin: str = "") -> int:
    client = composition.redis_client(settings)
    try:
        registry = composition.registry(settings, client)
        queue = composition.job_queue(settings)
        dispatcher = composition.dispatcher(settings, client, registry, notify=queue.deliver)
        inbox = Inbox(dispatcher, composition.proactive_policy(settings))
        return _act(inbox, action, learner_id, text, admin)
    except InboxError as error:
        print(f"bottega inbox: {error}", file=sys.stderr)
        return 2
    finally:
        client.close()


def _act(inbox: Inbox, action: str, learner_id: str, text: str, admin: str) -> int:
    if action in ("show", "reply", "back") and not learner_id:
        raise InboxError(f"`bottega inbox {action}` needs the learner id `bottega inbox` lists")
    if action == "list":
        waiting = inbox.list_open()
        if not waiting:
            print("No open handovers.")
        for item in waiting:
            answered = "answered" if item.answered else "NOT ANSWERED"
            print(f"{item.learner_id:<28} {item.channel:<10} {age_text(item.age_ms):>8}  {answered:<12} "
                  f"{item.unanswered} new  reply: {item.route.value:<11} {item.name}  “{item.last_text[:60]}”")
        return 0
    if action == "rescan":
        print(f"{inbox.rescan()} open handover(s) listed.")
        return 0
    if action == "show":
        talk = inbox.show(learner_id)
        state = f"open for {age_text(inbox.now_ms() - talk.since_ms)} ({talk.reason})" if talk.open else "closed"
        print(f"{talk.learner_id}  {talk.channel}  {talk.name}  lang {talk.lang}  handover {state}")
        print(f"resumes at: {talk.where}   a reply now goes: {talk.route.value}")
        for message in talk.messages:
            when = datetime.fromtimestamp(message.at_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
            tag = f"[{message.tag}]" if message.tag else ""
            who = " ".join(part for part in (message.who, message.by, tag) if part)
            print(f"  {when}  {who:<22} {message.text}")
        return 0
    if action == "reply":
        sent = inbox.reply(learner_id, text, admin=admin)
        print(f"Sent{' with the HUMAN_AGENT tag' if sent.tag else ''}: it goes out through the worker's queue.")
        return 0
    if action == "back":
        inbox.hand_back(learner_id, admin=admin)
        print("Handed back: the course goes on where the learner was, and they are told so.")
        return 0
    raise InboxError(f"unknown action {action!r}: list, show, reply, back or rescan")

