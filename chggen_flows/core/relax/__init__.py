"""Batched relaxation with a choice of potentials, and its local-stability metrics
(dE, displacement RMSD).

The names below load on first use (PEP 562), so that ``RelaxSettings`` (the relax
section of a spec, the CLI's defaults) comes without CHGNet and torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chggen_flows.core.relax.engine import BatchRelaxer
    from chggen_flows.core.relax.memory import auto_batch_size
    from chggen_flows.core.relax.metrics import (
        atom_displacements,
        displacement_rmsd,
        energy_drop,
    )
    from chggen_flows.core.relax.potentials import (
        DEFAULT_POTENTIAL,
        Potential,
        load_potential,
        potential_names,
    )
    from chggen_flows.core.relax.records import RelaxRecord, RelaxSettings

#: Public name -> module of this package that defines it.
_EXPORTS = {
    "BatchRelaxer": "engine",
    "auto_batch_size": "memory",
    "DEFAULT_POTENTIAL": "potentials",
    "Potential": "potentials",
    "load_potential": "potentials",
    "potential_names": "potentials",
    "atom_displacements": "metrics",
    "displacement_rmsd": "metrics",
    "energy_drop": "metrics",
    "RelaxRecord": "records",
    "RelaxSettings": "records",
}

__all__ = [
    "DEFAULT_POTENTIAL",
    "BatchRelaxer",
    "Potential",
    "RelaxRecord",
    "RelaxSettings",
    "atom_displacements",
    "auto_batch_size",
    "displacement_rmsd",
    "energy_drop",
    "load_potential",
    "potential_names",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
