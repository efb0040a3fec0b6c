"""Bottega's state on a real local Redis Cluster (3 primaries + 3 replicas, ``tests/cluster.py``).

Conversations, identity moves, opt-outs and certificates of other suites run here again with the cluster as
their Redis (their tests are imported; this module's ``redis_client`` and ``settings`` name the cluster). A
script touching keys of two slots would fail with CROSSSLOT, so their passing shows none does. Then what
only a cluster has: the shared indexes spread over many slots, scripts reloaded after a node's cache is
emptied, a commit meeting a slot in the middle of its move answered 503 and applied once after it, and
WAIT for a replica.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.cluster import RedisCluster

from bot import composition
from bot.delivery import timers
from bot.storage import releases
from bot.storage.keys import (
    SHARDS,
    BroadcastPart,
    LearnerPart,
    broadcast_shard_key,
    certificate_key,
    handover_index_key,
    learner_key,
    learner_timer_index_key,
    live_release_key,
    timer_index_key,
)
from bot.storage.replication import NotReplicated
from config.settings import Settings, broker_url
from tests.cluster import LocalCluster
from tests.test_certificates import test_store_round_trip_by_code_token_and_learner  # noqa: F401
from tests.test_conversation import (  # noqa: F401 - collected here, on the cluster
    talk,
    test_module_1_completes_in_both_languages_and_channels,
    test_stop_asks_once_then_opts_out_and_still_answers,
)
from tests.test_hardening_webhook import (  # noqa: F401 - collected here, on the cluster
    client,
    onboard,
    post,
    test_a_learner_known_by_phone_who_arrives_with_a_bsuid_keeps_their_progress,
    test_a_new_learner_with_both_ids_gets_an_alias_in_the_same_commit,
    test_an_opt_out_mid_checkup_cancels_its_clock_in_the_same_commit,
    test_user_changed_number_moves_the_learner_and_their_old_number_starts_afresh,
    test_user_changed_user_id_moves_the_learner_to_their_new_bsuid,
    text,
)
from tests.test_identity import (  # noqa: F401 - collected here, on the cluster
    test_a_bsuid_for_a_phone_keyed_linked_learner_keeps_their_progress,
    test_a_changed_number_on_a_linked_channel_moves_the_conversation_and_frees_the_old_number,
    test_a_crash_after_the_merge_applied_leaves_both_merged_after_recovery,
    test_a_crash_before_the_merge_applied_leaves_both_apart_after_recovery,
    test_a_messenger_learner_links_whatsapp_with_a_code_and_sees_module_1_done_there,
    test_the_linked_channels_certificate_follows_the_link_from_another_shard,
    test_unlink_gives_each_channel_the_progress_it_has_now,
    world,
)


@pytest.fixture
def redis_client(redis_cluster: LocalCluster) -> Iterator[RedisCluster]:
    """The cluster, empty (every primary flushed, script caches too)."""
    redis_cluster.flush()
    cluster_client = redis_cluster.client()
    try:
        yield cluster_client
    finally:
        cluster_client.close()


@pytest.fixture
def settings(redis_cluster: LocalCluster, plain_redis_url: str, tmp_path: Path) -> Settings:
    """The cluster as REDIS_URL; the send queue (Dramatiq's Redis broker cannot run on a cluster) on the session's
    plain Redis, as a deployment without RabbitMQ would set BROKER_REDIS_URL."""
    return Settings.from_env({"BOTTEGA_ENV": "test", "META_APP_SECRET": "test-app-secret",
                              "META_VERIFY_TOKEN": "test-verify-token", "WHATSAPP_TOKEN": "wa-token",
                              "WHATSAPP_PHONE_NUMBER_ID": "100000000000001", "MESSENGER_PAGE_TOKEN": "page-token",
                              "REDIS_URL": redis_cluster.url, "BROKER_REDIS_URL": broker_url(plain_redis_url),
                              "BOTTEGA_VAR_DIR": str(tmp_path / "var")})


def test_redis_url_with_the_cluster_scheme_gives_a_cluster_client(settings, redis_client):
    made = composition.redis_client(settings)
    try:
        assert isinstance(made, RedisCluster)
        assert composition.store(settings, made).cluster
    finally:
        made.close()


def test_the_indexes_every_learner_shares_spread_over_many_slots_and_primaries(redis_cluster, redis_client):
    for keys in ([timer_index_key(n) for n in range(SHARDS)], [live_release_key(n) for n in range(SHARDS)],
                 [certificate_key(f"BTG-0000-0000-{n:04d}") for n in range(64)],
                 [handover_index_key(n) for n in range(SHARDS)],
                 [broadcast_shard_key("20261130-090000-aaaaaa", n, BroadcastPart.STATE) for n in range(SHARDS)]):
        slots = {redis_client.keyslot(key) for key in keys}
        assert len(slots) == SHARDS
        assert len({redis_cluster.node_of_key(key).port for key in keys}) == 3  # every primary holds some


def test_timers_of_learners_in_every_shard_fire_once_from_the_sharded_index(settings, redis_client):
    learners = [f"wa:39333000{n:04d}" for n in range(40)]
    store = composition.store(settings, redis_client)
    for n, lid in enumerate(learners):
        redis_client.zadd(learner_key(lid, LearnerPart.TIMERS), {f"nudge:{n}": 1_000})
        store.wake_at(lid, 1_000)
    assert len({learner_timer_index_key(lid) for lid in learners}) > 8
    assert timers.timers_due(redis_client, 2_000) == 40
    handled: list[str] = []

    class Recorder:
        def __init__(self) -> None:
            self.store = store

        def handle(self, event, *, now_ms):
            handled.append(event.learner_id)

    assert timers.sweep(redis_client, Recorder(), 2_000) == 40  # type: ignore[arg-type]
    assert sorted(handled) == sorted(learners)
    assert timers.timers_due(redis_client, 2_000) == 0
    assert timers.sweep(redis_client, Recorder(), 2_000) == 0  # type: ignore[arg-type]


def test_scripts_are_loaded_again_after_every_nodes_script_cache_is_emptied(client, redis_client,  # noqa: F811
                                                                            redis_cluster):
    onboard(client)
    for node in redis_cluster.live_nodes():
        node.client().script_flush()
    assert post(client, text("1")).status_code == 200  # NOSCRIPT -> SCRIPT LOAD -> EVALSHA, in the client


def test_with_wait_a_commit_after_the_nodes_lost_their_scripts_is_made_once_and_replicated(settings, redis_client,
                                                                                            redis_cluster):
    from dataclasses import replace

    from tests.test_hardening_webhook import PHONE
    from webhooks import create_app

    waiting = replace(settings, redis_wait_replicas=1, redis_wait_timeout_ms=2000)
    web = create_app(waiting, redis_client=redis_client, notify=lambda lid: None).test_client()
    onboard(web)
    lid = f"wa:{PHONE}"
    rev = int(redis_client.hget(learner_key(lid, LearnerPart.PROGRESS), "rev"))
    for node in redis_cluster.live_nodes():
        node.client().script_flush()
    assert post(web, text("1")).status_code == 200  # NOSCRIPT beside the WAIT: loaded, then commit + WAIT again
    assert int(redis_client.hget(learner_key(lid, LearnerPart.PROGRESS), "rev")) == rev + 1
    primary = redis_cluster.node_of_key(learner_key(lid, LearnerPart.PROGRESS))
    replica = next(node for node in redis_cluster.live_nodes()
                   if node.client().info("replication").get("master_port") == primary.port)
    reading = replica.client()
    reading.execute_command("READONLY")
    assert int(reading.hget(learner_key(lid, LearnerPart.PROGRESS), "rev")) == rev + 1


def test_a_release_published_on_the_cluster_is_live_in_every_shard(settings, redis_client, course):
    from bot.flows.loader import course_files

    files = course_files(settings.flows_dir)
    published = releases.publish(redis_client, files)
    assert {redis_client.get(live_release_key(n)) for n in range(SHARDS)} == {published.release.encode()}
    assert releases.live_release(redis_client) == published.release


def _only_the_progress_moved(redis_cluster: LocalCluster, redis_client: RedisCluster, lid: str):
    """Start moving ``lid``'s slot to another primary and migrate only its progress hash: the rest of the
    learner's keys are still on the source. Returns (slot, source, target)."""
    key = learner_key(lid, LearnerPart.PROGRESS)
    slot = redis_client.keyslot(key)
    source = redis_cluster.node_of_key(key)
    target = next(node for node in redis_cluster.primaries() if node.port != source.port)
    target.client().cluster("setslot", slot, "importing", source.client().cluster("myid"))
    source.client().cluster("setslot", slot, "migrating", target.client().cluster("myid"))
    source.client().migrate("127.0.0.1", target.port, [key], 0, 5000)
    return slot, source, target


def test_a_commit_meeting_a_slot_mid_move_is_answered_503_and_applied_once_after_it(
        client, redis_client, redis_cluster, notified):  # noqa: F811
    from tests.test_hardening_webhook import PHONE

    onboard(client)
    lid = f"wa:{PHONE}"
    before = redis_client.hgetall(learner_key(lid, LearnerPart.PROGRESS))
    slot, source, target = _only_the_progress_moved(redis_cluster, redis_client, lid)
    body = text("1")
    answer = post(client, body)
    assert answer.status_code == 503  # TRYAGAIN: the script's keys are split between two nodes right now
    importing = target.client()  # one connection: ASKING holds for its next command
    importing.execute_command("ASKING")
    after_503 = importing.hgetall(learner_key(lid, LearnerPart.PROGRESS))
    assert after_503 == before  # nothing of the turn was applied
    while keys := source.client().cluster("getkeysinslot", slot, 100):  # the move completes
        source.client().migrate("127.0.0.1", target.port, keys, 0, 5000)
    for node in redis_cluster.primaries():
        node.client().cluster("setslot", slot, "node", target.client().cluster("myid"))
    redis_cluster.wait_ok()
    assert post(client, body).status_code == 200  # Meta's redelivery
    done = redis_client.hgetall(learner_key(lid, LearnerPart.PROGRESS))
    assert int(done[b"rev"]) == int(before[b"rev"]) + 1  # applied once
    assert post(client, body).status_code == 200  # and once more: a duplicate
    assert int(redis_client.hget(learner_key(lid, LearnerPart.PROGRESS), "rev")) == int(before[b"rev"]) + 1


def test_with_wait_the_webhook_answers_only_once_a_replica_has_the_turn(settings, redis_client, redis_cluster):
    from dataclasses import replace

    from tests.test_hardening_webhook import PHONE
    from webhooks import create_app

    waiting = replace(settings, redis_wait_replicas=1, redis_wait_timeout_ms=2000)
    web = create_app(waiting, redis_client=redis_client, notify=lambda lid: None).test_client()
    assert post(web, text("ciao")).status_code == 200
    lid = f"wa:{PHONE}"
    primary = redis_cluster.node_of_key(learner_key(lid, LearnerPart.PROGRESS))
    replica = next(node for node in redis_cluster.live_nodes()
                   if node.client().info("replication").get("master_port") == primary.port)
    reading = replica.client()  # one connection: READONLY holds for it
    reading.execute_command("READONLY")
    assert reading.hget(learner_key(lid, LearnerPart.PROGRESS), "rev") is not None  # WAIT: it is there already
    # more replicas than exist: the commit is made, the webhook says 503, Meta redelivers (a duplicate then)
    store = composition.store(replace(waiting, redis_wait_replicas=2, redis_wait_timeout_ms=100), redis_client)
    from bot.tutor.progress import Progress

    progress = Progress.from_hash(redis_client.hgetall(learner_key(lid, LearnerPart.PROGRESS)))
    assert progress is not None
    with pytest.raises(NotReplicated):
        store.commit(progress, expected_rev=progress.rev, message_id="wamid.wait-2", now_ms=progress.updated_at_ms + 1,
                     outbox_items=[])
    # the commit itself is on the primary: Meta's redelivery of that message is a duplicate there
    assert int(redis_client.hget(learner_key(lid, LearnerPart.PROGRESS), "rev")) == progress.rev + 1
    with pytest.raises(NotReplicated):
        result = store.commit(progress, expected_rev=progress.rev + 1, message_id="wamid.wait-2",
                              now_ms=progress.updated_at_ms + 2, outbox_items=[])
    from bot.storage.store import CommitResult

    relaxed = composition.store(settings, redis_client)
    result = relaxed.commit(progress, expected_rev=progress.rev + 1, message_id="wamid.wait-2",
                            now_ms=progress.updated_at_ms + 2, outbox_items=[])
    assert result.result is CommitResult.DUPLICATE
