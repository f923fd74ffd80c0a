"""The files of a training run: ``last.pt`` (resumable), ``best_model.pt`` (EMA weights)
and the metadata written into both.

A resumable checkpoint is a model file (the EMA weights, loadable by
:func:`~chggen_flows.core.model.load_score_model`) plus a ``resume`` section: the raw
weights, the optimiser, the run's counters and history, the noise generator's state and
the :class:`TrainConfig`, so that a resumed run continues with exactly the numbers an
uninterrupted one would have used.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from chggen_flows.core.model.checkpoint import (
    atomic_save,
    model_from_payload,
    model_payload,
    read_checkpoint,
)
from chggen_flows.core.model.network import ScoreModel
from chggen_flows.core.model.training.config import TrainConfig
from chggen_flows.core.model.training.history import RunState
from chggen_flows.errors import CheckpointError

LAST = "last.pt"
BEST = "best_model.pt"


def training_metadata(state: RunState, config: TrainConfig) -> dict[str, Any]:
    """What a model file says about the run that made it (``model.training_metadata``).

    ``sigma_min`` and ``sigma_max`` are the noise range the model was trained on: the
    sampler checks its schedule against them (see
    :func:`~chggen_flows.core.model.checkpoint.check_noise_range`).
    """
    last = state.history[-1] if state.history else {}
    return {
        "epochs_completed": state.epoch,
        "global_step": state.global_step,
        "wall_s": round(state.wall_s, 1),
        "atoms_seen": state.atoms_seen,
        "best_val_loss": best
        if math.isfinite(best := min(state.best_saved, state.best_val))
        else None,
        "val_loss_by_decade": last.get("val_loss_by_decade"),
        "data": [str(p) for p in config.data],
        "max_atoms": config.max_atoms,
        "init_from": str(config.init_from) if config.init_from else None,
        "focus": list(config.focus),
        "focus_only": config.focus_only,
        "holdout": list(config.holdout),
        "val_fraction": config.val_fraction,
        "seed": config.seed,
        "sigma_min": config.sigma_min,
        "sigma_max": config.sigma_max,
    }


def save_best(ema: ScoreModel, state: RunState, config: TrainConfig, path: Path) -> Path:
    """The EMA weights as a model file, with the run's metadata."""
    return atomic_save(model_payload(ema, training=training_metadata(state, config)), path)


def save_resumable(
    path: Path,
    model: ScoreModel,
    ema: ScoreModel,
    optimizer: torch.optim.Optimizer,
    state: RunState,
    noise_rng: torch.Generator,
    config: TrainConfig,
) -> Path:
    """``last.pt``: a model file of the EMA weights plus everything needed to resume."""
    payload = model_payload(ema, training=training_metadata(state, config))
    payload["resume"] = {
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "state": state.counters(),
        "history": json.dumps(state.history),
        "noise_rng": noise_rng.get_state(),
        "train_config": config.model_dump(mode="json"),
    }
    return atomic_save(payload, path)


@dataclass
class Resumed:
    """A run read back from its ``last.pt``."""

    model: ScoreModel
    ema: ScoreModel
    state: RunState
    optimizer_state: dict[str, Any]
    noise_rng_state: torch.Tensor


def load_resumable(path: Path) -> Resumed:
    """The weights, counters and generator state saved by :func:`save_resumable`."""
    payload = read_checkpoint(path, kind="training")
    if "resume" not in payload:
        raise CheckpointError(f"{path} is a model file, not a resumable training checkpoint")
    ema = model_from_payload(payload, path)  # payload["state_dict"] holds the EMA weights
    model = copy.deepcopy(ema)
    model.load_state_dict(payload["resume"]["model"])
    resume = payload["resume"]
    state = RunState(**resume["state"], history=json.loads(resume["history"]))
    return Resumed(model, ema, state, resume["optimizer"], resume["noise_rng"])


def read_train_config(output_dir: str | Path) -> TrainConfig:
    """The TrainConfig stored in ``output_dir/last.pt`` (to resume a run)."""
    payload = read_checkpoint(Path(output_dir) / LAST, kind="training")
    if "resume" not in payload:
        raise CheckpointError(
            f"{Path(output_dir) / LAST} is a model file, not a resumable training checkpoint"
        )
    return TrainConfig(**payload["resume"]["train_config"])
