"""``chggen ehull``: E_d table / JSON, and bad input -> exit 2 with nothing written."""

from __future__ import annotations

import json

import pytest
from monty.serialization import dumpfn
from pymatgen.core import Lattice, Structure
from pymatgen.entries.computed_entries import ComputedEntry

from chggen_flows.core.stability import OfflineCHGNetReference, compute_e_d


@pytest.fixture(scope="module")
def reference_phases():
    """Two relaxed Li-Si reference structures from the shipped set: Si (stable) and LiSi."""
    entries = OfflineCHGNetReference().entries(["Li", "Si"])
    si = min(
        (e for e in entries if e.composition.reduced_formula == "Si"),
        key=lambda e: e.energy_per_atom,
    )
    lisi = next(e for e in entries if e.composition.reduced_formula == "LiSi")
    return si, lisi


def test_help(cli):
    res = cli("ehull", "--help")
    assert res.exit_code == 0
    assert "--reference" in res.stdout and "--relax" in res.stdout


def test_json_records_against_the_offline_reference(cli, tmp_path, reference_phases):
    si, lisi = reference_phases
    si.structure.to(filename=str(tmp_path / "si.cif"))
    lisi.structure.to(filename=str(tmp_path / "lisi.cif"))
    res = cli("ehull", tmp_path, "--reference", "offline", "--json", "--device", "cpu")
    assert res.exit_code == 0, res.stderr
    rows = {r["formula"]: r for r in json.loads(res.stdout)}
    assert set(rows) == {"Si", "LiSi"}
    for row in rows.values():
        assert set(row) == {
            "file",
            "formula",
            "e_d",
            "reference",
            "potential",
            "decomposition",
            "warning",
        }
        assert row["warning"] is None  # Si and LiSi: no missing phase on their stretch
        assert row["reference"] == "offline-chgnet"
        assert row["potential"] == "chgnet"
    assert rows["Si"]["file"].endswith("si.cif")
    # CHGNet single points of the relaxed reference structures reproduce their entries
    # (float32 model): the stable Si is on the hull, LiSi has its reference E_d.
    assert rows["Si"]["e_d"] == pytest.approx(0.0, abs=2e-4)
    (expected,) = compute_e_d([(lisi.composition, lisi.energy_per_atom)], OfflineCHGNetReference())
    assert rows["LiSi"]["e_d"] == pytest.approx(expected.e_d, abs=2e-4)


def test_relax_against_an_entries_file(cli, tmp_path):
    # diamond Si, 2% strained; relaxed by CHGNet it must reach the shipped relaxed
    # diamond prototype's energy, here compared with a user file's Si at -5.0 eV/atom
    strained = Structure(Lattice.cubic(5.43 * 1.02), ["Si"] * 8, _diamond_coords())
    strained.to(filename=str(tmp_path / "si8.cif"))
    refs = tmp_path / "refs.json"
    dumpfn([ComputedEntry("Si", -5.0)], refs)
    res = cli("ehull", tmp_path / "si8.cif", "--reference", refs, "--relax", "--json")
    assert res.exit_code == 0, res.stderr
    (row,) = json.loads(res.stdout)
    assert row["reference"] == "file:refs.json"
    prototype = next(
        e for e in OfflineCHGNetReference().entries(["Si"]) if e.entry_id == "prototype-Si"
    )
    assert row["e_d"] == pytest.approx(prototype.energy_per_atom + 5.0, abs=2e-3)


def test_table_output(cli, tmp_path, reference_phases):
    si, _ = reference_phases
    si.structure.to(filename=str(tmp_path / "si.cif"))
    res = cli("ehull", tmp_path / "si.cif")
    assert res.exit_code == 0, res.stderr
    assert "E_d vs offline-chgnet (single point)" in res.stdout
    assert "0.0000" in res.stdout  # on the hull (float32 CHGNet: +0.0000 or -0.0000)
    assert "1.00 Si" in res.stdout


def _diamond_coords():
    base = [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]]
    return base + [[x + 0.25, y + 0.25, z + 0.25] for x, y, z in base]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["cu.cif", "--reference", "offline"], "no set for the Cu system"),
        (["xx.cif", "--reference", "offline"], "unknown element 'Xx'"),
        (["si.cif", "--reference", "mp"], "API key"),
        (["si.cif", "--reference", "empty.json"], "no entries"),
        (["si.cif", "--reference", "broken.csv"], "malformed"),
        (["si.cif", "--reference", "nonsense"], "unknown reference source"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(cli, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MP_API_KEY", raising=False)
    monkeypatch.setenv("CHGGEN_CACHE_DIR", str(tmp_path / "cache"))
    Structure(Lattice.cubic(3.6), ["Cu"], [[0, 0, 0]]).to(filename="cu.cif")
    Structure(Lattice.cubic(5.43), ["Si"] * 8, _diamond_coords()).to(filename="si.cif")
    (tmp_path / "xx.cif").write_text((tmp_path / "cu.cif").read_text().replace("Cu", "Xx"))
    (tmp_path / "empty.json").write_text("[]")
    (tmp_path / "broken.csv").write_text("formula,energy_per_atom\nSi,not-a-number\n")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    res = cli("ehull", *args)
    assert res.exit_code == 2
    assert message in res.stderr.replace("\n", " ")
    assert "Hint" in res.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_add_reference_structures_to_the_offline_hull(cli, tmp_path):
    # Cu is in no shipped set: refused without, computed with a user structure of fcc Cu
    fcc = Structure.from_spacegroup("Fm-3m", Lattice.cubic(3.6), ["Cu"], [[0, 0, 0]])
    fcc.get_primitive_structure().to(filename=str(tmp_path / "cu.cif"))
    strained = Structure.from_spacegroup("Fm-3m", Lattice.cubic(3.85), ["Cu"], [[0, 0, 0]])
    strained.get_primitive_structure().to(filename=str(tmp_path / "cu_strained.cif"))

    res = cli("ehull", tmp_path / "cu_strained.cif", "--json")
    assert res.exit_code == 2 and "no set for the Cu system" in res.stderr

    res = cli(
        "ehull", tmp_path / "cu_strained.cif", "--add-reference", tmp_path / "cu.cif", "--json"
    )
    assert res.exit_code == 0, res.stderr
    (row,) = json.loads(res.stdout)
    assert row["reference"] == "offline-chgnet"
    assert row["e_d"] > 0.01  # a 7% strained cell is above the relaxed reference

    res = cli(
        "ehull", tmp_path / "cu.cif", "--reference", "mp", "--add-reference", tmp_path / "cu.cif"
    )
    assert res.exit_code == 2 and "only fit the offline" in res.stderr.replace("\n", " ")
