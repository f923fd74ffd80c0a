"""``chggen analysis locality`` on CIF and JSON structure files."""

from __future__ import annotations

import json

from monty.serialization import dumpfn
from pymatgen.core import Lattice, Structure


def _write(tmp_path):
    zb = Structure.from_spacegroup(
        "F-43m", Lattice.cubic(5.41), ["Zn", "S"], [[0, 0, 0], [0.25, 0.25, 0.25]]
    )
    rs = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(5.1), ["Zn", "S"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )
    (zb * (2, 1, 1)).to(filename=str(tmp_path / "gen.cif"))
    dumpfn([{"structure": zb, "material_id": "ref-1"}], tmp_path / "refs.json")
    rs.to(filename=str(tmp_path / "rocksalt.cif"))


def test_locality_identical_and_different(cli, tmp_path):
    _write(tmp_path)
    out = tmp_path / "loc"
    res = cli(
        "analysis",
        "locality",
        tmp_path / "gen.cif",
        "--reference",
        tmp_path / "refs.json",
        "--out",
        out,
        "--method",
        "cutoff",
    )
    assert res.exit_code == 0, res.stderr
    summary = json.loads((out / "locality.json").read_text())
    assert set(summary["rdf_distance"]) == {"S-S", "S-Zn", "Zn-Zn"}
    assert max(summary["rdf_distance"].values()) < 1e-9
    assert (out / "locality.png").stat().st_size > 0

    res = cli(
        "analysis",
        "locality",
        tmp_path / "rocksalt.cif",
        "-r",
        tmp_path / "refs.json",
        "--json",
        "--method",
        "cutoff",
    )
    assert res.exit_code == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["cn_mean_shift"] == {"S": 2.0, "Zn": 2.0}
    assert min(data["rdf_distance"].values()) > 0.3


def test_locality_bad_files(cli, tmp_path):
    res = cli("analysis", "locality", tmp_path / "nope.cif", "--reference", tmp_path / "nope.cif")
    assert res.exit_code == 2
    assert "does not exist" in res.stderr
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"x": 1}]))
    (tmp_path / "ok.cif").write_text(Structure(Lattice.cubic(3), ["Zn"], [[0, 0, 0]]).to(fmt="cif"))
    res = cli("analysis", "locality", tmp_path / "ok.cif", "--reference", bad)
    assert res.exit_code == 2
    assert "not a structure" in res.stderr


def test_locality_against_shipped_references(cli, tmp_path):
    from chggen_flows.core.analysis.references import shipped_structures

    # A known Li-Si compound against the shipped Li-Si compounds: its own pairs are there.
    lisi = next(
        s for s in shipped_structures(["Li", "Si"]) if s.composition.reduced_formula == "LiSi"
    )
    lisi.to(filename=str(tmp_path / "LiSi.cif"))
    res = cli(
        "analysis",
        "locality",
        tmp_path / "LiSi.cif",
        "-r",
        "offline",
        "--json",
        "--method",
        "cutoff",
    )
    assert res.exit_code == 0, res.stderr
    data = json.loads(res.stdout)
    compounds = [s for s in shipped_structures(["Li", "Si"]) if len(s.composition.elements) == 2]
    assert data["n_reference"] == len(compounds) == 7  # LiSi x2, Li12Si7 ... Li21Si5
    assert set(data["rdf_distance"]) == {"Li-Li", "Li-Si", "Si-Si"}
    assert all(d < 1.0 for d in data["rdf_distance"].values())

    (tmp_path / "cu.cif").write_text(
        Structure(Lattice.cubic(3.6), ["Cu", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]).to(fmt="cif")
    )
    res = cli("analysis", "locality", tmp_path / "cu.cif", "-r", "offline")
    assert res.exit_code == 2
    assert "no known compounds of Cu-O" in res.stderr


def test_locality_needs_files_or_campaign(cli, tmp_path):
    res = cli("analysis", "locality", "--reference", "offline")
    assert res.exit_code == 2
    assert "either as files or with --campaign" in res.stderr
