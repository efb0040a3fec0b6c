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
"""
