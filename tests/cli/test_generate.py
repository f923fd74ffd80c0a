"""``chggen generate``: CIFs + summary.json on success, exit 2 and nothing written on bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from chggen_flows.core.model import ScoreModel, ScoreModelConfig, save_score_model

FAST = ("--n-levels", "4", "--n-corrector", "1", "--device", "cpu", "--no-progress")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = ScoreModel(ScoreModelConfig.preset("tiny", elements=("Li", "Zn", "P", "S")))
    return save_score_model(model, tmp_path_factory.mktemp("model") / "tiny.pt")


def test_help_lists_modes_and_options(cli):
    res = cli("generate", "--help")
    assert res.exit_code == 0
    for option in (
        "--formula-units",
        "--host",
        "--guests",
        "--checkpoint",
        "--batch-size",
        "--seed",
    ):
        assert option in res.stdout


def test_unconditional_writes_one_cif_per_candidate(cli, checkpoint, tmp_path):
    out = tmp_path / "gen"
    args = (
        "ZnPS3",
        "-z",
        "2",
        "--num",
        "3",
        "--out",
        out,
        "--checkpoint",
        checkpoint,
        "--seed",
        "4",
    )
    res = cli("generate", *args, *FAST, "--min-distance", "0")
    assert res.exit_code == 0, res.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["mode"] == "unconditional" and summary["n_total"] == 3
    assert sorted(p.name for p in out.iterdir()) == [
        "candidate_0000.cif", "candidate_0001.cif", "candidate_0002.cif", "summary.json",
    ]  # fmt: skip
    for record in summary["candidates"]:
        structure = Structure.from_file(out / record["file"])
        assert structure.composition.reduced_formula == "ZnPS3" and len(structure) == 10
        assert record["metadata"]["v0_source"] == "regression"
        assert structure.volume == pytest.approx(record["metadata"]["volume"], rel=1e-4)
    again = tmp_path / "again"
    assert (
        cli(
            "generate", *args[:-4], "--out", again, *args[-4:], *FAST, "--min-distance", "0"
        ).exit_code
        == 0
    )
    assert (again / "candidate_0001.cif").read_text() == (out / "candidate_0001.cif").read_text()


def test_inpainting_keeps_the_host(cli, checkpoint, tmp_path):
    host = Structure.from_spacegroup(
        "F-43m", Lattice.cubic(5.4), ["Zn", "S"], [[0, 0, 0], [0.25] * 3]
    )
    host.to(filename=str(tmp_path / "host.cif"))
    out = tmp_path / "inp"
    res = cli(
        "generate", "--host", tmp_path / "host.cif", "--guests", "Li:2", "--num", "2", "--out", out,
        "--checkpoint", checkpoint, "--jump-length", "2", "--n-resample", "2", *FAST,
    )  # fmt: skip
    assert res.exit_code == 0, res.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["mode"] == "inpaint"
    result = Structure.from_file(out / "candidate_0000.cif")
    assert result.composition["Li"] == 2
    # the CIF groups sites by element; every host site is still there, unmoved
    for site in host:
        same = [s for s in result if s.specie == site.specie]
        diff = np.array([s.frac_coords - site.frac_coords for s in same])
        assert np.abs(diff - np.round(diff)).max(axis=1).min() < 1e-6


@pytest.mark.parametrize(
    "args",
    [
        ("Xx2",),
        ("ZnPS3", "--lattice", "pentagonal"),
        ("--host", "missing.cif", "--guests", "Li:2"),
        ("--host", "HOST", "--guests", "Li"),
        ("--host", "HOST", "--guests", "Qq:2"),
        ("LiSi",),  # Si is not in the checkpoint's elements
        (),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(cli, checkpoint, tmp_path, args):
    host = Structure(Lattice.cubic(4.0), ["Zn"], [[0, 0, 0]])
    host.to(filename=str(tmp_path / "host.cif"))
    args = tuple(str(tmp_path / "host.cif") if a == "HOST" else a for a in args)
    out = tmp_path / "out"
    res = cli("generate", *args, "--out", out, "--checkpoint", checkpoint, *FAST)
    assert res.exit_code == 2, (res.stdout, res.stderr)
    assert "Error" in res.stderr
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["host.cif"]
