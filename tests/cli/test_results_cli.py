"""``chggen results``: table, JSON, CSV, CIF export and filters on real stage outputs."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from chggen_flows.campaign.results import CANDIDATE_COLUMNS
from chggen_flows.db import get_job_store
from tests.campaign.helpers import populate_campaign


@pytest.fixture
def campaign(db_env):
    return populate_campaign(get_job_store(db_env))


def test_table_json_and_csv(cli, campaign):
    table = cli("results", campaign)
    assert table.exit_code == 0, table.stderr
    assert "4 candidate(s)" in table.stdout and "Li3Si-sym" in table.stdout
    # One line per candidate at 80 columns; the rejection is counted under the table.
    row = next(line for line in table.stdout.splitlines() if "Li3Si-rejected" in line)
    assert "rejected" in row.replace("Li3Si-rejected", "")
    assert max(len(line) for line in table.stdout.splitlines()) <= 80
    assert "Rejected" in table.stdout
    as_json = cli("results", campaign, "--json")
    records = json.loads(as_json.stdout)
    assert {r["candidate_id"] for r in records} == {
        "Li3Si-sym",
        "Li3Si-p1",
        "LiSi-cscl",
        "Li3Si-rejected",
    }
    assert set(records[0]) == set(CANDIDATE_COLUMNS)
    as_csv = cli("results", "--csv", "--e-d-max", "0.3", "--symmetric")
    lines = as_csv.stdout.strip().splitlines()
    assert lines[0].split(",") == list(CANDIDATE_COLUMNS)
    assert len(lines) == 3  # Li3Si-sym and LiSi-cscl


def test_prefix_filters_and_export(cli, campaign, tmp_path):
    out = tmp_path / "cifs"
    res = cli(
        "results", campaign[:5], "--composition", "Li3Si", "--stage", "ehull", "--export", out
    )
    assert res.exit_code == 0, res.stderr
    files = {p.name for p in out.iterdir()}
    assert files == {f"{campaign}__Li3Si-p1.cif", f"{campaign}__Li3Si-sym.cif", "candidates.csv"}
    from pymatgen.core import Structure

    assert (
        Structure.from_file(out / f"{campaign}__Li3Si-sym.cif").composition.reduced_formula
        == "Li3Si"
    )
    assert len(pd.read_csv(out / "candidates.csv")) == 2


def test_errors_exit_2(cli, campaign):
    res = cli("results", "nope")
    assert res.exit_code == 2 and "no campaign 'nope'" in res.stderr
    res = cli("results", campaign, "--stage", "baked")
    assert res.exit_code == 2 and "unknown stage" in res.stderr
    res = cli("results", campaign, "--json", "--csv")
    assert res.exit_code == 2


def test_help(cli):
    res = cli("results", "--help")
    assert res.exit_code == 0 and "--e-d-max" in res.stdout and "--export" in res.stdout


def test_arm_summary_lines_compare_the_arms():
    import pandas as pd

    from chggen_flows.cli.results import arm_summary_lines
    from chggen_flows.report.data import normalise_frame

    frame = normalise_frame(
        pd.DataFrame(
            {
                "candidate_id": list("abcd"),
                "reduced_formula": ["LiSi"] * 4,
                "e_d": [0.02, 0.04, 0.3, 0.5],
                "spacegroup_number": [88, 1, 225, 221],
                "valid": True,
                "arm": ["chggen", "chggen", "baseline:pyxtal", "baseline:pyxtal"],
            }
        )
    )
    first, second = arm_summary_lines(frame)
    assert first.startswith("chggen: median E_d 0.030") and "100% below 0.1" in first
    assert second.startswith("baseline:pyxtal: median E_d 0.400") and "100% symmetric" in second
    assert arm_summary_lines(frame[frame.arm == "chggen"]) == []
