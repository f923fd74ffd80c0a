"""``chggen generate --host`` with partial occupancies (issue 26): the disordered CIF
gives its own guests on the smallest whole supercell; the host sites stay fixed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from chggen_flows.core.model import ScoreModel, ScoreModelConfig, save_score_model

FAST = ("--n-levels", "4", "--n-corrector", "1", "--device", "cpu", "--no-progress")
DISORDERED = (
    Path(__file__).resolve().parents[1] / "test_data" / "hosts" / ("Li0.5CoO2_from_mp-22526.cif")
)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = ScoreModel(ScoreModelConfig.preset("tiny", elements=("Li", "Co", "O")))
    return save_score_model(model, tmp_path_factory.mktemp("model") / "tiny.pt")


def test_a_disordered_host_gives_its_own_guests(cli, checkpoint, tmp_path):
    out = tmp_path / "inp"
    res = cli(
        "generate", "--host", DISORDERED, "--num", "2", "--out", out,
        "--checkpoint", checkpoint, "--jump-length", "2", "--n-resample", "1", *FAST,
    )  # fmt: skip
    assert res.exit_code == 0, res.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["mode"] == "inpaint" and summary["n_total"] == 2
    source = summary["candidates"][0]["metadata"]["host_source"]
    # Li0.5 on the 3-Li conventional cell: 1.5 Li, whole on the doubled cell
    assert source["kind"] == "disordered" and source["multiple"] == 2
    assert source["guests"] == {"Li": 3} and source["rounding"] == {}
    result = Structure.from_file(out / "candidate_0000.cif")
    assert result.composition.formula == "Li3 Co6 O12"
    # every host site of the supercell is still there, unmoved
    from chggen_flows.core.hosts import disordered_host

    host = disordered_host(Structure.from_file(DISORDERED)).seed.host
    for site in host:
        same = [s for s in result if s.specie == site.specie]
        diff = np.array([s.frac_coords - site.frac_coords for s in same])
        assert np.abs(diff - np.round(diff)).max(axis=1).min() < 1e-4


@pytest.mark.parametrize(
    ("guests", "message"),
    [((), "--host needs --guests"), (("--guests", "Li:2"), "has partial occupancies")],
)
def test_wrong_guests_for_the_host_exit_2_and_write_nothing(
    cli, checkpoint, tmp_path, guests, message
):
    ordered = Structure(Lattice.cubic(4.0), ["Co"], [[0, 0, 0]])
    ordered.to(filename=str(tmp_path / "ordered.cif"))
    host = tmp_path / "ordered.cif" if not guests else DISORDERED
    out = tmp_path / "out"
    res = cli("generate", "--host", host, *guests, "--out", out, "--checkpoint", checkpoint, *FAST)
    assert res.exit_code == 2, (res.stdout, res.stderr)
    assert message in " ".join(res.stderr.split())
    assert not out.exists()
