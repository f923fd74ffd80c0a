"""The prepared GPU session script runs end to end on the CPU with the tiny preset."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from chggen_flows.core.model.data import CrystalDataset

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "gpu_session.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("gpu_session", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(120)
def test_gpu_session_runs_on_cpu_with_the_tiny_preset(tmp_path):
    rng = np.random.default_rng(0)
    structures = [
        (f"x-{i}", Structure(Lattice.cubic(4.4), ["Li", "Li", "Si"], rng.random((3, 3))))
        for i in range(12)
    ]
    dataset = CrystalDataset.from_structures(structures).save(tmp_path / "d.dataset.pt")
    session = _load_script()
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
    session = _load_script()
    with pytest.raises(SystemExit):
        session.parse_args(["--dataset", "d", "--out", "o", "--train-seconds", "600"])
