"""A learner's export and erase on a real local Redis Cluster (``tests/cluster.py``).

The privacy suite runs here again with the cluster as its Redis: ``redis_url`` names the cluster, so the
check that nothing anywhere still names the erased learner reads every primary's keys, and ``bottega learner
export|erase`` connects to the cluster as an admin would (``REDIS_URL=redis+cluster://...``). Lucia's keys, her
alias, her seat at an Open Day, her certificate and her entries in the sharded timer and handover indexes
are spread over many slots; an erase that touched two slots in one command would fail with CROSSSLOT.
"""

from __future__ import annotations

import pytest

from tests.cluster import LocalCluster
from tests.test_cluster import redis_client, settings  # noqa: F401 - the cluster, empty; settings naming it
from tests.test_privacy import (  # noqa: F401 - collected here, on the cluster
    client,
    lucia,
    test_a_learner_is_found_by_every_reference_an_admin_may_type,
    test_after_erase_no_key_or_value_anywhere_names_the_learner,
    test_an_erase_cut_short_after_the_certificates_can_be_run_again,
    test_the_cli_exports_and_erases_by_any_reference,
    test_the_export_holds_everything_stored_about_the_learner_and_nobody_else,
)


@pytest.fixture
def redis_url(redis_cluster: LocalCluster) -> str:
    """``REDIS_URL`` of the cluster (the suite's own reads and the CLI's)."""
    return redis_cluster.url
