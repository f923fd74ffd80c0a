"""Shared helpers of the campaign tests: a tiny score model, tiny specs, worker processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from chggen_flows.settings import Settings

TEST_DATA = Path(__file__).resolve().parents[1] / "test_data" / "campaign"
REFERENCE_CSV = TEST_DATA / "li_si_reference.csv"
REPO = Path(__file__).resolve().parents[2]


def tiny_checkpoint(path: Path) -> Path:
    """An untrained tiny score model for Li and Si (seeded, so runs are reproducible)."""
    import torch

    from chggen_flows.core.model import ScoreModel, ScoreModelConfig, save_score_model

    torch.manual_seed(0)
    model = ScoreModel(ScoreModelConfig.preset("tiny", elements=("Li", "Si")))
    return save_score_model(model, path)


def tiny_spec(checkpoint: Path, **overrides: Any) -> dict[str, Any]:
    """A 4-candidate Li-Si spec (2 batches) with tiny sampler and relaxation settings."""
    spec: dict[str, Any] = {
        "name": "tiny-li-si",
        "compositions": ["Li3Si", "Li2Si"],
        "guests": ["Li"],
        "formula_units": [2],
        "lattices_per_composition": 1,
        "candidates_per_lattice": 2,
        "batch_size": 2,
        "v0": {"source": "value", "value": 20.0},
        "model": {"checkpoint": str(checkpoint), "device": "cpu"},
        "sampler": {"n_levels": 5, "n_corrector": 1},
        "inpaint": {"jump_length": 2, "n_resample": 1},
        "relax": {"max_steps": 3},
        # threshold above every E_d a tiny model can give: the gate always sends some
        "stability": {
            "reference": str(REFERENCE_CSV),
            "dft_threshold": 10.0,
            "dft_max_candidates": 2,
        },
        "seed": 3,
    }
    spec.update(overrides)
    return spec


def write_spec(directory: Path, spec: dict[str, Any], name: str = "spec.yaml") -> Path:
    """Write a spec dict as YAML and return its path."""
    path = directory / name
    path.write_text(yaml.safe_dump(spec))
    return path


def settings_env(settings: Settings) -> dict[str, str]:
    """Environment for a ``chggen`` subprocess using ``settings``' database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHGGEN_")}
    env.update(
        CHGGEN_MONGO_URI=settings.mongo_uri.get_secret_value(),
        CHGGEN_DATABASE=settings.database,
        CHGGEN_LAUNCHPAD_DATABASE=settings.launchpad_database,
        CHGGEN_DATA_DIR=str(settings.data_dir),
        CHGGEN_DEVICE="cpu",
        CHGGEN_NO_PROGRESS="1",
        OPENBLAS_NUM_THREADS="1",
        XDG_CONFIG_HOME=str(settings.data_dir / "xdg-config"),
    )
    return env


def start_worker(settings: Settings, *args: str, log: Path | None = None) -> subprocess.Popen:
    """``chggen run ARGS`` in a subprocess (a real worker process)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    out = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115 (closed with the process)
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "chggen"), "run", *args],
        env=settings_env(settings),
        stdout=out,
        stderr=subprocess.STDOUT,
        cwd=str(settings.data_dir),
    )


def wait_for(predicate, timeout: float, interval: float = 0.5) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds passed."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(interval)
    return False


def fw_states(launchpad, campaign: str) -> dict[int, str]:
    """``{fw_id: state}`` of a campaign's FireWorks."""
    return {
        fw["fw_id"]: fw["state"]
        for fw in launchpad.fireworks.find({"spec.campaign": campaign}, {"fw_id": 1, "state": 1})
    }


def stage_documents(store, campaign: str) -> list[dict]:
    """(stage, batch, uuid) of every StageDocument output of a campaign."""
    store.connect()
    return list(
        store.query(
            {"metadata.campaign": campaign, "output.@class": "StageDocument"},
            properties=["output.stage", "output.batch_id", "output.candidates.candidate_id"],
        )
    )
