"""Batched CHGNet relaxation and its local-stability metrics (dE, displacement RMSD)."""

from __future__ import annotations

from chggen_flows.core.relax.batch import BatchRelaxer, auto_batch_size
from chggen_flows.core.relax.metrics import atom_displacements, displacement_rmsd, energy_drop
from chggen_flows.core.relax.records import RelaxRecord, RelaxSettings

__all__ = [
    "BatchRelaxer",
    "RelaxRecord",
    "RelaxSettings",
    "atom_displacements",
    "auto_batch_size",
    "displacement_rmsd",
    "energy_drop",
]
