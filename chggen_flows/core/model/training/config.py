"""The settings of a training run (:class:`TrainConfig`, saved in its checkpoints), the
fine-tuning start it implies, and the learning-rate annealing it asks for."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chggen_flows.core.model.checkpoint import model_from_payload, read_checkpoint
from chggen_flows.core.model.config import ScoreModelConfig
from chggen_flows.core.model.data import CrystalDataset
from chggen_flows.core.model.network import ScoreModel, deepened
from chggen_flows.errors import CheckpointError, ConfigError

logger = logging.getLogger(__name__)

# ScoreModelConfig fields that change the shapes of the weights (num_blocks can grow)
_WEIGHT_SHAPES = (
    "elements",
    "hidden_irreps",
    "lmax",
    "num_bessel",
    "radial_hidden",
    "embedding_dim",
    "sigma_embedding_dim",
)


class TrainConfig(BaseModel):
    """Everything a training run depends on (saved in its checkpoints).

    Attributes
    ----------
    data
        Structure tables / files / directories (see ``read_structures``).
    output_dir
        Where ``last.pt`` (resumable), ``best_model.pt`` (EMA weights with the best
        validation loss) and ``history.json`` go.
    preset, model_overrides
        The architecture: ``ScoreModelConfig.preset(preset, **model_overrides)``; the
        element vocabulary defaults to the elements present in the data.
    max_atoms
        Skip cells with more atoms (CPU budget); None keeps all.
    init_from
        Fine-tuning: start from the (EMA) weights of this model file or checkpoint
        instead of a random initialisation. Its element vocabulary and sizes are kept;
        the architecture is the current one (smooth cutoff, every neighbour), which a
        format-1 file's weights fit unchanged; ``preset`` is ignored. A larger
        ``num_blocks`` in ``model_overrides`` grows the start model: the added blocks
        go last and start as the identity (see :func:`~.network.deepened`).
    focus
        Chemical systems ("Zn-P-S") whose related training structures (sharing two of
        their elements, or made of them only) are shown ``focus_repeat`` times per
        epoch; their validation structures get their own loss in the history.
    focus_only
        System-specific fine-tuning: an epoch is the focus-related training structures
        only (each ``focus_repeat`` times) and the best model is chosen by the focus
        validation loss; the general validation loss is still logged, to show what the
        model forgets elsewhere. Needs ``focus`` (and usually ``init_from``).
    decay_from_epoch
        From this epoch on, the learning rate follows a cosine from its current value
        down to ``min_lr`` at ``epochs`` (per step, so a resumed run continues the same
        curve). None keeps the warm-up + reduce-on-plateau schedule only. It may be set
        when a run is resumed, to anneal a long constant-rate run at its end.
    holdout
        Chemical systems whose structures (those holding all of a system's elements)
        are removed from the training split, e.g. to measure what the related
        chemistry alone teaches a model about an unseen system.
    min_val_structures
        At least this many validation structures, whatever ``val_fraction`` gives
        (the next ids by hash; see :func:`~chggen_flows.core.model.data.split_by_id`).
    stop_patience
        Early stopping: end the run after this many epochs without a lower validation
        loss (the one the best model is chosen by). None trains all ``epochs``.
    """

    model_config = ConfigDict(extra="forbid")

    data: list[Path]
    output_dir: Path = Path("runs/score_model")
    preset: str = "cpu"
    model_overrides: dict[str, Any] = Field(default_factory=dict)
    max_atoms: int | None = Field(default=30, ge=1)
    init_from: Path | None = None
    focus: list[str] = Field(default_factory=list)
    focus_repeat: int = Field(default=4, ge=1)
    focus_only: bool = False
    holdout: list[str] = Field(default_factory=list)
    val_fraction: float = Field(default=0.05, ge=0.0, lt=1.0)
    min_val_structures: int = Field(default=0, ge=0)
    stop_patience: int | None = Field(default=None, ge=1)
    max_val_structures: int = Field(default=512, ge=1)
    epochs: int = Field(default=30, ge=1)
    batch_size: int = Field(default=32, ge=1)
    lr: float = Field(default=2e-3, gt=0)
    weight_decay: float = Field(default=1e-4, ge=0)
    warmup_steps: int = Field(default=200, ge=0)
    lr_patience: int = Field(default=2, ge=0)
    lr_factor: float = Field(default=0.5, gt=0, lt=1)
    min_lr: float = Field(default=1e-5, ge=0)
    decay_from_epoch: int | None = Field(default=None, ge=0)
    ema_decay: float = Field(default=0.999, ge=0, lt=1)
    grad_clip: float = Field(default=1.0, gt=0)
    sigma_min: float = Field(default=1e-3, gt=0)
    sigma_max: float = Field(default=10.0, gt=0)
    seed: int = 0
    device: str = "auto"
    threads: int | None = Field(default=None, ge=1)
    checkpoint_every_steps: int = Field(default=200, ge=1)

    def model_config_for(self, dataset: CrystalDataset) -> ScoreModelConfig:
        """The architecture, with the data's elements unless the overrides fix them."""
        overrides = {"elements": dataset.elements, **self.model_overrides}
        return ScoreModelConfig.preset(self.preset, **overrides)

    def initial_model(self, dataset: CrystalDataset) -> ScoreModel:
        """A fresh model (seeded) or, with ``init_from``, the fine-tuning start."""
        torch.manual_seed(self.seed)
        if self.init_from is None:
            return ScoreModel(self.model_config_for(dataset))
        payload = read_checkpoint(self.init_from)
        try:
            start = ScoreModelConfig(**payload["config"])
        except (KeyError, TypeError, ValidationError) as exc:
            raise CheckpointError(
                f"{self.init_from} holds no valid score-model configuration",
                hint="start from a model file or checkpoint written by chggen train",
            ) from exc
        # current architecture: the format-1 defaults are not carried over
        try:
            target = ScoreModelConfig(
                **{
                    **start.model_dump(),
                    "max_neighbors": None,
                    "radial_envelope": "output",
                    **self.model_overrides,
                }
            )
        except ValidationError as exc:
            raise ConfigError(
                f"model_overrides do not give a valid architecture: {str(exc).splitlines()[0]}",
                hint="see ScoreModelConfig for the fields and their ranges",
            ) from exc
        # compared as validated values, so "32x0e + 16x1o" equals "32x0e+16x1o"
        resized = sorted(
            key
            for key in _WEIGHT_SHAPES
            if key in self.model_overrides and getattr(target, key) != getattr(start, key)
        )
        if resized:
            raise ConfigError(
                f"{self.init_from}'s weights do not fit a model with other {', '.join(resized)}",
                hint="only num_blocks can grow a trained model; train other sizes from scratch",
            )
        # more blocks than the start model: load it as it is, then add identity blocks
        if target.num_blocks < start.num_blocks:
            raise ConfigError(
                f"{self.init_from} has {start.num_blocks} interaction blocks; "
                f"num_blocks {target.num_blocks} would drop trained ones",
                hint=f"use num_blocks >= {start.num_blocks} in model_overrides, or train from scratch",
            )
        model = model_from_payload(
            {
                **payload,
                "config": target.model_copy(update={"num_blocks": start.num_blocks}).model_dump(),
            },
            self.init_from,
        )
        model = deepened(model, target.num_blocks)
        if model.noise_range not in (None, (self.sigma_min, self.sigma_max)):
            logger.warning(
                "%s was trained on sigma %g-%g Å; this run trains on %g-%g Å",
                self.init_from, *model.noise_range, self.sigma_min, self.sigma_max,
            )  # fmt: skip
        missing = sorted(set(dataset.elements) - set(model.elements))
        if missing:
            raise ConfigError(
                f"{self.init_from} does not know element(s) {', '.join(missing)} of the data",
                hint="fine-tune on structures of its elements, or train from scratch",
            )
        return model


def cosine_factor(config: TrainConfig, epoch: float) -> float:
    """The annealing factor of the learning rate at (fractional) ``epoch``.

    1 before ``config.decay_from_epoch`` (or without it), then a half cosine reaching
    0 at ``config.epochs``; the step's rate is floored at ``min_lr`` by the caller.
    """
    start = config.decay_from_epoch
    if start is None or epoch <= start:
        return 1.0
    span = max(config.epochs - start, 1)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (epoch - start) / span)))
