"""Batched CHGNet relaxation and its local-stability metrics (dE, displacement RMSD).

The names below load on first use (PEP 562), so that ``RelaxSettings`` (the relax
section of a spec, the CLI's defaults) comes without CHGNet and torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chggen_flows.core.relax.batch import BatchRelaxer, auto_batch_size
    from chggen_flows.core.relax.metrics import (
        atom_displacements,
        displacement_rmsd,
        energy_drop,
    )
    from chggen_flows.core.relax.records import RelaxRecord, RelaxSettings

#: Public name -> module of this package that defines it.
_EXPORTS = {
    "BatchRelaxer": "batch",
    "auto_batch_size": "batch",
    "atom_displacements": "metrics",
    "displacement_rmsd": "metrics",
    "energy_drop": "metrics",
    "RelaxRecord": "records",
    "RelaxSettings": "records",
}

__all__ = [
    "BatchRelaxer",
    "RelaxRecord",
    "RelaxSettings",
    "atom_displacements",
    "auto_batch_size",
    "displacement_rmsd",
    "energy_drop",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
