"""The prepared GPU session script runs end to end on the CPU with the tiny preset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from chggen_flows.core.model.data import CrystalDataset
from tests.benchmarks.helpers import load_script


@pytest.mark.timeout(120)
def test_gpu_session_runs_on_cpu_with_the_tiny_preset(tmp_path):
    rng = np.random.default_rng(0)
    structures = [
        (f"x-{i}", Structure(Lattice.cubic(4.4), ["Li", "Li", "Si"], rng.random((3, 3))))
        for i in range(12)
    ]
    dataset = CrystalDataset.from_structures(structures).save(tmp_path / "d.dataset.pt")
    session = load_script("gpu_session")
    out = tmp_path / "out"
    args = ["--dataset", str(dataset), "--out", str(out), "--device", "cpu", "--tiny"]
    # one graph worker: the GPU run's path (workers + pipeline), on the CPU
    figures = session.main([*args, "--threads", "1", "--single", "2", "--graph-workers", "1"])
    saved = json.loads((out / "gpu_session.json").read_text())
    assert saved["training"]["steps"] > 0 and saved["training"]["atoms_per_s"] > 0
    assert Path(saved["training"]["checkpoint"]).exists()
    sampling = saved["sampling"]
    assert sampling["structures"] == 3 and sampling["structures_one_at_a_time"] == 2
    assert sampling["max_frac_difference"] < 1e-3  # batching changes rounding only
    assert "CUDA only" in sampling["syncs"]["skipped"]
    relax = saved["relaxation"]
    assert relax["structures"] == 2 and relax["batch_relaxer_s"] > 0
    assert relax["median_abs_energy_difference_ev_per_atom"] < 1e-3
    assert relax["graph_workers"] == 1 and relax["pipeline"] and relax["graph_s"] > 0
    assert figures["device"] == "cpu"


def test_training_time_must_fit_the_lease():
    session = load_script("gpu_session")
    with pytest.raises(SystemExit):
        session.parse_args(["--dataset", "d", "--out", "o", "--train-seconds", "600"])
