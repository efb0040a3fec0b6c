"""Broadcasts, Business Open Days, entry links and the handover inbox on a real local Redis Cluster (3
primaries + 3 replicas, ``tests/cluster.py``).

Their suites run here again with the cluster as the learners' Redis (``redis_client`` and ``settings`` name it;
the send queue is the session's plain Redis, ``BROKER_REDIS_URL``, as a deployment without RabbitMQ would have
it): a small broadcast planned, sent to a few learners (a crash in the middle redone), reported with their
delivery statuses, paused, resumed and cancelled, from the console too; Open Day seats booked, a waiting list
promoted, an announcement said once; entry links (a wa.me code, an m.me ref, an Open Day's link, a
click-to-WhatsApp ad) starting what they name; a handover opened, answered by an admin, handed back, listed from the
sharded index. A script or a MULTI over keys of two slots, or a WATCH (a cluster client's pipeline has none
outside a transaction), fails here where one Redis would not.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from redis.cluster import RedisCluster

from config.settings import broker_url
from tests.cluster import LocalCluster
from tests.test_broadcasts import (  # noqa: F401 - collected here, on the cluster
    test_a_broadcast_turn_leaves_the_menu_the_learner_asked_for,
    test_a_learner_erased_before_their_turn_is_skipped_and_the_others_still_get_the_broadcast,
    test_pause_resume_cancel_and_the_console,
    test_plan_send_resume_and_report,
    test_recipients_states_are_sharded_and_a_broadcast_from_before_the_shards_keeps_its_one_pair,
    world,
)
from tests.test_cluster import settings  # noqa: F401 - the cluster; the send queue on the plain Redis
from tests.test_console_broadcasts import (  # noqa: F401 - collected here, on the cluster
    app,
    test_dry_run_send_live_progress_and_report,
    test_pause_resume_and_cancel_are_audited,
)
from tests.test_entry_links import (  # noqa: F401 - collected here, on the cluster
    client,
    test_a_click_to_whatsapp_ad_is_recorded_with_its_free_entry_point,
    test_a_wa_me_code_in_a_known_learners_text_starts_the_module_and_keeps_the_first_touch,
    test_an_m_me_ref_on_get_started_starts_the_module_after_onboarding_and_records_the_source,
    test_an_open_day_link_brings_its_invitation_with_the_rsvp_buttons_after_onboarding,
    test_inside_the_free_entry_point_a_message_goes_free_form_and_free_after_the_24_hour_window,
)
from tests.test_handover import (  # noqa: F401 - collected here, on the cluster
    talk,
    test_a_recognised_answer_resets_the_count,
    test_an_admin_reply_reaches_the_learner_and_riprendi_resumes_exactly_where_they_were,
    test_messenger_replies_after_24_hours_carry_the_human_agent_tag_up_to_7_days,
    test_operatore_offers_a_person_and_yes_pauses_the_bot_keeping_every_message,
    test_outside_the_window_a_whatsapp_or_instagram_reply_is_refused_clearly,
    test_rescan_rebuilds_the_list_from_the_records,
    test_the_admins_hand_back_resumes_the_course_and_tells_the_learner,
    test_the_open_handovers_index_is_sharded_and_the_key_before_the_shards_is_still_read,
    test_timers_say_nothing_while_a_person_answers,
)
from tests.test_open_days import (  # noqa: F401 - collected here, on the cluster
    test_an_announcement_is_counted_dry_then_said_once_and_an_rsvp_seats_the_learner_with_the_calendar_file,
    test_an_open_days_entry_link_shows_the_invitation_after_onboarding_and_its_buttons_take_a_seat,
    test_capacity_five_eight_rsvps_seat_five_wait_list_three_and_a_cancellation_promotes_the_first,
    test_remind_me_asks_again_the_day_before_a_typed_answer_counts_and_a_seat_keeps_its_reminders_across_stop,
    test_the_calendar_route_serves_a_seat_holders_ticket_and_404s_anything_else,
)


@pytest.fixture
def redis_client(redis_cluster: LocalCluster, plain_redis_url: str) -> Iterator[RedisCluster]:
    """The cluster, empty (every primary flushed, script caches too), and the send queue's database emptied."""
    redis_cluster.flush()
    with redis.Redis.from_url(broker_url(plain_redis_url)) as broker:
        broker.flushdb()
    cluster_client = redis_cluster.client()
    try:
        yield cluster_client
    finally:
        cluster_client.close()


