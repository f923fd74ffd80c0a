"""A one-node SLURM cluster on localhost for the whole session (see cluster.py)."""

from __future__ import annotations

import pytest

from tests.slurm.cluster import LocalSlurm, skip_reason


def pytest_collection_modifyitems(config, items):
    """Every test here is a ``slurm`` test (and ``slow``: minutes, deselected by
    ``-m "not slow"`` while iterating); without SLURM or root they skip, saying why."""
    reason = skip_reason()
    for item in items:
        if "tests/slurm/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.slurm)
            item.add_marker(pytest.mark.slow)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def slurm(tmp_path_factory):
    """The running cluster (``LocalSlurm``); stopped, jobs cancelled, at the end."""
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    cluster = LocalSlurm(tmp_path_factory.mktemp("slurm"))
    try:
        cluster.start()
    except Exception:
        cluster.stop()
        raise
    yield cluster
    cluster.stop()
