"""Bottega writing first: the rules every proactive message follows, and where and when it goes. No I/O.

* ``policy``: the knobs (quiet hours, one a day, the window margin, how far a reminder may move, the
  default time zone) and the price table, as values built once from the settings (``bot.composition``).
* ``record``: what a learner's record keeps about proactive messages: the day's count, what went out (how,
  category, cost), marketing stop/resume, Meta's refusals, a Messenger marketing-messages token.
* ``placement``: the one decision — for a learner and a moment, does a proactive message go free-form,
  moved inside the 24-hour window, as a template, through a marketing-messages token, later, or not at all,
  and what it costs. Reminders (``bot.tutor.reminders``) ask it; Open Days and broadcasts will too.

The consent rule (``bot.tutor.consent.may_message_first``) stays the one rule for opting out; ``placement``
receives its answer in ``Reach.opted_out``.

Building on this (Open Days, broadcasts, entry links): a proactive message is a turn of the learner's own
(``Dispatcher.handle`` of a TIMER event, ``bot.delivery.timers.timer_event(lid, payload, due)``: its message
id ``timer:<payload>`` makes it exactly once per learner), routed by payload prefix in ``Engine.step``
(``rem:`` today), which asks ``placement.place`` (with the template declared for its ``use`` in
templates.yaml) and, on a send, calls ``bot.tutor.outreach.say``: the reply is marked ``proactive`` in the
outbox, so opting out drops it and a sender can tell bulk traffic from a learner's own conversation. A dry
run asks ``place`` with ``now_ms=moment_ms`` and counts by ``How`` and ``cost``.
"""
