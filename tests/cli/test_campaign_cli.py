"""``chggen campaign``: submit (idempotent, bad specs exit 2 writing nothing), check
(validation and plan without a database), examples."""

from __future__ import annotations

import json

import pytest

from chggen_flows.db import get_job_store, get_launchpad, store_database
from tests.campaign.helpers import tiny_checkpoint, tiny_spec, write_spec


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("model") / "tiny.pt")


def _nothing_written(settings) -> bool:
    store = get_job_store(settings)
    store.connect()
    db = store_database(store)
    return (
        db["campaigns"].count_documents({}) == 0
        and store.docs_store.count() == 0
        and get_launchpad(settings).fireworks.count_documents({}) == 0
        and get_launchpad(settings).workflows.count_documents({}) == 0
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


#: The specs measured to pass `chggen campaign submit` before the sections were checked
#: (each failed hours later on a worker).
MEASURED_BAD = [
    (
        {"sampler": {"n_level": 200}},
        "sampler.n_level: unknown key 'n_level'; did you mean 'n_levels'?",
    ),
    ({"relax": {"fmax": -1}}, "relax.fmax: fmax must be > 0"),
    ({"inpaint": {"jump_length": 0}}, "inpaint.jump_length: jump_length must be >= 1, got 0"),
]


@pytest.mark.parametrize(("overrides", "message"), MEASURED_BAD)
def test_measured_bad_sections_exit_2_before_any_write(
    cli, db_env, checkpoint, tmp_path, overrides, message
):
    spec = write_spec(tmp_path, tiny_spec(checkpoint, **overrides))
    for command in ("submit", "check"):
        res = cli("campaign", command, spec)
        assert res.exit_code == 2, res.stdout + res.stderr
        assert message in " ".join(res.stderr.split())
        assert "Hint:" in res.stderr and "Traceback" not in res.stderr + res.stdout
    assert _nothing_written(db_env)


def test_check_shows_the_plan_without_a_database(
    cli, isolated_env, monkeypatch, checkpoint, tmp_path
):
    # Nothing listens there: any database access would fail the command.
    monkeypatch.setenv("CHGGEN_MONGO_URI", "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=200")
    spec = write_spec(tmp_path, tiny_spec(checkpoint, routing={"relax": "gpu"}))
    res = cli("campaign", "check", spec)
    assert res.exit_code == 0, res.stderr
    out = res.stdout
    assert "valid spec" in out and "4 candidates in 2 batch(es), 14 jobs" in out
    assert "relax -> gpu" in out and "generate -> gpu" in out and "dft -> vasp" in out
    assert "n_levels: 5" in out and "sigma_max: 10.0" in out  # the spec's and the defaults
    as_json = cli("campaign", "check", spec, "--json")
    assert as_json.exit_code == 0, as_json.stderr
    summary = json.loads(as_json.stdout)
    assert (summary["n_candidates"], summary["n_batches"], summary["n_jobs"]) == (4, 2, 14)
    assert summary["routing"]["relax"] == "gpu" and summary["routing"]["inpaint"] == "gpu"
    assert summary["spec"]["sampler"] == {"n_levels": 5, "n_corrector": 1}  # as stored
    assert summary["settings"]["relax"]["device"] == "cpu"  # the model's device
    assert summary["campaign"].startswith("tiny-li-si-")
    dry = cli("campaign", "submit", spec, "--dry-run")
    assert dry.exit_code == 0 and "14 jobs" in dry.stdout and "relax -> gpu" in dry.stdout


def test_dry_run_writes_nothing(cli, db_env, checkpoint, tmp_path):
    spec = write_spec(tmp_path, tiny_spec(checkpoint))
    res = cli("campaign", "submit", spec, "--dry-run")
    assert res.exit_code == 0, res.stderr
    assert "nothing was written" in res.stdout
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
        ("campaign", "check", "--help"),
        ("campaign", "demo", "--help"),
    ):
        res = cli(*args)
        assert res.exit_code == 0 and res.stdout.strip()
