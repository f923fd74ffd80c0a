"""``chggen reference build/show``: a user's own hull from structure files, and what a
hull holds; ``chggen ehull`` names the hull and flags E_d next to a missing phase."""

from __future__ import annotations

import json
from pathlib import Path

from pymatgen.core import Lattice, Structure

LISI = (
    Path(__file__).parents[1] / "test_data" / "references" / "LiSi_mp-795_conventional_standard.cif"
)


def _inputs(tmp_path: Path) -> Path:
    folder = tmp_path / "known"
    folder.mkdir()
    Structure(Lattice.cubic(3.51), ["Li", "Li"], [[0, 0, 0], [0.5, 0.5, 0.5]]).to(
        filename=str(folder / "Li_bcc.cif")
    )
    Structure(
        Lattice.cubic(5.43),
        ["Si"] * 8,
        [
            [0, 0, 0],
            [0.5, 0.5, 0],
            [0.5, 0, 0.5],
            [0, 0.5, 0.5],
            [0.25, 0.25, 0.25],
            [0.75, 0.75, 0.25],
            [0.75, 0.25, 0.75],
            [0.25, 0.75, 0.75],
        ],
    ).to(filename=str(folder / "Si_diamond.cif"))
    (folder / "LiSi_mp-795.cif").write_text(LISI.read_text())
    return folder


def test_build_show_and_use_a_user_hull(cli, tmp_path):
    out = tmp_path / "my-Li-Si.json.gz"
    res = cli(
        "reference",
        "build",
        _inputs(tmp_path),
        "--chemsys",
        "Li-Si",
        "--out",
        out,
        "--missing",
        "Li3Si",
        "--device",
        "cpu",
    )
    assert res.exit_code == 0, res.stderr
    assert out.is_file() and "3 stable phases" in res.stdout and "lacks Li3Si" in res.stdout

    res = cli("reference", "show", "Li-Si", "--reference", out, "--json")
    assert res.exit_code == 0, res.stderr
    summary = json.loads(res.stdout)
    assert {p["formula"] for p in summary["stable"]} == {"Li", "Si", "LiSi"}
    assert {p["entry_id"] for p in summary["stable"]} >= {"LiSi_mp-795"}
    assert summary["missing"] == [{"formula": "Li3Si", "note": "Li3Si"}]

    # Li2Si lies on the Li..LiSi stretch that the missing Li3Si would cut: flagged.
    li2si = Structure(
        Lattice.hexagonal(4.3, 4.0),
        ["Li", "Li", "Si"],
        [[0, 0, 0], [1 / 3, 2 / 3, 0.5], [2 / 3, 1 / 3, 0.5]],
    )
    li2si.to(filename=str(tmp_path / "li2si.cif"))
    res = cli("ehull", tmp_path / "li2si.cif", "--reference", out, "--json", "--device", "cpu")
    assert res.exit_code == 0, res.stderr
    (row,) = json.loads(res.stdout)
    assert "lacks Li3Si" in row["warning"] and set(row["decomposition"]) == {"Li", "LiSi"}
    res = cli("ehull", tmp_path / "li2si.cif", "--reference", out, "--device", "cpu")
    assert "Hull: file:my-Li-Si.json.gz" in res.stdout and "(!)" in res.stdout


def test_bad_input_is_exit_2_and_writes_nothing(cli, tmp_path):
    out = tmp_path / "hull.json.gz"
    folder = _inputs(tmp_path)
    res = cli("reference", "build", folder, "--chemsys", "Li", "--out", out)
    assert res.exit_code == 2 and "outside Li" in res.stderr and not out.exists()
    res = cli("reference", "build", folder, "--chemsys", "Li-Si-Zn", "--out", out)
    assert res.exit_code == 2 and "no elemental structure of Zn" in res.stderr
    res = cli("reference", "build", folder, "--chemsys", "Li-Si", "--out", out, "--missing", "Qq2")
    assert res.exit_code == 2 and "--missing" in res.stderr and not out.exists()
    res = cli("reference", "build", folder, "--chemsys", "Li-Si", "--out", tmp_path / "x.txt")
    assert res.exit_code == 2 and "json.gz" in res.stderr


def test_show_the_shipped_zn_p_s_hull(cli):
    res = cli("reference", "show", "Zn-P-S")
    assert res.exit_code == 0, res.stderr
    assert "ZnPS3" in res.stdout and "missing" in res.stdout and "P4S10" in res.stdout
