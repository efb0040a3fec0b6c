"""Learning analytics: what learners do on the course, recorded off the hot path, folded into a store that
answers the console's questions (overview, funnel, item analysis, check-up, delivery, cohorts).

The path of an event (no extra Redis round trip on the webhook, no global key in a learner's commit):

1. ``recording.Recorder.turn`` (called by the dispatcher, no I/O) compares a learner's progress before and
   after a turn and writes one compact JSON event: the step moved to, quiz and check-up answers with their
   score, a module started or completed, a check-up result, an opt-out, the first time we saw them. The
   commit script RPUSHes it onto the learner's own ``EVENTS`` list, in the same slot as the rest of the turn.
2. The worker's sender reads that list in the script that takes the learner's send lock (no extra round
   trip) and, after the drain, ``forwarding.forward`` XADDs those events — and one per send or failed send —
   to one of ``ANALYTICS_STREAM_SHARDS`` streams (each with a hash tag of its own) and LTRIMs the list, in one
   pipeline. A delivery status with pricing or an error (webhook) is XADDed in the same pipeline as the status
   write the webhook already makes.
3. ``consumer.Consumer`` (a thread in each worker process) reads the streams through a consumer group, so
   any number of workers share them, folds each event into the store and then XACKs it: at least once;
   ``store.AnalyticsStore.fold`` is idempotent (each event has an id; one seen before counts nothing).

The store: SQLite by default (the standard library: nothing to install or start for ``make run``, one file
at ``var/analytics.sqlite3``, WAL mode so the pages read while the worker writes), PostgreSQL for scale or
several boxes (``ANALYTICS_URL=postgresql://...``, via psycopg 3). One SQL dialect serves both (``ON
CONFLICT``, no engine-specific functions); DuckDB was not chosen: its single-writer file lock does not let a
worker fold while the web process reads. Events name learners only by ``learner_ref`` (a one-way hash);
``AnalyticsStore.erase`` deletes every row of a learner.
"""
