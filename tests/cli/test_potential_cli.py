"""``--potential`` of ``chggen relax``, ``ehull`` and ``reference build/show``: the chosen
potential relaxes, its own hull answers, and a hull that does not fit it is refused."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pandas as pd
import pytest
from monty.serialization import loadfn

import chggen_flows.core.stability.references as references
from chggen_flows.cli.report import _campaign_potential
from chggen_flows.core.relax import RelaxSettings
from tests.core.stability.helpers import ship_tiny_lisi


@pytest.fixture()
def lisi(tmp_path, monkeypatch) -> Path:
    """A LiSi CIF; only the tiny Li-Si set is shipped and built hulls go to tmp_path."""
    data = ship_tiny_lisi(tmp_path, monkeypatch)
    cif = tmp_path / "in" / "lisi.cif"
    cif.parent.mkdir()
    next(e.structure for e in data["entries"] if e.entry_id == "mp-570363").to(filename=str(cif))
    return cif


def test_defaults_come_from_the_settings_model(cli) -> None:
    from chggen_flows.cli import ehull, reference, relax

    for command in (relax.relax, ehull.ehull, reference.build, reference.show):
        option = inspect.signature(command).parameters["potential"].default
        assert option.default == RelaxSettings.default("potential") == "chgnet"
    for command in (("relax",), ("ehull",), ("reference", "build"), ("reference", "show")):
        res = cli(*command, "--help")
        assert res.exit_code == 0 and "--potential" in res.stdout


def test_relax_with_chgnet_r2scan(cli, lisi, tmp_path) -> None:
    out = tmp_path / "out"
    res = cli("relax", lisi, "--out", out, "--steps", "2", "--device", "cpu", "-p", "chgnet-r2scan")
    assert res.exit_code == 0, res.stderr
    assert "chgnet-r2scan relaxation (1 structures)" in res.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"]["potential"] == "chgnet-r2scan"
    (entry,) = summary["structures"]
    assert entry["potential"] == "chgnet-r2scan"


def test_ehull_against_the_potentials_own_hull(cli, lisi, tmp_path) -> None:
    args = ("ehull", lisi, "--device", "cpu", "--json", "--potential", "chgnet-r2scan")
    res = cli(*args)
    assert res.exit_code == 0, res.stderr
    (row,) = json.loads(res.stdout)
    assert row["potential"] == "chgnet-r2scan"
    assert row["reference"] == "offline-chgnet-r2scan"
    # LiSi of the hull itself, single point on the structure the hull was built from
    # (relaxed further by chgnet-r2scan): at or just above the hull
    assert -0.01 < row["e_d"] < 0.05

    # a GGA/GGA+U file does not fit r2SCAN-level energies: refused before any E_d
    gga = tmp_path / "gga.csv"
    gga.write_text("formula,energy_per_atom\nLi,-1.9\nSi,-5.4\nLiSi,-3.7\n")
    res = cli("ehull", lisi, "--device", "cpu", "-p", "chgnet-r2scan", "--reference", gga)
    assert res.exit_code == 2
    message = res.stderr.replace("\n", " ")
    assert "gives r2SCAN energies but the hull" in message and "Hint" in message


def test_unknown_potential_exits_2(cli, lisi, tmp_path) -> None:
    res = cli("ehull", lisi, "--potential", "mace-xl")
    assert res.exit_code == 2 and "unknown potential 'mace-xl'" in res.stderr


def test_reference_build_and_show_per_potential(cli, lisi, tmp_path) -> None:
    out = tmp_path / "mine.json.gz"
    known = lisi.parent
    data = loadfn(references.shipped_reference_files()[0])
    for entry in data["entries"]:
        if entry.composition.is_element:
            entry.structure.to(filename=str(known / f"{entry.entry_id}.cif"))
    res = cli(
        "reference", "build", known, "--chemsys", "Li-Si", "--out", out,
        "--device", "cpu", "--potential", "chgnet-r2scan",
    )  # fmt: skip
    assert res.exit_code == 0, res.stderr
    assert loadfn(out)["potential"] == "chgnet-r2scan"

    res = cli("reference", "show", "Li-Si", "--reference", out)
    assert res.exit_code == 0, res.stderr
    assert "r2SCAN, chgnet-r2scan)" in res.stdout.replace("\n", " ")
    # a candidate of another potential against this file is refused
    res = cli("ehull", lisi, "--device", "cpu", "--reference", out)
    assert res.exit_code == 2 and "made by 'chgnet-r2scan'" in res.stderr.replace("\n", " ")

    res = cli("reference", "show", "Li-Si", "--potential", "chgnet-r2scan", "--json")
    assert res.exit_code == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["reference"] == "offline-chgnet-r2scan"
    assert {p["formula"] for p in summary["stable"]} >= {"Li", "Si"}


def test_report_draws_the_hull_of_the_campaigns_potential() -> None:
    frame = pd.DataFrame({"potential": ["chgnet-r2scan", None, "chgnet-r2scan"]})
    assert _campaign_potential(frame) == "chgnet-r2scan"
    assert _campaign_potential(pd.DataFrame({"e_d": [0.1]})) is None
    # records of two potentials: no single hull is the campaign's
    assert _campaign_potential(pd.DataFrame({"potential": ["chgnet", "sevennet-0"]})) is None
