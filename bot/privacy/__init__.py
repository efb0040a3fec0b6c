"""What Bottega keeps about one learner: find them, export it all, erase it all (issue 11 §2, issue 12 §3).

* ``lookup.find(client, ref)``: the learner a reference names — a learner id (``wa:39333...``), the
  12-character ``learner_ref`` from the logs, a phone number (any spacing, ``+`` or not), a Messenger /
  Instagram id or a WhatsApp BSUID — following aliases to the id that holds the record.
* ``rights.export_learner(client, learner_id)``: everything stored about them as one JSON-able dict.
* ``rights.erase_learner(client, learner_id)``: remove all of it; their certificates become revoked
  tombstones (``/verify`` then says "revoked"), holding no name and no id.

What is stored is said by *holders* (``holders.LearnerDataHolder``), one per place that keeps learner
data: their own keys, aliases that point at them, the timer sweeper's due-index, certificates, Business
Open Days' seat ledgers, broadcasts' recipients, the simulator's session logs. A feature that stores learner
data somewhere new adds a holder to ``holders.DEFAULT_HOLDERS`` (or calls ``holders.register``), and the
whole-keyspace test in tests/test_privacy.py tells whether anything is left behind.

Not held here, on purpose: queued jobs in the send queue's own Redis database (``deliver(learner id)``,
a big batch's events) live seconds until the worker acks them, and a ``deliver`` for an erased learner
finds no outbox and sends nothing; log lines carry only ``learner_ref``.
"""

from bot.privacy.holders import DEFAULT_HOLDERS, LearnerDataHolder, analytics_holder, register
from bot.privacy.lookup import find, find_by_ref
from bot.privacy.person import Person, identify
from bot.privacy.rights import Erased, erase_learner, export_learner

__all__ = ["DEFAULT_HOLDERS", "Erased", "LearnerDataHolder", "Person", "analytics_holder", "erase_learner",
           "export_learner", "find",
           "find_by_ref", "identify", "register"]
