"""dE and displacement RMSD on hand-made cases with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from chggen_flows.core.relax import atom_displacements, displacement_rmsd, energy_drop
from chggen_flows.core.relax.metrics import matcher_displacement
from chggen_flows.errors import InputError


@pytest.fixture
def square() -> Structure:
    """Four atoms in a 5 Å cubic cell."""
    coords = [[0.1, 0.1, 0.1], [0.6, 0.1, 0.1], [0.1, 0.6, 0.1], [0.1, 0.1, 0.6]]
    return Structure(Lattice.cubic(5.0), ["Si", "Si", "O", "O"], coords)


def test_energy_drop_sign() -> None:
    assert energy_drop(-3.0, -3.25) == pytest.approx(0.25)
    assert energy_drop(-3.25, -3.0) == pytest.approx(-0.25)


def test_identity_and_rigid_translation_give_zero(square: Structure) -> None:
    assert displacement_rmsd(square, square) == (0.0, 0.0)
    shifted = square.copy()
    shifted.translate_sites(range(4), [1.3, -0.7, 2.2], frac_coords=False)
    rmsd, max_d = displacement_rmsd(square, shifted)
    assert rmsd == pytest.approx(0.0, abs=1e-12)
    assert max_d == pytest.approx(0.0, abs=1e-12)


def test_homogeneous_strain_is_not_displacement(square: Structure) -> None:
    strained = square.copy()
    strained.scale_lattice(square.volume * 1.2)
    assert displacement_rmsd(square, strained)[0] == pytest.approx(0.0, abs=1e-12)


def test_one_atom_moved(square: Structure) -> None:
    # Moving one of four atoms by 0.2 Å is, after removing the mean shift (0.05 Å),
    # 0.15 Å for that atom and 0.05 Å for the other three.
    moved = square.copy()
    moved.translate_sites([0], [0.2, 0.0, 0.0], frac_coords=False)
    d = atom_displacements(square, moved)
    np.testing.assert_allclose(d, [0.15, 0.05, 0.05, 0.05], atol=1e-12)
    rmsd, max_d = displacement_rmsd(square, moved)
    assert rmsd == pytest.approx(math.sqrt((0.15**2 + 3 * 0.05**2) / 4))
    assert max_d == pytest.approx(0.15)


def test_displacement_across_the_cell_boundary() -> None:
    # 0.98 -> 0.02 along a 10 Å axis is 0.4 Å through the boundary, not 9.6 Å.
    a = Structure(Lattice.cubic(10.0), ["Na", "Cl"], [[0.98, 0.5, 0.5], [0.5, 0.5, 0.5]])
    b = Structure(Lattice.cubic(10.0), ["Na", "Cl"], [[0.02, 0.5, 0.5], [0.5, 0.5, 0.5]])
    np.testing.assert_allclose(atom_displacements(a, b), [0.2, 0.2], atol=1e-12)


def test_different_atoms_are_an_input_error(square: Structure) -> None:
    other = square.copy()
    other.replace(0, "Ge")
    with pytest.raises(InputError):
        displacement_rmsd(square, other)


def test_matcher_displacement_agrees_on_a_small_move(square: Structure) -> None:
    # The paper's protocol (StructureMatcher, back in Å) and ours agree when the
    # matcher matches: 0.15 Å for the moved atom after the mean shift, as above.
    moved = square.copy()
    moved.translate_sites([0], [0.2, 0.0, 0.0], frac_coords=False)
    rms, max_d = matcher_displacement(square, moved)
    assert rms == pytest.approx(displacement_rmsd(square, moved)[0], abs=1e-9)
    assert max_d == pytest.approx(0.15, abs=1e-9)


def test_matcher_displacement_drops_a_large_move(square: Structure) -> None:
    # 2 Å in a 5 Å cell is past the matcher's site tolerance: no match (the authors'
    # NaN), where our metric still counts it.
    moved = square.copy()
    moved.translate_sites([0], [2.0, 0.0, 0.0], frac_coords=False)
    assert matcher_displacement(square, moved) is None
    assert displacement_rmsd(square, moved)[1] == pytest.approx(1.5)
