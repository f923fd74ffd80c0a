"""``chggen campaign``: submit (idempotent, bad specs exit 2 writing nothing), examples."""

from __future__ import annotations

import pytest

from chggen_flows.db import get_job_store, get_launchpad, store_database
from tests.campaign.helpers import tiny_checkpoint, tiny_spec, write_spec


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("model") / "tiny.pt")


def _nothing_written(settings) -> bool:
    store = get_job_store(settings)
    db = store_database(store)
    return db["campaigns"].count_documents({}) == 0 and (
        get_launchpad(settings).fireworks.count_documents({}) == 0
    )


def test_submit_then_resubmit(cli, db_env, checkpoint, tmp_path):
    spec = write_spec(tmp_path, tiny_spec(checkpoint))
    first = cli("campaign", "submit", spec)
    assert first.exit_code == 0, first.stderr
    assert (
        "submitted tiny-li-si-" in first.stdout
        and "4 candidates in 2 batch(es), 14 jobs" in first.stdout
    )
    again = cli("campaign", "submit", spec)
    assert again.exit_code == 0 and "already submitted" in again.stdout
    renewed = cli("campaign", "submit", spec, "--new")
    assert renewed.exit_code == 0 and "submitted tiny-li-si-" in renewed.stdout
    assert get_launchpad(db_env).fireworks.count_documents({}) == 28
    listing = cli("campaign", "list")
    assert listing.exit_code == 0 and listing.stdout.count("tiny-li-si-") == 2


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"compositions": ["Li3Zz"]}, "unknown element 'Zz'"),
        ({"formula_units": [0]}, "formula unit counts must be positive"),
        ({"candidates_per_lattice": 0}, "candidates_per_lattice"),
        ({"v0": {"source": "value", "value": 1000}}, "impossible volume"),
        ({"routing": {"inpaint": "quantum"}}, "unknown category 'quantum'"),
        ({"model": {"checkpoint": "missing.pt"}}, "does not exist"),
        ({"compositions": ["Li2O"]}, "does not know element(s) O"),
    ],
)
def test_bad_specs_exit_2_and_write_nothing(cli, db_env, checkpoint, tmp_path, overrides, message):
    spec = write_spec(tmp_path, tiny_spec(checkpoint, **overrides))
    res = cli("campaign", "submit", spec)
    assert res.exit_code == 2
    assert message in " ".join(res.stderr.split())
    assert "Hint:" in res.stderr
    assert _nothing_written(db_env)


def test_examples_and_usage_errors(cli, db_env):
    listing = cli("campaign", "examples")
    assert listing.exit_code == 0
    for name in ("li-si-quick", "li-si", "zn-p-s", "si-lithiation"):
        assert name in listing.stdout
    assert cli("campaign", "submit", "--example", "nope").exit_code == 2
    assert cli("campaign", "submit").exit_code == 2
    assert _nothing_written(db_env)


def test_help(cli):
    for args in (
        ("campaign", "--help"),
        ("campaign", "submit", "--help"),
        ("campaign", "demo", "--help"),
    ):
        res = cli(*args)
        assert res.exit_code == 0 and res.stdout.strip()
