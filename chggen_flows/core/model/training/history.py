"""The counters and per-epoch history of a training run, saved and restored on resume."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HISTORY = "history.json"


@dataclass
class RunState:
    """Counters of a run; everything here is saved and restored on resume."""

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    lr_scale: float = 1.0
    bad_epochs: int = 0
    best_val: float = math.inf
    best_saved: float = math.inf
    wall_s: float = 0.0
    atoms_seen: int = 0
    epoch_loss_sum: float = 0.0
    epoch_steps: int = 0
    # epochs since the validation loss was last lower than every earlier one
    stale_epochs: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)

    def counters(self) -> dict[str, Any]:
        """Everything but the history (saved as plain numbers in the checkpoint)."""
        return {k: v for k, v in self.__dict__.items() if k != "history"}


def write_history(history: list[dict[str, Any]], out: Path) -> Path:
    """``out/history.json``, replaced atomically (readable while the run goes on)."""
    tmp = out / f".{HISTORY}.tmp"
    tmp.write_text(json.dumps(history, indent=1))
    return tmp.replace(out / HISTORY)
