"""Periodic neighbour lists for a batch of crystal structures.

Every periodic image within the cutoff is found (as many cell repetitions as the
cutoff needs), so small and skewed cells are handled exactly; the authors' code only
looked at the +-1 neighbouring cells, which misses neighbours in cells shorter than
the cutoff.

Two searches give the same edges (and vectors, to rounding):

* on a GPU (``BATCHED_SEARCH_DEVICES``), one pure-torch search for the whole batch.
  The cells fix, per structure, which periodic images can hold a neighbour;
  :func:`plan_neighbors` enumerates the candidate pairs ``(center, neighbor, image)``
  once (a sampler keeps its cells for thousands of model calls and reuses the plan),
  and each call only measures the candidates and keeps those within the cutoff: one
  host sync per call (the number of edges), whatever the number of structures.
  vesin-torch has no batched call (0.6), and per structure it syncs about six times.
* on the CPU, where a sync costs nothing, vesin-torch's cell list, one call per
  structure (:func:`vesin_neighbor_list`): measuring all candidate pairs is 2-4x slower
  than vesin for 12-atom cells on one core and 20-80x for 100-250-atom cells
  (docs/performance.md, issue 16). vesin is also the reference of the tests and the
  fallback for structures with too many candidate pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import accumulate

import numpy as np
import torch
from vesin_torch import NeighborList

# A structure with more candidate pairs than this (atoms^2 x images; ~16 bytes each
# in the plan, plus the per-call distances) is searched by vesin instead: the
# all-pairs candidates grow with the square of the atom count, a cell list does not.
# 2M pairs is a 270-atom cell whose cutoff sphere reaches only the neighbouring cells.
MAX_PAIRS_PER_STRUCTURE = 2_000_000
# Device types on which batched_neighbor_list uses the batched search (elsewhere vesin).
BATCHED_SEARCH_DEVICES: tuple[str, ...] = ("cuda",)


def uses_batched_search(device: torch.device) -> bool:
    """Whether neighbour lists on ``device`` use the batched search (see module doc)."""
    return device.type in BATCHED_SEARCH_DEVICES


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


@dataclass(frozen=True)
class NeighborPlan:
    """Candidate pairs of a batch whose cells and atom counts are fixed.

    Built by :func:`plan_neighbors`; valid for any positions of the same atoms in the
    same cells (positions are wrapped into the cell before they are measured).

    Attributes
    ----------
    cutoff
        Radial cutoff in Å the images were chosen for.
    counts
        Atoms per structure.
    center, neighbor
        LongTensor[P]: atoms of each candidate pair (batch-wide indices).
    image
        LongTensor[P]: row of ``image_vectors`` / ``image_shifts`` of the pair.
    image_shifts
        Tensor[I, 3]: integer cell shift of each image (in the wrapped frame).
    image_vectors
        Tensor[I, 3]: ``image_shifts @ lattice`` of the image's structure, in Å.
    inverse_lattice
        Tensor[B, 3, 3]: inverse cells (to wrap positions).
    fallback
        Structures searched by vesin instead (too many candidate pairs).
    """

    cutoff: float
    counts: tuple[int, ...]
    center: torch.Tensor
    neighbor: torch.Tensor
    image: torch.Tensor
    image_shifts: torch.Tensor
    image_vectors: torch.Tensor
    inverse_lattice: torch.Tensor
    fallback: tuple[int, ...] = ()

    @property
    def n_candidates(self) -> int:
        """Candidate pairs measured per call (memory and time scale with it)."""
        return int(self.center.numel())

    def to(self, device: torch.device) -> NeighborPlan:
        """This plan on ``device``; a host plan goes to a GPU through pinned memory
        without blocking the host (a plan built per training step must not stall it)."""

        def move(tensor: torch.Tensor) -> torch.Tensor:
            if device.type != "cuda" or tensor.device.type != "cpu":
                return tensor.to(device)
            return tensor.pin_memory().to(device, non_blocking=True)

        fields = ("center", "neighbor", "image", "image_shifts", "image_vectors", "inverse_lattice")
        return replace(self, **{name: move(getattr(self, name)) for name in fields})


def image_reach(lattice: np.ndarray, cutoff: float) -> np.ndarray:
    """Cell shifts per axis that can hold a neighbour of an atom wrapped into the cell.

    Two wrapped atoms differ by less than one cell in each fractional coordinate, and a
    vector shorter than the cutoff has fractional coordinates at most ``cutoff / d_k``
    (``d_k`` the spacing of the lattice planes along axis k, ``1 / |column k of
    lattice^-1|``), so shifts up to ``floor(cutoff / d_k + 1)`` suffice; the small
    margin covers positions that float32 wrapping leaves a rounding error outside.

    Parameters
    ----------
    lattice
        [B, 3, 3] cells, rows are vectors (Å).
    cutoff
        Radial cutoff in Å.

    Returns
    -------
    np.ndarray
        [B, 3] integers.
    """
    inverse = np.linalg.inv(np.asarray(lattice, dtype=np.float64))
    spacing = 1.0 / np.linalg.norm(inverse, axis=-2)  # [B, 3]: columns of the inverse
    return np.floor(cutoff / spacing * (1 + 1e-6) + 1).astype(np.int64)


def plan_neighbors(
    lattice: torch.Tensor | np.ndarray,
    counts: Sequence[int],
    cutoff: float,
    device: torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> NeighborPlan:
    """Enumerate the candidate pairs of a batch (host work, once per set of cells).

    Parameters
    ----------
    lattice
        [B, 3, 3] cells, rows are vectors (Å). A device tensor is copied to the host
        (one sync); pass a host copy where there is one.
    counts
        Atoms per structure.
    cutoff
        Radial cutoff in Å.
    device, dtype
        Where and in which precision the plan's tensors live (default: the lattice's).

    Returns
    -------
    NeighborPlan
        Every ``(center, neighbor, image)`` of each structure but an atom with itself in
        its own cell.
    """
    if isinstance(lattice, torch.Tensor):
        device = lattice.device if device is None else device
        dtype = lattice.dtype if dtype is None else dtype
        cells = lattice.detach().cpu().double().numpy()
    else:
        cells = np.asarray(lattice, dtype=np.float64)
        device = torch.device("cpu") if device is None else device
        dtype = torch.get_default_dtype() if dtype is None else dtype
    counts = tuple(int(n) for n in counts)
    reach = image_reach(cells, cutoff)
    centers, neighbors, images, shifts, vectors, fallback = [], [], [], [], [], []
    first_atom = list(accumulate(counts, initial=0))
    n_images = 0
    for b, n in enumerate(counts):
        r = reach[b]
        grid = np.stack(
            np.meshgrid(*(np.arange(-k, k + 1) for k in r), indexing="ij"), axis=-1
        ).reshape(-1, 3)
        if n * n * len(grid) > MAX_PAIRS_PER_STRUCTURE:
            fallback.append(b)
            continue
        i, j, s = np.meshgrid(np.arange(n), np.arange(n), np.arange(len(grid)), indexing="ij")
        own_cell = (i == j) & (s == len(grid) // 2)  # the middle of the grid is shift 0
        keep = ~own_cell.ravel()
        centers.append(i.ravel()[keep] + first_atom[b])
        neighbors.append(j.ravel()[keep] + first_atom[b])
        images.append(s.ravel()[keep] + n_images)
        shifts.append(grid)
        vectors.append(grid @ cells[b])
        n_images += len(grid)

    def tensor(parts: list[np.ndarray], kind: torch.dtype, shape: tuple[int, ...]) -> torch.Tensor:
        array = np.concatenate(parts) if parts else np.zeros(shape)
        return torch.from_numpy(array).to(device=device, dtype=kind)

    return NeighborPlan(
        cutoff=float(cutoff),
        counts=counts,
        center=tensor(centers, torch.long, (0,)),
        neighbor=tensor(neighbors, torch.long, (0,)),
        image=tensor(images, torch.long, (0,)),
        image_shifts=tensor(shifts, dtype, (0, 3)),
        image_vectors=tensor(vectors, dtype, (0, 3)),
        inverse_lattice=torch.from_numpy(np.linalg.inv(cells)).to(device=device, dtype=dtype),
        fallback=tuple(fallback),
    )


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
    plan: NeighborPlan | None = None,
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
    plan
        Candidate pairs from :func:`plan_neighbors` for these cells and counts (a
        caller whose cells do not change between calls should build it once); with a
        plan the batched search is used on any device. None: the batched search with a
        new plan (copies the cells to the host) where :func:`uses_batched_search`,
        else vesin.

    Returns
    -------
    Graph
        Edges ``neighbor -> center`` with their Cartesian vectors. Self-pairs at zero
        distance are excluded; an atom's own periodic images are included.
    """
    if plan is None:
        if counts is None:
            counts = torch.bincount(batch, minlength=lattice.shape[0]).tolist()
        if not uses_batched_search(pos.device):
            center, neighbor, shift = vesin_neighbor_list(pos, lattice, counts, cutoff)
            return _graph(pos, lattice, batch, center, neighbor, shift, max_neighbors)
        plan = plan_neighbors(lattice, counts, cutoff, dtype=pos.dtype)
    elif plan.cutoff != cutoff:
        raise ValueError(f"the plan is for a cutoff of {plan.cutoff} Å, not {cutoff} Å")
    dtype = pos.dtype
    with torch.no_grad():
        # wrap (detached) into the cell: the plan's images assume wrapped atoms
        points = pos.detach()
        frac = torch.einsum("ni,nij->nj", points, plan.inverse_lattice.to(dtype)[batch])
        offset = torch.floor(frac)
        wrapped = points - torch.einsum("ni,nij->nj", offset, lattice.detach()[batch])
        vector = (
            wrapped[plan.neighbor] - wrapped[plan.center] + plan.image_vectors.to(dtype)[plan.image]
        )
        # in the positions' dtype (vesin measures in float64): a pair within rounding of
        # the cutoff may differ between the two, where the envelope gives it zero weight
        within = (vector * vector).sum(dim=-1) < cutoff * cutoff
        # the one host sync of the call: how many edges there are
        edge = torch.nonzero(within).squeeze(1)
        center, neighbor = plan.center[edge], plan.neighbor[edge]
        # shift relative to the unwrapped positions
        shift = plan.image_shifts.to(dtype)[plan.image[edge]] + offset[center] - offset[neighbor]
    if plan.fallback:
        extra = vesin_neighbor_list(pos, lattice, plan.counts, cutoff, plan.fallback)
        center = torch.cat([center, extra[0]])
        neighbor = torch.cat([neighbor, extra[1]])
        shift = torch.cat([shift, extra[2].to(dtype)])
    return _graph(pos, lattice, batch, center, neighbor, shift, max_neighbors)


def _graph(
    pos: torch.Tensor,
    lattice: torch.Tensor,
    batch: torch.Tensor,
    center: torch.Tensor,
    neighbor: torch.Tensor,
    shift: torch.Tensor,
    max_neighbors: int | None,
) -> Graph:
    """Edges with their vectors, optionally capped to the nearest ``max_neighbors``."""
    # vectors are recomputed from integer shifts so that autograd follows pos and lattice
    shift = shift.to(pos.dtype)
    vector = pos[neighbor] - pos[center] + torch.einsum("ei,eij->ej", shift, lattice[batch[center]])
    if max_neighbors is not None:
        keep = _nearest_k(center, vector.detach().norm(dim=-1), max_neighbors)
        center, neighbor, vector = center[keep], neighbor[keep], vector[keep]
    return Graph(center=center, neighbor=neighbor, vector=vector)


def vesin_neighbor_list(
    pos: torch.Tensor,
    lattice: torch.Tensor,
    counts: Sequence[int],
    cutoff: float,
    structures: Sequence[int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """vesin-torch's pairs of some structures of a batch, one search per structure.

    Parameters
    ----------
    pos, lattice
        As for :func:`batched_neighbor_list`.
    counts
        Atoms per structure.
    cutoff
        Radial cutoff in Å.
    structures
        Which structures to search (default: all).

    Returns
    -------
    tuple of torch.Tensor
        ``(center, neighbor, shift)``: batch-wide atom indices (LongTensor[E]) and
        integer cell shifts (Tensor[E, 3], vesin's dtype) with
        ``vector = pos[neighbor] - pos[center] + shift @ lattice``.
    """
    # one thread: systems are small, and vesin's own pool would fight torch's for the cores
    calculator = NeighborList(cutoff=float(cutoff), full_list=True, n_threads=1)
    first_atom = list(accumulate(counts, initial=0))
    points, boxes = pos.detach(), lattice.detach()
    centers, neighbors, shifts = [], [], []
    with torch.no_grad():
        for b in range(len(counts)) if structures is None else structures:
            start, stop = first_atom[b], first_atom[b + 1]
            i, j, s = calculator.compute(
                points=points[start:stop], box=boxes[b], periodic=True, quantities="ijS"
            )
            centers.append(i.long() + start)
            neighbors.append(j.long() + start)
            shifts.append(s)
    if not centers:
        empty = torch.zeros(0, dtype=torch.long, device=pos.device)
        return empty, empty, torch.zeros((0, 3), dtype=pos.dtype, device=pos.device)
    return torch.cat(centers), torch.cat(neighbors), torch.cat(shifts)


def reference_neighbor_list(
    pos: torch.Tensor, lattice: torch.Tensor, counts: Sequence[int], cutoff: float
) -> Graph:
    """The graph of :func:`batched_neighbor_list` from vesin's per-structure search."""
    batch = torch.repeat_interleave(
        torch.arange(len(counts), device=pos.device),
        torch.tensor(counts, device=pos.device),
        output_size=sum(counts),
    )
    center, neighbor, shift = vesin_neighbor_list(pos, lattice, counts, cutoff)
    return _graph(pos, lattice, batch, center, neighbor, shift, None)
