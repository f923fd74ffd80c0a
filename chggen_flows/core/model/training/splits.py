"""Which structures a run trains and validates on: the id-hashed validation split, the
hold-out of whole chemical systems, and the focus on the structures related to some."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from chggen_flows.core.model.data import CrystalDataset, split_by_id
from chggen_flows.core.model.training.config import TrainConfig
from chggen_flows.errors import ConfigError

logger = logging.getLogger(__name__)


@dataclass
class TrainingSplits:
    """The structures of a run.

    Attributes
    ----------
    train_set, val_set
        Training structures (hold-out removed) and the general validation structures
        (at most ``max_val_structures``).
    epoch_items
        Indices into ``train_set`` making up one epoch, focus repeats included.
    focus_val
        The validation structures related to the focus systems (None without focus).
    """

    train_set: CrystalDataset
    val_set: CrystalDataset
    epoch_items: torch.Tensor
    focus_val: CrystalDataset | None = None


def training_splits(
    dataset: CrystalDataset,
    config: TrainConfig,
    info: Callable[..., Any] = logger.info,
) -> TrainingSplits:
    """The training, validation and focus structures ``config`` asks for.

    Parameters
    ----------
    dataset
        Every structure of the run's data.
    config
        ``val_fraction``, ``max_val_structures``, ``holdout``, ``focus``,
        ``focus_repeat`` and ``focus_only`` are read.
    info
        Where the counts are logged (ranks other than 0 pass a silent one).

    Raises
    ------
    ConfigError
        No training structure is left, or ``focus_only`` finds none related.
    """
    train_idx, val_idx = split_by_id(
        dataset, config.val_fraction, min_val=config.min_val_structures
    )
    if config.holdout:
        held = set(dataset.subset(train_idx).containing(config.holdout).tolist())
        train_idx = torch.as_tensor(
            [i for k, i in enumerate(train_idx.tolist()) if k not in held], dtype=torch.long
        )
        info("holdout %s: %d training structures removed", "/".join(config.holdout), len(held))
    train_set = dataset.subset(train_idx)
    val_set = dataset.subset(val_idx[: config.max_val_structures])
    if len(train_set) == 0:
        raise ConfigError("the validation split took every structure", hint="lower val_fraction")
    epoch_items = torch.arange(len(train_set))
    focus_val = None
    if config.focus:
        related = train_set.related_to(config.focus)
        if config.focus_only:
            if not len(related):
                raise ConfigError(
                    f"no training structure is related to {'/'.join(config.focus)}",
                    hint="add data with these elements, or drop focus_only",
                )
            epoch_items = related.repeat(config.focus_repeat)
        else:
            epoch_items = torch.cat([epoch_items, related.repeat(config.focus_repeat - 1)])
        all_val = dataset.subset(val_idx)
        focus_val = all_val.subset(all_val.related_to(config.focus))
        info(
            "focus %s: %d related training structures (x%d), %d validation",
            "/".join(config.focus), len(related), config.focus_repeat, len(focus_val),
        )  # fmt: skip
    return TrainingSplits(train_set, val_set, epoch_items, focus_val)
