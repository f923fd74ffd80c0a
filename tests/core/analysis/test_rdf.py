"""Partial RDFs: normalisation, supercell invariance, sensitivity to structure."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from chggen_flows.core.analysis import partial_rdfs, rdf_distance
from chggen_flows.errors import InputError


def zincblende(a: float = 5.41) -> Structure:
    return Structure.from_spacegroup(
        "F-43m", Lattice.cubic(a), ["Zn", "S"], [[0, 0, 0], [0.25, 0.25, 0.25]]
    )


def rocksalt(a: float = 5.1) -> Structure:
    return Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(a), ["Zn", "S"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )


def test_first_shell_matches_geometry():
    a = 5.41
    rdf = partial_rdfs([zincblende(a)], r_max=5.0, bin_width=0.02)
    assert set(rdf.g) == {("S", "S"), ("S", "Zn"), ("Zn", "Zn")}
    # Zn-S nearest neighbours at sqrt(3)/4 a, like atoms at a/sqrt(2).
    first_zns = rdf.r[np.argmax(rdf.g[("S", "Zn")] > 0)]
    first_znzn = rdf.r[np.argmax(rdf.g[("Zn", "Zn")] > 0)]
    assert first_zns == pytest.approx(np.sqrt(3) / 4 * a, abs=0.02)
    assert first_znzn == pytest.approx(a / np.sqrt(2), abs=0.02)


def test_coordination_integral_counts_neighbours():
    # 4 pi rho_b int g_ab r^2 dr over the first shell = 4 S neighbours per Zn.
    s = zincblende()
    rdf = partial_rdfs([s], r_max=3.0, bin_width=0.01)
    rho_s = 4 / s.volume
    dr = rdf.bin_width
    n = 4 * np.pi * rho_s * np.sum(rdf.g[("S", "Zn")] * rdf.r**2) * dr
    assert n == pytest.approx(4.0, rel=0.02)


def test_normalisation_recovers_exact_neighbour_counts():
    # N_a * 4 pi rho_b int g_ab r^2 dr = number of (a, b) neighbour pairs within r_max,
    # counted here independently with pymatgen's get_all_neighbors.
    s = zincblende()
    r_max = 7.0
    rdf = partial_rdfs([s], r_max=r_max, bin_width=0.05)
    edges = np.arange(0.0, r_max + 0.025, 0.05)
    shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    for a, b in rdf.g:
        n_a = sum(site.specie.symbol == a for site in s)
        n_b = sum(site.specie.symbol == b for site in s)
        expected = sum(
            nb.specie.symbol == b
            for site, nbs in zip(s, s.get_all_neighbors(r_max), strict=True)
            if site.specie.symbol == a
            for nb in nbs
        )
        assert np.sum(rdf.g[(a, b)] * shell) * n_a * n_b / s.volume == pytest.approx(expected)


def test_supercell_and_itself_give_identical_curves():
    prim = zincblende().get_primitive_structure()
    a = partial_rdfs([prim])
    b = partial_rdfs([prim * (3, 2, 2)])
    for key in a.g:
        np.testing.assert_allclose(a.g[key], b.g[key], atol=1e-9)
    assert all(d == pytest.approx(0.0, abs=1e-12) for d in rdf_distance(a, b).values())


def test_different_structures_are_detected():
    zb, rs = partial_rdfs([zincblende()]), partial_rdfs([rocksalt()])
    distances = rdf_distance(zb, rs)
    assert all(d > 0.3 for d in distances.values())
    shaken = zincblende() * (2, 2, 2)
    shaken.perturb(0.3)
    small = rdf_distance(zb, partial_rdfs([shaken]))
    # A perturbed copy is closer to the original than another polymorph is.
    assert all(0.0 < small[k] < distances[k] for k in distances)


def test_pair_missing_in_one_set_has_distance_one():
    zns = partial_rdfs([zincblende()])
    zn = partial_rdfs([Structure(Lattice.cubic(2.7), ["Zn"], [[0, 0, 0]])])
    d = rdf_distance(zns, zn)
    assert d[("S", "Zn")] == 1.0
    assert d[("S", "S")] == 1.0


def test_bad_input_raises_input_error():
    with pytest.raises(InputError):
        partial_rdfs([])
    with pytest.raises(InputError):
        partial_rdfs([zincblende()], r_max=1.0, bin_width=2.0)
    with pytest.raises(InputError):
        rdf_distance(partial_rdfs([zincblende()], r_max=5), partial_rdfs([zincblende()], r_max=6))
