"""Geometry behind the host search: how far a symmetrised host moved, how symmetric it
is, and the smallest supercell that holds a dilute guest count.

These helpers serve :func:`chggen_flows.core.symmetry.host_candidates`; they take
spglib datasets and pymatgen structures and know nothing of the tolerance ladder.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from fractions import Fraction
from math import lcm

import numpy as np
import spglib
from pymatgen.core import Lattice, Structure

# Lattice images searched when an input atom is matched to its idealised position: the
# standardised cell is reduced, so its nearest image lies in the 27 neighbouring cells.
_IMAGES = np.array(list(itertools.product((-1, 0, 1), repeat=3)), dtype=float)


@dataclass(frozen=True)
class HostDistance:
    """How far spglib's symmetrised host is from the host it was found in.

    Attributes
    ----------
    max_displacement, rms_displacement
        Largest and root-mean-square distance (Å) between each atom of the input host
        and its position in the symmetrised host laid over the input cell (lattice strain
        included), after the best common translation.
    lattice_strain
        Largest principal stretch of the idealised lattice relative to the input's,
        as a fraction (0.02 = 2 %).
    """

    max_displacement: float
    rms_displacement: float
    lattice_strain: float


def species_numbers(structure: Structure) -> list[int]:
    """The atom types ``SpacegroupAnalyzer`` hands spglib: 1, 2, ... by first appearance."""
    unique: list = []
    numbers = []
    for site in structure:
        if site.species not in unique:
            unique.append(site.species)
        numbers.append(unique.index(site.species) + 1)
    return numbers


def host_distance(host: Structure, dataset) -> HostDistance:
    """Displacement of every host atom to its place in spglib's symmetrised structure.

    spglib relates the input cell to its standardised one by ``x_s = P x + p`` and
    ``(a_s b_s c_s) = (a b c) P^-1``; the idealised standardised cell
    (``std_lattice``, ``std_positions``) is the symmetrised host. Each input atom is
    sent into the standardised frame, matched to the nearest idealised atom of its
    type, and both are laid over the input cell with the idealised lattice (rotation
    removed, strain kept), so a rung that bends the lattice shows up as displacement
    too, accumulated over the candidate's cell. A large-tolerance rung whose lattice
    does not tile the input cell at all (a non-integer ``P``) gets a large distance,
    as it should.

    Parameters
    ----------
    host
        The host spglib was given (guests removed).
    dataset
        ``SpacegroupAnalyzer(host, ...).get_symmetry_dataset()``.
    """
    transformation = np.asarray(dataset.transformation_matrix, dtype=float)
    origin_shift = np.asarray(dataset.origin_shift, dtype=float)
    # Rows are lattice vectors (pymatgen's convention); M_s is the standardised cell
    # before idealisation, in the input's Cartesian frame.
    m_input = host.lattice.matrix
    m_std = np.linalg.inv(transformation).T @ m_input
    m_ideal = np.asarray(dataset.std_lattice, dtype=float)
    # m_ideal = m_std @ F; its polar decomposition F = S Q separates the stretch S (kept:
    # it moves atoms) from the rotation Q of the standard setting (dropped).
    deformation = np.linalg.solve(m_std, m_ideal)
    w, sigma, _ = np.linalg.svd(deformation)
    stretch = w @ np.diag(sigma) @ w.T
    m_ideal_here = m_std @ stretch

    frac = np.mod(host.frac_coords, 1.0)
    x_std = frac @ transformation.T + origin_shift
    types = np.array(species_numbers(host))
    std_positions = np.asarray(dataset.std_positions, dtype=float)
    std_types = np.asarray(dataset.std_types)
    moves = np.empty((len(host), 3))
    for i, (x, kind) in enumerate(zip(x_std, types, strict=True)):
        candidates = std_positions[std_types == kind]
        if len(candidates) == 0:  # spglib dropped a species: no match is possible
            return HostDistance(float("inf"), float("inf"), float(abs(sigma - 1).max()))
        delta = candidates - x
        delta -= np.round(delta)
        shifted = (delta[:, None, :] + _IMAGES[None, :, :]).reshape(-1, 3)
        target = x + shifted[np.argmin(np.linalg.norm(shifted @ m_std, axis=1))]
        moves[i] = target @ m_ideal_here - x @ m_std
    moves -= moves.mean(axis=0)  # a common translation moves no atom relative to another
    lengths = np.linalg.norm(moves, axis=1)
    return HostDistance(
        max_displacement=float(lengths.max()),
        rms_displacement=float(np.sqrt(np.mean(lengths**2))),
        lattice_strain=float(abs(sigma - 1).max()),
    )


def point_group_order(dataset) -> int:
    """Order of the point group of the dataset's space group (1-48).

    ``dataset.rotations`` holds only the operations that map the *input* lattice onto
    itself (a 2x2x1 supercell of a tetragonal cell loses its 4-fold axes there), so the
    rotations are counted in spglib's database entry of the space group instead.
    """
    operations = spglib.get_symmetry_from_database(dataset.hall_number)
    rotations = np.rint(np.asarray(operations["rotations"])).astype(int)
    return len({r.tobytes() for r in rotations})


def primitive_atoms(dataset) -> int:
    """Atoms of the primitive cell spglib found (distinct ``mapping_to_primitive``)."""
    return len(set(np.asarray(dataset.mapping_to_primitive).tolist()))


def supercell_multiple(
    refined_atoms: int, host_atoms: int, guests: dict[str, int]
) -> tuple[int, dict[str, int]]:
    """Smallest ``n`` for which ``n`` refined cells hold whole guests, and those guests.

    The refined cell holds ``k = refined_atoms / host_atoms`` times the candidate's host,
    so ``n`` is the least common multiple of the denominators of ``k * count``.
    """
    k = Fraction(refined_atoms, host_atoms)
    scaled = {el: k * count for el, count in guests.items()}
    n = lcm(*(v.denominator for v in scaled.values()))
    return n, {el: int(n * v) for el, v in scaled.items()}


def _hermite_normal_forms(n: int) -> list[np.ndarray]:
    """Every lower-triangular Hermite normal form of determinant ``n``: each n-fold
    supercell lattice of a cell exactly once."""
    forms = []
    for a in range(1, n + 1):
        if n % a:
            continue
        for c in range(1, n // a + 1):
            if (n // a) % c:
                continue
            f = n // (a * c)
            # Row reduction leaves each off-diagonal entry below the diagonal of its column.
            for b, d, e in itertools.product(range(a), range(a), range(c)):
                forms.append(np.array([[a, 0, 0], [b, c, 0], [d, e, f]]))
    return forms


def best_supercell(primitive: Structure, n: int, rotations: np.ndarray) -> np.ndarray:
    """The n-fold supercell of ``primitive`` that keeps most symmetry and is most compact.

    Guests inpainted into a supercell can keep only the rotations that map the
    supercell lattice onto itself, so supercells that keep more of the host's point
    group come first; among those the one whose shortest lattice vector is longest (the
    guests' periodic images are farthest apart), then the most equant one.

    Parameters
    ----------
    primitive
        The refined primitive host.
    n
        Number of primitive cells in the supercell.
    rotations
        The host's rotations in the basis of ``primitive`` (spglib, fractional).

    Returns
    -------
    numpy.ndarray
        Integer 3x3 scaling matrix for :meth:`Structure.make_supercell` (rows: the
        supercell vectors in the primitive basis).
    """
    best: tuple | None = None
    best_matrix = np.eye(3, dtype=int)
    for matrix in _hermite_normal_forms(n):
        # A rotation W (acting on fractional columns) keeps the lattice spanned by the
        # rows of S when S^-T W S^T is an integer matrix.
        inverse_t = np.linalg.inv(matrix.T.astype(float))
        kept = sum(
            np.allclose(m := inverse_t @ w @ matrix.T, np.rint(m), atol=1e-6) for w in rotations
        )
        lattice = Lattice(matrix @ primitive.lattice.matrix)
        lengths = sorted(lattice.get_niggli_reduced_lattice().abc)
        key = (kept, round(lengths[0], 6), -round(lengths[2] / lengths[0], 6))
        if best is None or key > best:
            best, best_matrix = key, matrix
    return best_matrix
