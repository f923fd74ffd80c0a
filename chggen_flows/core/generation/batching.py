"""Packing candidates of different sizes and cells into one batched graph, and sizing batches.

A batch is the concatenation of all atoms of its structures (``batch[i]`` is the
structure of atom ``i``) plus one 3x3 cell per structure, the layout the score model
takes. Per-structure reductions (norms for the Langevin step) are segment sums over
``batch``, so structures in one batch never share a step size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

# Bytes per atom of one inference call of a score function that gives no estimate of
# its own (a ScoreModel does: ``inference_bytes_per_atom``, from its config): the
# shipped CPU-sized model's sum of all allocations measured with torch.profiler
# (float32; an upper bound on the peak). Used to size CUDA batches; a batch that still
# runs out of memory halves the limit (see ``sample_jobs``).
DEFAULT_BYTES_PER_ATOM = 400_000
# CPU batches beyond a few thousand atoms gain nothing (the model is compute-bound)
# and delay the first finished chunk.
CPU_MAX_BATCH_ATOMS = 4096


@dataclass
class PackedBatch:
    """Atoms of several structures packed into flat tensors.

    Attributes
    ----------
    species
        LongTensor[N], atomic numbers.
    lattice
        Tensor[B, 3, 3], rows are lattice vectors (Å).
    batch
        LongTensor[N], structure index of each atom, atoms grouped by structure.
    natoms
        LongTensor[B], atoms per structure.
    """

    species: torch.Tensor
    lattice: torch.Tensor
    batch: torch.Tensor
    natoms: torch.Tensor

    @classmethod
    def from_lists(
        cls,
        species: Sequence[Sequence[int]],
        lattices: Sequence[np.ndarray],
        device: torch.device,
        dtype: torch.dtype,
    ) -> PackedBatch:
        """Pack per-structure atomic numbers and 3x3 lattices (rows = vectors)."""
        natoms = torch.tensor([len(s) for s in species], dtype=torch.long, device=device)
        flat = [z for s in species for z in s]
        return cls(
            species=torch.tensor(flat, dtype=torch.long, device=device),
            lattice=torch.tensor(np.stack(lattices), dtype=dtype, device=device),
            batch=torch.repeat_interleave(torch.arange(len(species), device=device), natoms),
            natoms=natoms,
        )

    @property
    def n_structures(self) -> int:
        """Number of structures B."""
        return int(self.natoms.numel())

    def wrap(self, pos: torch.Tensor) -> torch.Tensor:
        """Wrap Cartesian positions into their cells (fractional coordinates in [0, 1))."""
        frac = self.to_fractional(pos)
        return self.to_cartesian(frac - torch.floor(frac))

    @cached_property
    def inverse_lattice(self) -> torch.Tensor:
        """Per-structure inverse cells (computed once: wrapping happens every step)."""
        return torch.linalg.inv(self.lattice)

    def to_fractional(self, pos: torch.Tensor) -> torch.Tensor:
        """Cartesian -> fractional coordinates, each atom with its own cell."""
        return torch.einsum("ni,nij->nj", pos, self.inverse_lattice[self.batch])

    def to_cartesian(self, frac: torch.Tensor) -> torch.Tensor:
        """Fractional -> Cartesian coordinates, each atom with its own cell."""
        return torch.einsum("ni,nij->nj", frac, self.lattice[self.batch])

    def structure_norm(self, vectors: torch.Tensor) -> torch.Tensor:
        """L2 norm of each structure's stacked per-atom vectors."""
        squared = (vectors * vectors).sum(dim=-1)
        total = torch.zeros(self.n_structures, dtype=vectors.dtype, device=vectors.device)
        return total.index_add_(0, self.batch, squared).sqrt()


def plan_chunks(
    sizes: Sequence[int], max_batch_atoms: int, max_batch_size: int | None = None
) -> list[list[int]]:
    """Split candidates (in order) into chunks of at most ``max_batch_atoms`` atoms.

    A candidate larger than the limit gets a chunk of its own. Order is kept so that
    chunk boundaries never change which candidate gets which seed.
    """
    chunks: list[list[int]] = []
    current: list[int] = []
    atoms = 0
    for index, size in enumerate(sizes):
        full = max_batch_size is not None and len(current) >= max_batch_size
        if current and (atoms + size > max_batch_atoms or full):
            chunks.append(current)
            current, atoms = [], 0
        current.append(index)
        atoms += size
    if current:
        chunks.append(current)
    return chunks


def auto_max_batch_atoms(
    device: torch.device, bytes_per_atom: int = DEFAULT_BYTES_PER_ATOM, fraction: float = 0.6
) -> int:
    """Largest batch (in atoms) that fits a fraction of the free memory of ``device``.

    On CUDA this reads the free memory now (``torch.cuda.mem_get_info``); the sampler
    also halves a chunk and retries if a forward pass still runs out of memory. On
    the CPU the model is compute-bound, so a fixed moderate size is used.
    """
    if device.type != "cuda":
        return CPU_MAX_BATCH_ATOMS
    free, _total = torch.cuda.mem_get_info(device)
    return max(1, int(free * fraction) // bytes_per_atom)
