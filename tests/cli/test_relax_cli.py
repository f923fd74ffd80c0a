"""``chggen relax`` and ``chggen framework`` on real structure files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from pymatgen.core import Structure

DATA = Path(__file__).parents[1] / "test_data" / "structures"


def test_help(cli) -> None:
    for command in ("relax", "framework"):
        res = cli(command, "--help")
        assert res.exit_code == 0 and "--out" in res.stdout


def test_relax_writes_cifs_and_summary(cli, tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("ZnS_mp-560588", "ZnPS3_mp-3342"):
        shutil.copy(DATA / f"{name}.cif", inputs)
    out = tmp_path / "out"
    # one graph worker process: the GPU default's path, on the CPU
    res = cli(
        "relax", inputs, "--out", out, "--steps", "5", "--device", "cpu", "--threads", "1",
        "--graph-workers", "1",
    )  # fmt: skip
    assert res.exit_code == 0, res.stderr
    summary = json.loads((out / "summary.json").read_text())
    entries = {e["name"]: e for e in summary["structures"]}
    assert set(entries) == {"ZnS_mp-560588", "ZnPS3_mp-3342"}
    for name, entry in entries.items():
        relaxed = Structure.from_file(out / entry["cif"])
        original = Structure.from_file(DATA / f"{name}.cif")
        assert relaxed.composition == original.composition
        assert entry["n_steps"] <= 5 and entry["rejected_reason"] is None
        assert entry["de"] == entry["initial_energy_per_atom"] - entry["final_energy_per_atom"]
        # Known MP ground states stay symmetric after a short relaxation.
        assert entry["symmetric"] and entry["spacegroup_number"] > 2
    assert not list(out.glob(".chggen-*"))  # the staging directory is gone


def test_relax_bad_input_exits_2(cli, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert cli("relax", tmp_path / "missing.cif", "--out", out).exit_code == 2
    junk = tmp_path / "junk.cif"
    junk.write_text("this is not a CIF\n")
    assert cli("relax", junk, "--out", out).exit_code == 2
    empty = tmp_path / "empty"
    empty.mkdir()
    res = cli("relax", empty, "--out", out)
    assert res.exit_code == 2 and "no structure files" in res.stderr
    res = cli("relax", DATA / "ZnS_mp-560588.cif", "--out", out, "--model", tmp_path / "x.pth")
    assert res.exit_code == 2 and "checkpoint" in res.stderr
    res = cli("relax", DATA / "ZnS_mp-560588.cif", "--out", out, "--graph-workers", "-1")
    assert res.exit_code == 2 and "graph_workers" in res.stderr
    assert not out.exists() or not list(out.iterdir())


def test_framework_writes_hosts_and_summary(cli, tmp_path: Path) -> None:
    out = tmp_path / "hosts"
    res = cli(
        "framework",
        DATA / "LiSi_mp-570363.cif",
        DATA / "Li2S_mp-1125.cif",
        DATA / "ZnPS3_mp-3342.cif",
        "--guests",
        "Li",
        "--out",
        out,
    )
    assert res.exit_code == 0, res.stderr
    entries = {e["name"]: e for e in json.loads((out / "summary.json").read_text())["structures"]}
    lisi = entries["LiSi_mp-570363"]
    assert lisi["ok"] and lisi["spacegroup_symbol"] == "I4_1/a" and lisi["symprec"] == 0.1
    host = Structure.from_file(out / lisi["cif"])
    assert host.composition.reduced_formula == "Si"
    assert lisi["guest_counts"]["Li"] == len(host)  # LiSi: one Li per Si
    zps = entries["ZnPS3_mp-3342"]
    assert not zps["ok"] and "no guest atoms" in zps["reason"] and "cif" not in zps
    assert sorted(p.name for p in out.glob("*.cif")) == [
        "Li2S_mp-1125_host.cif",
        "LiSi_mp-570363_host.cif",
    ]


def test_framework_names_keep_the_dots_of_file_names(cli, tmp_path: Path) -> None:
    # li2o_0.03.cif and li2o_0.05.cif were both named "li2o_0" (cut at the first dot)
    for name in ("lisi_0.03.cif", "lisi_0.05.cif"):
        shutil.copy(DATA / "LiSi_mp-570363.cif", tmp_path / name)
    out = tmp_path / "hosts"
    res = cli(
        "framework", tmp_path / "lisi_0.03.cif", tmp_path / "lisi_0.05.cif", "-g", "Li", "-o", out
    )
    assert res.exit_code == 0, res.stderr
    names = [e["name"] for e in json.loads((out / "summary.json").read_text())["structures"]]
    assert names == ["lisi_0.03", "lisi_0.05"]
    assert sorted(p.name for p in out.glob("*.cif")) == ["lisi_0.03_host.cif", "lisi_0.05_host.cif"]


def test_framework_bad_input_exits_2(cli, tmp_path: Path) -> None:
    res = cli("framework", DATA / "LiSi_mp-570363.cif", "--guests", "Xx", "--out", tmp_path)
    assert res.exit_code == 2 and "unknown guest" in res.stderr
    res = cli(
        "framework", DATA / "LiSi_mp-570363.cif", "-g", "Li", "--cell", "big", "--out", tmp_path
    )
    assert res.exit_code == 2


def test_framework_mode_highest_recovers_the_rattled_antifluorite_host(cli, tmp_path: Path):
    """The issue's case: Li2O with every atom moved 0.15 Å; without Li the O sublattice
    is fcc. The paper's rule stops at a monoclinic rung, --mode highest finds Fm-3m."""
    from tests.core.test_symmetry import _antifluorite, _rattle

    path = tmp_path / "Li2O_rattled.cif"
    _rattle(_antifluorite(), 0.15, seed=1).to(filename=str(path))
    groups = {}
    for mode in ("first", "highest", "fan_out"):
        out = tmp_path / mode
        res = cli("framework", path, "-g", "Li", "--mode", mode, "--out", out)
        assert res.exit_code == 0, res.stderr
        summary = json.loads((out / "summary.json").read_text())
        assert summary["mode"] == mode
        groups[mode] = [e["spacegroup_symbol"] for e in summary["structures"]]
    assert groups["first"] == ["P2_1/c"]
    assert groups["highest"] == ["Fm-3m"]
    # fan_out: the most symmetric first, then other distinct groups, each its own CIF
    assert groups["fan_out"][0] == "Fm-3m" and len(set(groups["fan_out"])) == len(groups["fan_out"])
    cifs = sorted(p.name for p in (tmp_path / "fan_out").glob("*.cif"))
    assert cifs[0] == "Li2O_rattled_host.cif" and len(cifs) == len(groups["fan_out"])
    res = cli("framework", path, "-g", "Li", "--mode", "best", "--out", tmp_path / "x")
    assert res.exit_code == 2 and "mode" in res.stderr
