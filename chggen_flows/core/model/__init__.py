"""The equivariant, noise-conditioned score model: network, neighbour lists, checkpoints.

Training (``chggen_flows.core.model.training``) is imported on demand so that loading
a model for sampling stays light.
"""

from __future__ import annotations

from chggen_flows.core.model.checkpoint import (
    default_checkpoint_path,
    load_score_model,
    resolve_checkpoint,
    save_score_model,
)
from chggen_flows.core.model.config import ScoreModelConfig
from chggen_flows.core.model.network import ScoreModel

__all__ = [
    "ScoreModel",
    "ScoreModelConfig",
    "default_checkpoint_path",
    "load_score_model",
    "resolve_checkpoint",
    "save_score_model",
]
