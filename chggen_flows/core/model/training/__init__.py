"""Denoising score matching (DSM) training of the score model, resumable step by step.

The package, by responsibility:

* :mod:`.loss`: the DSM loss, minimum image, noise levels;
* :mod:`.config`: :class:`TrainConfig` (every setting of a run) and the fine-tuning start;
* :mod:`.splits`: validation split, hold-out and focus selection;
* :mod:`.transfer`: host-to-device batches without host syncs;
* :mod:`.validation`: the per-decade validation loss;
* :mod:`.history`: the run's counters and per-epoch log;
* :mod:`.run_files`: ``last.pt``, ``best_model.pt`` and their metadata (the noise range
  included);
* :mod:`.loop`: :func:`train`.
"""

from __future__ import annotations

from chggen_flows.core.model.training.config import TrainConfig, cosine_factor
from chggen_flows.core.model.training.history import HISTORY, RunState
from chggen_flows.core.model.training.loop import TrainResult, train
from chggen_flows.core.model.training.loss import (
    ScoreFn,
    dsm_loss,
    image_reach,
    minimum_image,
    sample_sigma,
    wrap_positions,
)
from chggen_flows.core.model.training.run_files import (
    BEST,
    LAST,
    read_train_config,
    training_metadata,
)
from chggen_flows.core.model.training.splits import TrainingSplits, training_splits
from chggen_flows.core.model.training.validation import validation_loss

__all__ = [
    "BEST",
    "HISTORY",
    "LAST",
    "RunState",
    "ScoreFn",
    "TrainConfig",
    "TrainResult",
    "TrainingSplits",
    "cosine_factor",
    "dsm_loss",
    "image_reach",
    "minimum_image",
    "read_train_config",
    "sample_sigma",
    "train",
    "training_metadata",
    "training_splits",
    "validation_loss",
    "wrap_positions",
]
