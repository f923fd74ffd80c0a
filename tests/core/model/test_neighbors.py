"""Neighbour lists agree with pymatgen on small, skewed and batched cells."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from chggen_flows.core.model.neighbors import batched_neighbor_list


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


def test_vectors_follow_positions_and_lattice():
    structure = _cells()[1]
    pos = torch.tensor(structure.cart_coords, requires_grad=True)
    lattice = torch.tensor(structure.lattice.matrix)[None]
    graph = batched_neighbor_list(pos, lattice, torch.zeros(3, dtype=torch.long), 5.0)
    graph.vector.norm(dim=-1).sum().backward()
    assert pos.grad is not None and torch.isfinite(pos.grad).all()


def test_max_neighbors_keeps_the_nearest():
    structure = _cells()[3]
    pos = torch.tensor(structure.cart_coords)
    lattice = torch.tensor(structure.lattice.matrix)[None]
    batch = torch.zeros(len(structure), dtype=torch.long)
    full = batched_neighbor_list(pos, lattice, batch, 6.0)
    capped = batched_neighbor_list(pos, lattice, batch, 6.0, max_neighbors=5)
    for atom in range(len(structure)):
        d_full = full.vector[full.center == atom].norm(dim=-1).sort().values
        d_capped = capped.vector[capped.center == atom].norm(dim=-1).sort().values
        assert len(d_capped) == min(5, len(d_full))
        torch.testing.assert_close(d_capped, d_full[: len(d_capped)])
