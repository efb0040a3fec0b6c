"""The console's Inbox of handovers and the Open Day waiting list on a real local Redis Cluster (``tests/cluster.py``).

The console inbox suite (open handovers listed oldest first, an editor's reply sent once however often the
form is posted, refused after the window, the hand-back audited) and the waiting-list suite (those still
waiting at the start told once the seats ran out, then the recording; a promotion outside the window by
template) run here again with the cluster as their Redis, the send queue on the session's plain Redis.
"""

from __future__ import annotations

from tests.test_cluster import settings  # noqa: F401 - the cluster; the send queue on the plain Redis
from tests.test_cluster_features import redis_client  # noqa: F401 - the cluster and the queue's database, empty
from tests.test_console_inbox import (  # noqa: F401 - collected here, on the cluster
    app,
    test_a_viewer_reads_but_cannot_reply_or_hand_back_and_a_forged_form_is_refused,
    test_after_24_hours_a_whatsapp_reply_is_refused_and_nothing_is_sent,
    test_an_editors_reply_is_stored_and_sent_as_the_clis_and_a_second_send_of_the_form_is_a_no_op,
    test_hand_back_closes_the_handover_and_is_audited,
    test_open_handovers_are_listed_oldest_first_masked_and_in_the_menu,
)
from tests.test_open_days_waitlist import (  # noqa: F401 - collected here, on the cluster
    test_a_learner_promoted_outside_their_window_gets_the_calendar_link_in_the_template,
    test_those_still_waiting_at_the_start_hear_the_seats_ran_out_once_in_their_language_then_the_recording,
)
