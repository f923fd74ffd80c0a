"""Former home of the batched relaxer, kept so existing imports keep working.

The relaxer is now split by responsibility: :mod:`chggen_flows.core.relax.engine` (FIRE,
cell filter, symmetry constraints, batching), :mod:`chggen_flows.core.relax.memory`
(structures per call, CUDA probe, out-of-memory signs) and
:mod:`chggen_flows.core.relax.potentials` (the potentials behind it).
"""

from __future__ import annotations

from chggen_flows.core.relax.engine import (
    HELD_TOLERANCE,
    BatchRelaxer,
    close_contact,
)
from chggen_flows.core.relax.memory import (
    CPU_ATOMS_PER_CALL,
    CUDA_ATOMS_PER_CALL,
    MAX_CPU_BATCH,
    MEMORY_FRACTION,
    PROBE_ATOMS,
    CudaMemory,
    auto_batch_size,
    cuda_atoms_per_call,
    is_out_of_memory,
)
from chggen_flows.core.relax.potentials.chgnet import load_chgnet

__all__ = [
    "CPU_ATOMS_PER_CALL",
    "CUDA_ATOMS_PER_CALL",
    "HELD_TOLERANCE",
    "MAX_CPU_BATCH",
    "MEMORY_FRACTION",
    "PROBE_ATOMS",
    "BatchRelaxer",
    "CudaMemory",
    "auto_batch_size",
    "close_contact",
    "cuda_atoms_per_call",
    "is_out_of_memory",
    "load_chgnet",
]
