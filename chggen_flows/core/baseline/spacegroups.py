"""Space groups compatible with a cell's atom counts, and centred -> primitive cells.

PyXtal places atoms on the Wyckoff positions of a space group's *conventional* cell; a
centred group (A, B, C, I, F, or R in its hexagonal setting) holds 2, 3 or 4 times the
atoms of its primitive cell. The generative arm samples primitive cells of N atoms, so
the baseline asks PyXtal for N x (centring multiplicity) atoms and reduces the result
with the exact centring transformation (never with a tolerance-based primitive search,
which could fold a structure with accidental extra translations into fewer atoms).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from functools import cache

import numpy as np
from pymatgen.core import Lattice, Structure

from chggen_flows.errors import InputError

# Rows: primitive vectors in units of the conventional ones, by centring letter (ITA
# standard settings; R is the obverse hexagonal setting PyXtal uses).
CENTRING_TO_PRIMITIVE: dict[str, np.ndarray] = {
    "P": np.eye(3),
    "A": np.array([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5], [0.0, -0.5, 0.5]]),
    "B": np.array([[0.5, 0.0, 0.5], [0.0, 1.0, 0.0], [-0.5, 0.0, 0.5]]),
    "C": np.array([[0.5, 0.5, 0.0], [-0.5, 0.5, 0.0], [0.0, 0.0, 1.0]]),
    "I": np.array([[-0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.5, 0.5, -0.5]]),
    "F": np.array([[0.0, 0.5, 0.5], [0.5, 0.0, 0.5], [0.5, 0.5, 0.0]]),
    "R": np.array([[2, 1, 1], [-1, 1, 1], [-1, -2, 1]]) / 3.0,
}
#: Lattice points per conventional cell, by centring letter.
CENTRING_MULTIPLICITY: dict[str, int] = {"P": 1, "A": 2, "B": 2, "C": 2, "I": 2, "F": 4, "R": 3}


@cache
def group_info(number: int) -> tuple[str, str, str]:
    """``(symbol, crystal system, centring letter)`` of space group ``number`` (PyXtal)."""
    from pyxtal.symmetry import Group

    if not 1 <= int(number) <= 230:
        raise InputError(f"{number} is not a space-group number (1-230)")
    group = Group(int(number))
    return str(group.symbol), str(group.lattice_type), str(group.symbol)[0]


def centring_multiplicity(number: int) -> int:
    """How many times more atoms the conventional cell of group ``number`` holds."""
    return CENTRING_MULTIPLICITY[group_info(number)[2]]


@cache
def _compatible(number: int, counts: tuple[int, ...]) -> bool:
    from pyxtal.symmetry import Group

    k = centring_multiplicity(number)
    compatible, _ = Group(number).check_compatible([c * k for c in counts])
    return bool(compatible)


def compatible_spacegroups(
    counts: Sequence[int], candidates: Sequence[int] | None = None
) -> list[int]:
    """Space groups whose Wyckoff positions can hold a primitive cell of ``counts`` atoms.

    Parameters
    ----------
    counts
        Atoms per species in the primitive cell (e.g. ``[10, 4]`` for Li10Si4).
    candidates
        Groups to test; None tests all 230.

    Returns
    -------
    list of int
        The compatible groups, in increasing order.
    """
    numbers = range(1, 231) if candidates is None else sorted(set(candidates))
    wanted = tuple(int(c) for c in counts)
    return [n for n in numbers if _compatible(int(n), wanted)]


def conventional_to_primitive(structure: Structure, number: int) -> Structure:
    """The primitive cell of a structure in the conventional cell of group ``number``.

    Parameters
    ----------
    structure
        A structure in the standard conventional setting of its group (as PyXtal builds).
    number
        Its space-group number; its centring letter selects the transformation.

    Returns
    -------
    Structure
        The same crystal in the primitive cell (right-handed), 1/k of the atoms.

    Raises
    ------
    InputError
        When the atom count does not divide by the centring multiplicity or the centring
        images do not coincide (the structure is not in that group's setting).
    """
    letter = group_info(number)[2]
    k = CENTRING_MULTIPLICITY[letter]
    if k == 1:
        return structure.copy()
    if len(structure) % k:
        raise InputError(f"{len(structure)} atoms cannot be a {letter}-centred cell")
    matrix = CENTRING_TO_PRIMITIVE[letter] @ structure.lattice.matrix
    if np.linalg.det(matrix) < 0:
        matrix = -matrix
    primitive = Structure(
        Lattice(matrix),
        structure.species,
        structure.cart_coords,
        coords_are_cartesian=True,
        to_unit_cell=True,
    )
    # The centring images land on top of each other in the primitive cell; keep one of
    # each group of k (merge_sites warns about nothing useful here).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        primitive.merge_sites(tol=1e-3, mode="delete")
    if len(primitive) * k != len(structure):
        raise InputError(
            f"the {letter}-centring images of the {len(structure)}-atom cell do not coincide "
            f"({len(primitive)} atoms left instead of {len(structure) // k})"
        )
    return primitive
