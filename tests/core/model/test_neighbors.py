"""Neighbour lists agree with pymatgen and vesin on small, skewed and batched cells."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from chggen_flows.core.model import neighbors
from chggen_flows.core.model.neighbors import (
    batched_neighbor_list,
    plan_neighbors,
    reference_neighbor_list,
)


def _pymatgen_pairs(structure: Structure, cutoff: float) -> list[tuple[int, int, float]]:
    center, neighbor, _, dist = structure.get_neighbor_list(cutoff)
    keep = dist > 1e-8
    return sorted(
        (int(i), int(j), round(float(d), 6))
        for i, j, d in zip(center[keep], neighbor[keep], dist[keep], strict=True)
    )


def _our_pairs(structures: list[Structure], cutoff: float) -> list[list[tuple[int, int, float]]]:
    pos = torch.tensor(np.concatenate([s.cart_coords for s in structures]))
    lattice = torch.tensor(np.stack([s.lattice.matrix for s in structures]))
    counts = [len(s) for s in structures]
    batch = torch.repeat_interleave(torch.arange(len(structures)), torch.tensor(counts))
    graph = batched_neighbor_list(pos, lattice, batch, cutoff)
    dist = graph.vector.norm(dim=-1)
    out, start = [], 0
    for b, n in enumerate(counts):
        mask = batch[graph.center] == b
        out.append(
            sorted(
                (int(i) - start, int(j) - start, round(float(d), 6))
                for i, j, d in zip(
                    graph.center[mask], graph.neighbor[mask], dist[mask], strict=True
                )
            )
        )
        start += n
    return out


def _cells() -> list[Structure]:
    rng = np.random.default_rng(0)
    small = Structure(Lattice.cubic(2.1), ["Li"], [[0.1, 0.2, 0.3]])  # cell << cutoff
    skewed = Structure(
        Lattice.from_parameters(3.0, 3.5, 9.0, 60.0, 115.0, 65.0),  # strongly sheared
        ["Si", "Li", "Li"],
        rng.random((3, 3)),
    )
    outside = Structure(  # coordinates outside [0, 1) must not matter
        Lattice.hexagonal(3.2, 5.1), ["Zn", "S"], [[1.4, -0.3, 0.2], [-0.7, 0.5, 2.1]]
    )
    larger = Structure(Lattice.monoclinic(6.0, 7.0, 8.0, 100.0), ["Li"] * 12, rng.random((12, 3)))
    return [small, skewed, outside, larger]


# cutoffs avoid lattice lengths: at exactly the cutoff pymatgen includes a pair, vesin not
@pytest.mark.parametrize("cutoff", [3.3, 5.0, 7.2])
def test_matches_pymatgen_on_small_and_skewed_cells(cutoff):
    structures = _cells()
    ours = _our_pairs(structures, cutoff)
    for structure, pairs in zip(structures, ours, strict=True):
        expected = _pymatgen_pairs(structure, cutoff)
        assert len(pairs) == len(expected)
        assert pairs == expected


@pytest.mark.parametrize("batched", [False, True])
def test_vectors_follow_positions_and_lattice(batched):
    structure = _cells()[1]
    pos = torch.tensor(structure.cart_coords, requires_grad=True)
    lattice = torch.tensor(structure.lattice.matrix, requires_grad=True)
    plan = plan_neighbors(lattice[None], [3], 5.0) if batched else None
    graph = batched_neighbor_list(
        pos, lattice[None], torch.zeros(3, dtype=torch.long), 5.0, plan=plan
    )
    graph.vector.norm(dim=-1).sum().backward()
    assert pos.grad is not None and torch.isfinite(pos.grad).all()
    assert lattice.grad is not None and torch.isfinite(lattice.grad).all()


@pytest.mark.parametrize("batched", [False, True])
def test_max_neighbors_keeps_the_nearest(batched):
    structure = _cells()[3]
    pos = torch.tensor(structure.cart_coords)
    lattice = torch.tensor(structure.lattice.matrix)[None]
    batch = torch.zeros(len(structure), dtype=torch.long)
    plan = plan_neighbors(lattice, [len(structure)], 6.0) if batched else None
    full = batched_neighbor_list(pos, lattice, batch, 6.0, plan=plan)
    capped = batched_neighbor_list(pos, lattice, batch, 6.0, max_neighbors=5, plan=plan)
    for atom in range(len(structure)):
        d_full = full.vector[full.center == atom].norm(dim=-1).sort().values
        d_capped = capped.vector[capped.center == atom].norm(dim=-1).sort().values
        assert len(d_capped) == min(5, len(d_full))
        torch.testing.assert_close(d_capped, d_full[: len(d_capped)])


def _edges(graph, decimals: int = 6) -> list[tuple]:
    """Edges as sorted (center, neighbor, vector) tuples, vectors rounded."""
    rows = zip(graph.center.tolist(), graph.neighbor.tolist(), graph.vector.tolist(), strict=True)
    return sorted((i, j, *(round(x, decimals) for x in v)) for i, j, v in rows)


@pytest.mark.parametrize("cutoff", [3.3, 5.0, 7.2])
def test_batched_search_matches_vesin_edge_for_edge(cutoff):
    # cells shorter than the cutoff, strongly sheared cells, atoms outside the cell
    structures = _cells()
    pos = torch.tensor(np.concatenate([s.cart_coords for s in structures]))
    pos[3] += torch.tensor([7.0, -12.0, 3.0])  # far outside its cell
    lattice = torch.tensor(np.stack([s.lattice.matrix for s in structures]))
    counts = [len(s) for s in structures]
    batch = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts))
    plan = plan_neighbors(lattice, counts, cutoff)  # the batched search on any device
    ours = batched_neighbor_list(pos, lattice, batch, cutoff, plan=plan)
    theirs = reference_neighbor_list(pos, lattice, counts, cutoff)
    assert len(ours.center) == len(theirs.center)
    assert _edges(ours) == _edges(theirs)


def test_plan_reused_for_new_positions_and_fallback(monkeypatch):
    structures = _cells()
    lattice = torch.tensor(np.stack([s.lattice.matrix for s in structures]))
    counts = [len(s) for s in structures]
    batch = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts))
    plan = plan_neighbors(lattice, counts, 5.0)
    # a structure too large for the all-pairs candidates goes to vesin
    monkeypatch.setattr(neighbors, "MAX_PAIRS_PER_STRUCTURE", 1000)
    mixed = plan_neighbors(lattice, counts, 5.0)
    assert mixed.fallback and mixed.n_candidates < plan.n_candidates
    rng = np.random.default_rng(4)
    for _ in range(3):  # the cells stay, the atoms move (sampling)
        frac = torch.tensor(rng.random((sum(counts), 3)))
        pos = torch.einsum("ni,nij->nj", frac, lattice[batch])
        expected = _edges(reference_neighbor_list(pos, lattice, counts, 5.0))
        assert _edges(batched_neighbor_list(pos, lattice, batch, 5.0, plan=plan)) == expected
        assert _edges(batched_neighbor_list(pos, lattice, batch, 5.0, plan=mixed)) == expected


def test_float32_search_matches_vesin():
    structures = random_cells(16)
    pos = torch.tensor(np.concatenate([s.cart_coords for s in structures]), dtype=torch.float32)
    lattice = torch.tensor(np.stack([s.lattice.matrix for s in structures]), dtype=torch.float32)
    counts = [len(s) for s in structures]
    batch = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts))
    plan = plan_neighbors(lattice, counts, 5.0)
    ours = batched_neighbor_list(pos, lattice, batch, 5.0, plan=plan)
    theirs = reference_neighbor_list(pos, lattice, counts, 5.0)
    assert _edges(ours, 4) == _edges(theirs, 4)


def random_cells(count: int) -> list[Structure]:
    """Skewed cells of 2-12 atoms at 8-30 Å^3/atom (some shorter than the cutoff)."""
    rng = np.random.default_rng(5)
    out = []
    for _ in range(count):
        n = int(rng.integers(2, 13))
        lattice = Lattice.from_parameters(1.0, *rng.uniform(0.6, 1.6, 2), *rng.uniform(55, 125, 3))
        lattice = lattice.scale(n * rng.uniform(8, 30))
        out.append(Structure(lattice, ["Li"] * n, rng.random((n, 3))))
    return out
