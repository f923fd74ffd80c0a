"""Batched relaxation with a choice of potentials, and its local-stability metrics."""

from __future__ import annotations

from chggen_flows.core.relax.engine import BatchRelaxer
from chggen_flows.core.relax.memory import auto_batch_size
from chggen_flows.core.relax.metrics import atom_displacements, displacement_rmsd, energy_drop
from chggen_flows.core.relax.potentials import (
    DEFAULT_POTENTIAL,
    Potential,
    load_potential,
    potential_names,
)
from chggen_flows.core.relax.records import RelaxRecord, RelaxSettings

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
