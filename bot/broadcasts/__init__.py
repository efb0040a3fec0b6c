"""Broadcasts an admin can trust: an audience, a dry run, a paced send that resumes and never repeats.

* ``audience``: the query (channel, language, business type, modules done / not done, check-up level,
  last active, RSVP state, reminder opt-in) and the learners it matches.
* ``plan``: the dry run — recipients by channel and window state (free-form / template / unreachable, and
  why), and the cost from the configured price table (``WHATSAPP_PRICES``).
* ``service``: ``Broadcasts`` — ``dry_run(query, message) -> Plan``, ``start(...) -> broadcast id``,
  ``progress(id)``, ``pause``/``resume``/``cancel(id)``, ``report(id)``, and ``step``: what the worker runs.
* ``actors``: the worker's ``broadcast_step`` actor and the boot-time recovery of running broadcasts.

``bottega broadcast`` (``bot.cli``) drives the service; the admin console (``bot.console.broadcasts_page``)
drives the same one.
"""
