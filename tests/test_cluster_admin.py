"""The admin's tools on a real local Redis Cluster (``tests/cluster.py``): a learner's export and erase, the
console's pages that read or change stored state, and the ``bottega`` commands an admin runs.

The privacy and console suites run here again with the cluster as their Redis; ``redis_url`` names the cluster
too, so the check that nothing anywhere still names an erased learner reads every primary's keys, and ``bottega
learner export|erase``, ``bottega admin add-user``, ``bottega flows publish|new|check|diff``, ``bottega chat``
and ``bottega clock`` connect to it as an admin would (``REDIS_URL=redis+cluster://...``). A learner's keys,
aliases, Open Day seat, certificate and entries in the sharded timer and handover indexes are spread over many
slots: an erase that touched two slots in one command, or a script that did, would fail here with CROSSSLOT.
"""

from __future__ import annotations

import pytest

from tests.cluster import LocalCluster
from tests.test_admin_loop import (  # noqa: F401 - collected here, on the cluster
    folder,
    test_chat_publishes_nothing_but_a_first_release_and_a_broken_draft_is_not_served,
    test_the_admin_loop_tells_the_truth,
)
from tests.test_cluster import redis_client, settings  # noqa: F401 - the cluster, empty; settings naming it
from tests.test_console import (  # noqa: F401 - collected here, on the cluster
    app,
    flows,
    test_a_changed_password_or_a_removed_admin_ends_their_sessions,
    test_a_learner_is_found_and_their_phone_is_masked_unless_an_owner_asks,
    test_admins_are_managed_by_owners_and_the_last_owner_stays,
    test_an_editor_resets_a_module,
    test_an_owner_exports_and_erases_a_learner,
    test_open_days_show_who_is_coming_and_an_editor_announces_after_a_dry_run,
    test_releases_show_learners_per_step_and_an_editor_publishes_a_changed_folder,
    test_sign_in_failures_count_per_address_and_an_ipv6_client_by_its_64,
    test_the_eleventh_wrong_password_within_a_minute_is_refused,
)
from tests.test_privacy import (  # noqa: F401 - collected here, on the cluster
    client,
    lucia,
    test_a_learner_is_found_by_every_reference_an_admin_may_type,
    test_after_erase_no_key_or_value_anywhere_names_the_learner,
    test_an_erase_cut_short_after_the_certificates_can_be_run_again,
    test_the_cli_exports_and_erases_by_any_reference,
    test_the_export_holds_everything_stored_about_the_learner_and_nobody_else,
)
from tests.test_proactive import (  # noqa: F401 - collected here, on the cluster
    test_the_shared_test_clock_moves_forward_only_and_bottega_clock_moves_it,
)


@pytest.fixture
def redis_url(redis_cluster: LocalCluster) -> str:
    """``REDIS_URL`` of the cluster (the suites' own reads and the ``bottega`` commands')."""
    return redis_cluster.url
