"""Periodic neighbour lists for a batch of crystal structures (vesin-torch).

Every periodic image within the cutoff is found (vesin searches as many cell
repetitions as the cutoff needs), so small and skewed cells are handled exactly; the
authors' code only looked at the +-1 neighbouring cells, which misses neighbours in
cells shorter than the cutoff.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

import torch
from vesin_torch import NeighborList


@dataclass(frozen=True)
class Graph:
    """Directed edges of a batched periodic graph.

    Attributes
    ----------
    center
        LongTensor[E]: index of the atom that receives the message.
    neighbor
        LongTensor[E]: index of the atom that sends it.
    vector
        FloatTensor[E, 3]: ``pos[neighbor] + shift @ lattice - pos[center]`` in Å,
        differentiable with respect to ``pos`` and ``lattice``.
    """

    center: torch.Tensor
    neighbor: torch.Tensor
    vector: torch.Tensor


def _nearest_k(center: torch.Tensor, dist: torch.Tensor, k: int) -> torch.Tensor:
    """Boolean mask keeping, for every center, its ``k`` nearest edges."""
    order = torch.argsort(dist, stable=True)
    order = order[torch.argsort(center[order], stable=True)]
    sorted_center = center[order]
    # rank of an edge within its center's group = position - position of the group start
    position = torch.arange(len(order), device=center.device)
    is_start = torch.ones_like(sorted_center, dtype=torch.bool)
    is_start[1:] = sorted_center[1:] != sorted_center[:-1]
    group_start = torch.cummax(torch.where(is_start, position, 0), dim=0).values
    keep = torch.zeros_like(center, dtype=torch.bool)
    keep[order] = (position - group_start) < k
    return keep


def batched_neighbor_list(
    pos: torch.Tensor,
    lattice: torch.Tensor,
    batch: torch.Tensor,
    cutoff: float,
    max_neighbors: int | None = None,
    counts: Sequence[int] | None = None,
) -> Graph:
    """Neighbour list of many periodic structures in one graph.

    Parameters
    ----------
    pos
        FloatTensor[N, 3], Cartesian positions in Å (need not be wrapped into the cell).
    lattice
        FloatTensor[B, 3, 3], rows are the lattice vectors.
    batch
        LongTensor[N], structure index of each atom; atoms of a structure are contiguous.
    cutoff
        Radial cutoff in Å.
    max_neighbors
        Keep at most this many nearest neighbours per atom (None: keep all).
    counts
        Atoms per structure, if the caller already knows them on the host (saves one
        device-to-host copy of ``batch``).

    Returns
    -------
    Graph
        Edges ``neighbor -> center`` with their Cartesian vectors. Self-pairs at zero
        distance are excluded; an atom's own periodic images are included.
    """
    if counts is None:
        counts = torch.bincount(batch, minlength=lattice.shape[0]).tolist()
    # one thread: systems are small, and vesin's own pool would fight torch's for the cores
    calculator = NeighborList(cutoff=float(cutoff), full_list=True, n_threads=1)
    centers, neighbors, shifts = [], [], []
    start = 0
    # vesin computes one system at a time; the loop does nothing else (per-structure
    # torch ops cost more than the search itself for small cells)
    points, boxes = pos.detach(), lattice.detach()
    with torch.no_grad():
        for b, n in enumerate(counts):
            i, j, s = calculator.compute(
                points=points[start : start + n],
                box=boxes[b],
                periodic=True,
                quantities="ijS",
            )
            centers.append(i)
            neighbors.append(j)
            shifts.append(s)
            start += n
    edges_per_structure = torch.tensor([len(i) for i in centers], device=pos.device)
    owner = torch.repeat_interleave(
        torch.arange(len(counts), device=pos.device), edges_per_structure
    )
    first_atom = torch.tensor(list(accumulate(counts, initial=0))[:-1], device=pos.device)
    center = torch.cat(centers).long() + first_atom[owner]
    neighbor = torch.cat(neighbors).long() + first_atom[owner]
    shift = torch.cat(shifts).to(pos.dtype)
    # vectors are recomputed from integer shifts so that autograd and dtype follow pos
    vector = pos[neighbor] - pos[center] + torch.einsum("ei,eij->ej", shift, lattice[owner])
    if max_neighbors is not None:
        keep = _nearest_k(center, vector.detach().norm(dim=-1), max_neighbors)
        center, neighbor, vector = center[keep], neighbor[keep], vector[keep]
    return Graph(center=center, neighbor=neighbor, vector=vector)
