"""The admins' inbox of handovers to a person (issue 12 §2): `bottega inbox` and the admin console's Inbox.

``Inbox`` (``bot.handover.inbox``) lists the open handovers with their age, shows a conversation, sends an
admin's reply and hands a learner back to the course. Replies and hand-backs are ADMIN events through the
same dispatcher as every webhook (``bot.dispatch``): one atomic commit, the learner's outbox in order, once
per request id. What the learner sees is decided in ``bot.tutor.handover``.
"""

from bot.handover.inbox import Conversation, Inbox, InboxError, OpenHandover, age_text

__all__ = ["Conversation", "Inbox", "InboxError", "OpenHandover", "age_text"]
