"""How many structures go into one model call: CPU rule, CUDA probe, out-of-memory signs.

One place for every backend: the sizes are in atoms per call, and the CUDA size is
measured per run from a probe call of the potential actually loaded (a SevenNet call
needs far more memory per atom than a CHGNet one).
"""

from __future__ import annotations

import gc
import math
from collections.abc import Sequence

import numpy as np
import torch

# Atoms per model call that keep a device busy without wasting memory. CPU, measured on
# 2 cores for CHGNet (one energy+forces+stress pass, docs/performance.md): cells of ~9
# atoms run 1.3-1.4x faster in batches of 2-8, cells of ~18 atoms 1.1-1.26x, cells of
# ~34 atoms gain nothing at 2 and lose 6-34% at 4-16; about 48 atoms per call is the
# sweet spot. CUDA: measured per run instead (a probe call of about PROBE_ATOMS atoms
# gives the peak bytes per atom, and MEMORY_FRACTION of the free GPU memory is used, see
# cuda_atoms_per_call). CUDA_ATOMS_PER_CALL is now the cap of that measurement and the
# size used when it cannot be made (a batch_size given, no memory statistics): 8,192
# atoms is an unmeasured guess at where a GPU's throughput stops growing with the batch
# (CHGNet is small: 0.4 M parameters), not a memory limit, so it is not raised blindly.
CPU_ATOMS_PER_CALL = 48
CUDA_ATOMS_PER_CALL = 8192
MAX_CPU_BATCH = 16
PROBE_ATOMS = 512
# Memory for the activations of a call, as a share of the free memory after the probe:
# the peak varies with the neighbour density of the structures (a probe sees a few), and
# the allocator fragments.
MEMORY_FRACTION = 0.6


def auto_batch_size(
    n_atoms: Sequence[int], device: torch.device, atoms_per_call: int | None = None
) -> int:
    """Structures per model call for structures of the given sizes on ``device``.

    ``atoms_per_call`` (a measured size, :func:`cuda_atoms_per_call`) replaces the
    device's default: :data:`CUDA_ATOMS_PER_CALL` on CUDA, the CPU rule otherwise.
    """
    if not n_atoms:
        return 1
    mean = max(1.0, float(np.mean(n_atoms)))
    if atoms_per_call or device.type == "cuda":
        atoms = atoms_per_call or CUDA_ATOMS_PER_CALL
        return max(1, min(len(n_atoms), int(atoms // mean)))
    return max(1, min(len(n_atoms), MAX_CPU_BATCH, round(CPU_ATOMS_PER_CALL / mean)))


def cuda_atoms_per_call(
    bytes_per_atom: float,
    free_bytes: float,
    fraction: float = MEMORY_FRACTION,
    cap: int = CUDA_ATOMS_PER_CALL,
) -> int:
    """Atoms per model call that fit ``fraction`` of ``free_bytes`` of GPU memory.

    Parameters
    ----------
    bytes_per_atom
        Peak memory of a probe call above what was allocated before it, per atom.
    free_bytes
        Free device memory after the probe (``torch.cuda.mem_get_info``, with the
        allocator's cache emptied).
    fraction
        Share of the free memory to use (the rest absorbs denser structures than the
        probe's and fragmentation).
    cap
        Upper bound, also returned when the measurement is unusable (zero, negative or
        not finite, e.g. without memory statistics).

    Returns
    -------
    int
        At least 1 and at most ``cap``.
    """
    if not (math.isfinite(bytes_per_atom) and bytes_per_atom > 0 and math.isfinite(free_bytes)):
        return cap
    return int(max(1, min(cap, fraction * max(free_bytes, 0.0) // bytes_per_atom)))


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is a device running out of memory (torch's, cuBLAS's, vesin's)."""
    return isinstance(exc, torch.cuda.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()
    )


class CudaMemory:
    """The CUDA memory statistics the relaxer sizes its calls by (replaceable in tests)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def start(self) -> int:
        """Reset the peak statistics; bytes allocated now."""
        torch.cuda.synchronize(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        return torch.cuda.memory_allocated(self.device)

    def peak(self) -> int:
        """Largest allocation since :meth:`start` (bytes)."""
        torch.cuda.synchronize(self.device)
        return torch.cuda.max_memory_allocated(self.device)

    def free(self) -> int:
        """Free device memory (bytes), the allocator's cached blocks returned first."""
        torch.cuda.empty_cache()
        return torch.cuda.mem_get_info(self.device)[0]

    def release(self) -> None:
        """Return the memory of a failed call (its tensors must be unreachable by now)."""
        gc.collect()
        torch.cuda.empty_cache()
