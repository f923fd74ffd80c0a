"""A campaign with a non-default potential on a real SecantusDB server: ``campaign check``
names it, submission builds its hull, a worker runs the campaign, every record carries the
potential and its E_d is against that potential's hull; mixing is refused at submission."""

from __future__ import annotations

import json
import math

import pytest
from monty.serialization import dumpfn, loadfn

from chggen_flows.campaign.results import load_candidates
from chggen_flows.core.stability import compute_e_d, get_reference
from chggen_flows.db import get_job_store, get_launchpad, store_database
from tests.campaign.helpers import fw_states, tiny_checkpoint, tiny_spec, write_spec
from tests.core.stability.helpers import ship_tiny_lisi, tiny_lisi_data

R2SCAN_RELAX = {"max_steps": 3, "potential": "chgnet-r2scan"}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("model") / "tiny.pt")


@pytest.fixture()
def tiny_shipped(db_env, tmp_path, monkeypatch):
    """Only the small Li-Si cells shipped, and a private cache of built hulls."""
    ship_tiny_lisi(tmp_path, monkeypatch)
    return tmp_path / "shipped" / "Li-Si.json.gz"


def _written(settings) -> tuple[int, int]:
    campaigns = store_database(get_job_store(settings))["campaigns"].count_documents({})
    return campaigns, get_launchpad(settings).fireworks.count_documents({})


@pytest.mark.slow
def test_a_chgnet_r2scan_campaign_end_to_end(cli, db_env, tiny_shipped, checkpoint, tmp_path):
    spec = tiny_spec(
        checkpoint, relax=R2SCAN_RELAX, stability={"reference": "offline", "dft": False}
    )
    path = write_spec(tmp_path, spec)

    res = cli("campaign", "check", path, "--json")
    assert res.exit_code == 0, res.stderr
    plan = json.loads(res.stdout)
    assert plan["potential"] == "chgnet-r2scan"
    assert plan["reference"] == {
        "label": "offline-chgnet-r2scan",
        "functional": "r2SCAN",
        "potential": "chgnet-r2scan",
    }
    # the check built the potential's hull (first use) into the cache
    built = tmp_path / "cache" / "references" / "chgnet-r2scan" / "Li-Si.json.gz"
    assert loadfn(built)["potential"] == "chgnet-r2scan"
    res = cli("campaign", "check", path)
    assert "potential chgnet-r2scan: E_d against offline-chgnet-r2scan (r2SCAN)" in res.stdout

    res = cli("campaign", "submit", path)
    assert res.exit_code == 0, res.stderr
    campaign = res.stdout.split("submitted ")[1].split()[0]
    res = cli("run")
    assert res.exit_code == 0, res.stderr
    assert set(fw_states(get_launchpad(db_env), campaign).values()) == {"COMPLETED"}

    frame = load_candidates(get_job_store(db_env), campaign)
    assert len(frame) == 4
    relaxed = frame[frame["energy_per_atom"].notna()]
    assert len(relaxed) >= 1
    assert set(relaxed["potential"]) == {"chgnet-r2scan"}
    ranked = frame[frame["e_d"].notna()]
    assert len(ranked) >= 1
    assert set(ranked["e_d_reference"]) == {"offline-chgnet-r2scan (r2SCAN)"}
    # E_d is the record's own energy against the chgnet-r2scan hull
    provider = get_reference("offline", potential="chgnet-r2scan")
    expected = compute_e_d(
        list(zip(ranked["reduced_formula"], ranked["energy_per_atom"], strict=True)),
        provider,
        potential="chgnet-r2scan",
    )
    for e_d, record in zip(ranked["e_d"], expected, strict=True):
        assert math.isclose(e_d, record.e_d, abs_tol=1e-9)


def test_a_gga_hull_for_r2scan_energies_is_refused_at_submission(cli, db_env, checkpoint, tmp_path):
    # tiny_spec's reference is a GGA/GGA+U entries file
    path = write_spec(tmp_path, tiny_spec(checkpoint, relax=R2SCAN_RELAX))
    res = cli("campaign", "submit", path)
    assert res.exit_code == 2
    message = res.stderr.replace("\n", " ")
    assert "potential 'chgnet-r2scan' gives r2SCAN energies but the hull" in message
    assert "Hint" in message and "mp-r2scan" in message
    assert _written(db_env) == (0, 0)


def test_another_potentials_hull_is_refused_at_submission(cli, db_env, checkpoint, tmp_path):
    # a reference set made by chgnet-r2scan (as `chggen reference build --potential` writes)
    data = tiny_lisi_data()
    for entry in data["entries"]:
        entry.parameters.update(potential="chgnet-r2scan", run_type="chgnet-r2scan")
    data.update(potential="chgnet-r2scan", functional="r2SCAN")
    made_by_r2scan = tmp_path / "r2scan-set.json.gz"
    dumpfn(data, made_by_r2scan)
    spec = tiny_spec(checkpoint, stability={"reference": str(made_by_r2scan), "dft": False})
    res = cli("campaign", "submit", write_spec(tmp_path, spec))
    assert res.exit_code == 2
    message = res.stderr.replace("\n", " ")
    assert "energies from potential 'chgnet'" in message
    assert "made by 'chgnet-r2scan'" in message and "Hint" in message
    assert _written(db_env) == (0, 0)
