"""Symmetric guests: orbit projection onto a subgroup of the host's symmetry, and the
FixSymmetry-constrained CHGNet relaxation that keeps it."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from chggen_flows.core.generation import InpaintSettings, SamplerSettings, inpaint
from chggen_flows.core.symmetry.guests import (
    operation_map,
    operations_hold,
    spacegroup,
    symmetrize_forces,
    symmetrize_guests,
    symmetry_operations,
)
from chggen_flows.errors import InputError

A = 5.43


@pytest.fixture(scope="module")
def score_model_v2():
    from chggen_flows.core.model import load_score_model

    return load_score_model(None, device="cpu")  # the shipped model


@pytest.fixture(scope="module")
def chgnet_relaxer():
    from chggen_flows.core.relax import BatchRelaxer, RelaxSettings

    return BatchRelaxer(RelaxSettings(max_steps=30, device="cpu", threads=1))


def _diamond() -> Structure:
    return Structure.from_spacegroup("Fd-3m", Lattice.cubic(A), ["Si"], [[0, 0, 0]])


def _with_guests(n: int, noise: float, seed: int = 0) -> Structure:
    """Diamond Si (8 atoms) with ``n`` Li near the empty tetrahedral 8b sites."""
    sites = Structure.from_spacegroup("Fd-3m", Lattice.cubic(A), ["Li"], [[0.5, 0.5, 0.5]])
    rng = np.random.default_rng(seed)
    out = _diamond()
    for site in sites[:n]:
        out.append("Li", site.coords + rng.normal(0, noise, 3), coords_are_cartesian=True)
    return out


def _is_subgroup_of_host(structure: Structure, n_host: int) -> bool:
    """Every operation of the structure maps its host sites onto themselves."""
    host = Structure.from_sites(structure[:n_host])
    rotations, translations = symmetry_operations(structure)
    return operations_hold(host, rotations, translations, tolerance=1e-4)


def test_near_symmetric_guests_recover_the_full_host_group():
    structure = _with_guests(8, noise=0.08)
    assert spacegroup(structure)[0] < 100  # the rattled guests break the cubic group
    result = symmetrize_guests(structure, {"Li"})
    assert result.host_spacegroup == 227 and result.spacegroup_number == 227
    assert result.order == result.host_order == 192 and not result.subgroup
    assert 0 < result.max_displacement <= 0.5
    assert result.structure.composition == structure.composition
    np.testing.assert_allclose(result.structure.frac_coords[:8], structure.frac_coords[:8])


def test_guests_that_fill_no_orbit_fall_back_to_a_subgroup_with_the_same_count():
    # the smallest orbit of Fd-3m in this cell has 8 sites: 3 Li cannot fill one
    structure = _with_guests(3, noise=0.08)
    result = symmetrize_guests(structure, {"Li"})
    assert result.subgroup and 1 < result.order < result.host_order
    assert result.structure.composition["Li"] == 3
    assert _is_subgroup_of_host(result.structure, 8)
    rotations, translations = symmetry_operations(result.structure)
    assert len(rotations) == result.order
    assert operations_hold(result.structure, rotations, translations, tolerance=1e-6)


def test_guests_far_from_any_symmetric_arrangement_are_left_unchanged():
    structure = _diamond()
    for x in np.random.default_rng(3).random((8, 3)):
        structure.append("Li", x)
    result = symmetrize_guests(structure, {"Li"}, max_displacement=0.05)
    assert result.order == 1 and result.max_displacement == 0.0
    np.testing.assert_allclose(result.structure.frac_coords, structure.frac_coords)


def test_symmetrize_guests_needs_host_and_guests():
    with pytest.raises(InputError, match="host and guest"):
        symmetrize_guests(_diamond(), {"Li"})


def test_symmetrised_forces_are_invariant_under_the_group():
    structure = symmetrize_guests(_with_guests(3, noise=0.08), {"Li"}).structure
    rotations, translations = symmetry_operations(structure)
    mapping = operation_map(structure, rotations, translations)
    forces = np.random.default_rng(0).normal(size=(len(structure), 3))
    lattice = structure.lattice.matrix
    once = symmetrize_forces(lattice, forces, rotations, translations, mapping)
    twice = symmetrize_forces(lattice, once, rotations, translations, mapping)
    np.testing.assert_allclose(twice, once, atol=1e-12)
    assert np.abs(once - forces).max() > 0.1  # it did project something away


def test_symmetric_guest_inpainting_into_diamond_si_keeps_the_host(score_model_v2):
    """The issue's test: 8 Li inpainted into a fixed diamond-Si host with symmetric guests
    (shipped model, short sampler): each structure's group is a subgroup of the host's,
    the host atoms are unchanged, and some structures are symmetric."""
    host = _diamond()
    candidates = inpaint(
        [host] * 6,
        [{"Li": 8}] * 6,
        score_model_v2,
        SamplerSettings(n_levels=200, n_corrector=1),
        InpaintSettings(jump_length=5, n_resample=1, guest_symmetry="symmetric"),
        seed=1,
        device="cpu",
        progress=False,
    )
    orders = []
    for candidate in candidates:
        assert candidate.valid
        structure = candidate.structure
        assert structure.composition["Li"] == 8 and structure.composition["Si"] == 8
        for site, original in zip(structure[:8], host, strict=True):
            assert site.distance(original) < 1e-6
        assert _is_subgroup_of_host(structure, 8)
        info = candidate.metadata["guest_symmetry"]
        assert info["host_spacegroup"] == 227 and info["max_displacement"] <= 0.5
        assert spacegroup(structure)[0] == info["spacegroup_number"]
        orders.append(info["order"])
    assert max(orders) > 1


def test_inpaint_settings_reject_an_unknown_guest_symmetry():
    with pytest.raises(InputError, match="guest_symmetry"):
        InpaintSettings(guest_symmetry="sometimes")
    with pytest.raises(InputError, match="guest_max_displacement"):
        InpaintSettings(guest_max_displacement=0)


def test_constrained_relaxation_keeps_the_imposed_group(chgnet_relaxer):
    structure = symmetrize_guests(_with_guests(3, noise=0.08), {"Li"}).structure
    number = spacegroup(structure)[0]
    fixed, free = chgnet_relaxer.relax([structure, structure], fix_symmetry=[True, False])
    assert fixed.n_steps > 0 and fixed.imposed_spacegroup == number and fixed.symmetry_held
    assert spacegroup(fixed.structure)[0] == number
    assert free.imposed_spacegroup is None and free.symmetry_held is None
    # symmetric forces keep a symmetric start symmetric anyway: the same path, to rounding
    assert fixed.final_energy_per_atom == pytest.approx(free.final_energy_per_atom, abs=1e-4)
    with pytest.raises(InputError, match="one flag per structure"):
        chgnet_relaxer.relax([structure], fix_symmetry=[True, False])
