"""Symmetric guests: snap inpainted guests onto the largest subgroup of the host's
symmetry that they nearly satisfy, and keep that symmetry through the relaxation.

RePaint places the guests freely inside a symmetrised host, so the final structure is
symmetric only where the guests happen to fall on orbits of the host's group. Here the
guests are matched under every operation of the host (spglib, in the candidate's own
cell, so the host atoms never move); operations are taken greedily, closest first, into
a group whose guest orbits are consistent, as long as the guests move no more than a
bound to become exactly symmetric under it. The guests are then averaged over their
orbits (the Reynolds projection), so the structure has that group exactly, the guest
count and species are kept, and the host is unchanged. When no orbit of the host's group
fits the guest count (e.g. 3 Li in a cell whose smallest orbit has 4 sites), the result
is a proper subgroup, and the record says so.

The relaxation keeps the imposed group with ASE's ``FixSymmetry`` algebra
(:func:`symmetry_operations`, :func:`symmetrize_forces`, :func:`symmetrize_stress`):
forces and stress are projected onto the group at every step, as ASE does for its
optimisers, so FIRE moves stay in the symmetric subspace.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
import spglib
from ase.spacegroup.symmetrize import symmetrize_rank1, symmetrize_rank2
from pymatgen.core import Structure
from scipy.optimize import linear_sum_assignment

from chggen_flows.core.symmetry.host_search import species_numbers
from chggen_flows.errors import InputError

#: Tolerance (Å) at which the symmetrised host's own operations are found: it came out of
#: spglib's refinement (or the user's file), so its symmetry is exact to rounding.
HOST_SYMPREC = 1e-3
#: Tolerance (Å) at which an imposed group is found again (relaxation, ``held`` checks).
EXACT_SYMPREC = 1e-3
#: Fractional tolerance for recognising an operation's translation.
_TRANSLATION_TOL = 1e-3
#: Modes of :class:`chggen_flows.core.generation.InpaintSettings.guest_symmetry`.
GUEST_SYMMETRY_MODES = ("free", "symmetric", "compare")


@dataclass(frozen=True)
class GuestSymmetry:
    """The outcome of :func:`symmetrize_guests` for one structure.

    Attributes
    ----------
    structure
        Host sites unchanged, guests on exact orbits of the imposed group.
    host_spacegroup, host_order
        Space group of the host framework alone and its number of operations in the cell.
    spacegroup_number, spacegroup_symbol, order
        Space group of the symmetrised structure (host and guests) and its number of
        operations in the cell: the symmetry the relaxation keeps.
    subgroup
        True when the guests fit no orbit set of the host's full group, so a proper
        subgroup was imposed.
    max_displacement, rms_displacement
        How far (Å) the guests moved to become symmetric.
    """

    structure: Structure
    host_spacegroup: int
    host_order: int
    spacegroup_number: int
    spacegroup_symbol: str
    order: int
    subgroup: bool
    max_displacement: float
    rms_displacement: float


def _cell(structure: Structure, indices: Sequence[int] | None = None) -> tuple:
    numbers = species_numbers(structure)
    frac = structure.frac_coords
    if indices is not None:
        frac, numbers = frac[list(indices)], [numbers[i] for i in indices]
    return (structure.lattice.matrix, frac, numbers)


def symmetry_operations(
    structure: Structure, symprec: float = EXACT_SYMPREC
) -> tuple[np.ndarray, np.ndarray]:
    """Rotations (k, 3, 3) and translations (k, 3) of ``structure`` in its own cell
    (fractional, spglib), at ``symprec`` Å."""
    ops = spglib.get_symmetry(_cell(structure), symprec=symprec)
    if ops is None:  # spglib found no consistent set: identity only
        return np.eye(3, dtype=int)[None], np.zeros((1, 3))
    return np.asarray(ops["rotations"]), np.asarray(ops["translations"])


def _periodic(delta: np.ndarray) -> np.ndarray:
    return delta - np.round(delta)


def operation_map(
    structure: Structure, rotations: np.ndarray, translations: np.ndarray
) -> np.ndarray:
    """``map[k, i]``: the atom that operation ``k`` sends atom ``i`` to (nearest image),
    the ``symm_map`` of ASE's ``prep_symmetry``."""
    frac = structure.frac_coords
    out = np.empty((len(rotations), len(frac)), dtype=int)
    for k, (r, t) in enumerate(zip(rotations, translations, strict=True)):
        images = frac @ r.T + t
        delta = _periodic(frac[None, :, :] - images[:, None, :])
        out[k] = np.argmin(np.linalg.norm(delta @ structure.lattice.matrix, axis=2), axis=1)
    return out


def symmetrize_forces(
    lattice: np.ndarray,
    forces: np.ndarray,
    rotations: np.ndarray,
    translations: np.ndarray,
    mapping: np.ndarray,
) -> np.ndarray:
    """Forces (n, 3) projected onto the group (ASE ``FixSymmetry.adjust_forces``)."""
    return symmetrize_rank1(
        lattice, np.linalg.inv(lattice), forces, rotations, translations, mapping
    )


def symmetrize_stress(lattice: np.ndarray, stress: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    """A 3x3 stress projected onto the group (ASE ``FixSymmetry.adjust_stress``)."""
    return symmetrize_rank2(lattice, np.linalg.inv(lattice), stress, rotations)


def operations_hold(
    structure: Structure,
    rotations: np.ndarray,
    translations: np.ndarray,
    tolerance: float = 0.1,
) -> bool:
    """Whether every operation maps ``structure`` onto itself within ``tolerance`` Å
    (same species, each atom to a distinct atom)."""
    frac, lattice = structure.frac_coords, structure.lattice.matrix
    numbers = np.array(species_numbers(structure))
    return all(
        _match(frac, frac @ r.T + t, numbers, lattice)[1] <= tolerance
        for r, t in zip(rotations, translations, strict=True)
    )


def _match(
    frac: np.ndarray, images: np.ndarray, numbers: np.ndarray, lattice: np.ndarray
) -> tuple[np.ndarray, float]:
    """Atom each image lands on (a bijective assignment per species) and the largest
    distance of that assignment (Å)."""
    perm = np.empty(len(frac), dtype=int)
    worst = 0.0
    for kind in np.unique(numbers):
        idx = np.flatnonzero(numbers == kind)
        dist = np.linalg.norm(
            _periodic(frac[idx][None, :, :] - images[idx][:, None, :]) @ lattice, axis=2
        )
        rows, cols = linear_sum_assignment(dist)
        perm[idx[rows]] = idx[cols]
        worst = max(worst, float(dist[rows, cols].max()))
    return perm, worst


class _Operations:
    """The host's operations with a product table built on demand."""

    def __init__(self, rotations: np.ndarray, translations: np.ndarray) -> None:
        self.rotations = np.rint(rotations).astype(int)
        self.translations = np.mod(translations, 1.0)
        self._by_rotation: dict[bytes, list[int]] = {}
        for k, r in enumerate(self.rotations):
            self._by_rotation.setdefault(r.tobytes(), []).append(k)
        self._products: dict[tuple[int, int], int | None] = {}
        self.identity = self.find(np.eye(3, dtype=int), np.zeros(3))

    def __len__(self) -> int:
        return len(self.rotations)

    def find(self, rotation: np.ndarray, translation: np.ndarray) -> int | None:
        for k in self._by_rotation.get(rotation.tobytes(), []):
            if np.abs(_periodic(self.translations[k] - translation)).max() < _TRANSLATION_TOL:
                return k
        return None

    def product(self, a: int, b: int) -> int | None:
        """Index of ``a . b`` (apply ``b`` first), None if it is not an operation."""
        key = (a, b)
        if key not in self._products:
            ra, ta = self.rotations[a], self.translations[a]
            self._products[key] = self.find(ra @ self.rotations[b], ra @ self.translations[b] + ta)
        return self._products[key]

    def closure(self, group: set[int], extra: int) -> set[int] | None:
        """The group generated by ``group`` and ``extra`` (None if not closed in the host
        operations, which cannot happen for an exact host group)."""
        closed = set(group) | {extra}
        frontier = list(closed)
        while frontier:
            new = []
            for a in frontier:
                for b in list(closed):
                    for p in (self.product(a, b), self.product(b, a)):
                        if p is None:
                            return None
                        if p not in closed:
                            closed.add(p)
                            new.append(p)
            frontier = new
        return closed


def _guest_matches(
    frac: np.ndarray, numbers: np.ndarray, lattice: np.ndarray, ops: _Operations
) -> tuple[np.ndarray, np.ndarray]:
    """Per operation: the guest each guest goes to (bijective per species) and the
    largest distance of that assignment (Å)."""
    matches = [
        _match(frac, frac @ ops.rotations[k].T + ops.translations[k], numbers, lattice)
        for k in range(len(ops))
    ]
    return np.array([p for p, _ in matches]), np.array([w for _, w in matches])


def _apply(ops: _Operations, k: int, x: np.ndarray) -> np.ndarray:
    return ops.rotations[k] @ x + ops.translations[k]


def _project(
    frac: np.ndarray, perms: np.ndarray, group: Sequence[int], ops: _Operations
) -> np.ndarray | None:
    """Guest positions exactly invariant under ``group``, nearest the input; None when
    the guests' orbits are inconsistent (two guests forced onto one site, ...)."""
    n = len(frac)
    out = np.empty_like(frac)
    done = np.zeros(n, dtype=bool)
    for rep in range(n):
        if done[rep]:
            continue
        targets = perms[list(group), rep]
        orbit = sorted(set(targets.tolist()))
        stabiliser = [g for g, j in zip(group, targets, strict=True) if j == rep]
        if len(orbit) * len(stabiliser) != len(group) or done[orbit].any():
            return None
        # Reynolds average of g^-1(x_{g(rep)}) over the group, then onto the stabiliser.
        deltas = []
        for g, j in zip(group, targets, strict=True):
            back = np.linalg.solve(ops.rotations[g], frac[j] - ops.translations[g])
            deltas.append(_periodic(back - frac[rep]))
        x = frac[rep] + np.mean(deltas, axis=0)
        for _ in range(2):
            x = x + np.mean([_periodic(_apply(ops, s, x) - x) for s in stabiliser], axis=0)
        for g, j in zip(group, targets, strict=True):
            if not done[j]:
                out[j] = frac[j] + _periodic(_apply(ops, g, x) - frac[j])
                done[j] = True
    return out


def spacegroup(structure: Structure) -> tuple[int, str]:
    """Space-group number and symbol of ``structure`` at :data:`EXACT_SYMPREC`."""
    dataset = spglib.get_symmetry_dataset(_cell(structure), symprec=EXACT_SYMPREC)
    if dataset is None:
        return 1, "P1"
    return int(dataset.number), str(dataset.international)


def spacegroup_number(structure: Structure) -> int:
    """Space-group number of ``structure`` at :data:`EXACT_SYMPREC`."""
    return spacegroup(structure)[0]


def symmetrize_guests(
    structure: Structure,
    guest_species: Collection[str],
    max_displacement: float = 0.5,
    min_distance: float = 0.7,
) -> GuestSymmetry:
    """Impose on the guests the largest subgroup of the host's symmetry they nearly have.

    Parameters
    ----------
    structure
        An inpainted candidate: host sites, then guests (any order works; guests are
        the sites of ``guest_species``).
    guest_species
        Element symbols of the guests, e.g. ``{"Li"}``.
    max_displacement
        Largest distance (Å) a guest may move to become symmetric. A group whose
        orbit averaging moves a guest further is not imposed.
    min_distance
        Symmetrised guests closer than this (Å) to any other atom are refused (orbit
        averaging can pull two guests together).

    Returns
    -------
    GuestSymmetry
        The symmetrised structure and what was imposed. With no operation within the
        bound the structure is returned unchanged (its own group, at most P1 plus
        whatever symmetry it already has).

    Raises
    ------
    InputError
        If the structure has no guest or no host atom.
    """
    guests = {str(s) for s in guest_species}
    is_guest = np.array([site.specie.symbol in guests for site in structure])
    if not is_guest.any() or is_guest.all():
        raise InputError(
            f"{structure.composition.formula}: symmetric guests need host and guest atoms "
            f"(guests: {sorted(guests)})",
            hint="name the guest species the inpainting placed",
        )
    host_idx = np.flatnonzero(~is_guest)
    guest_idx = np.flatnonzero(is_guest)
    lattice = structure.lattice.matrix
    host_ops = spglib.get_symmetry(_cell(structure, host_idx), symprec=HOST_SYMPREC)
    if host_ops is None:
        host_ops = {"rotations": np.eye(3)[None], "translations": np.zeros((1, 3))}
    ops = _Operations(np.asarray(host_ops["rotations"]), np.asarray(host_ops["translations"]))
    host_sg = spacegroup(Structure.from_sites([structure[i] for i in host_idx]))[0]

    frac = structure.frac_coords[guest_idx]
    numbers = np.array(species_numbers(structure))[guest_idx]
    perms, worst = _guest_matches(frac, numbers, lattice, ops)

    identity = ops.identity if ops.identity is not None else 0
    group: set[int] = {identity}
    best = frac.copy()
    rejected: set[frozenset[int]] = set()
    # An operation's own match distance overstates the move: orbit averaging splits it
    # between the guests, so operations up to twice the bound are tried and the bound
    # is applied to the guests' actual moves.
    reach = 2.0 * max_displacement
    for k in np.argsort(worst, kind="stable"):
        k = int(k)
        if worst[k] > reach:
            break
        if k in group:
            continue
        candidate = ops.closure(group, k)
        if candidate is None or frozenset(candidate) in rejected:
            continue
        if worst[list(candidate)].max() > reach:
            rejected.add(frozenset(candidate))
            continue
        projected = _project(frac, perms, sorted(candidate), ops)
        if projected is None or not _acceptable(
            structure, guest_idx, projected, frac, max_displacement, min_distance
        ):
            rejected.add(frozenset(candidate))
            continue
        group, best = candidate, projected

    out = structure.copy()
    for i, x in zip(guest_idx, best, strict=True):
        out.replace(int(i), out[int(i)].species, x, properties=out[int(i)].properties)
    moves = np.linalg.norm(_periodic(best - frac) @ lattice, axis=1)
    number, symbol = spacegroup(out)
    order = len(symmetry_operations(out)[0])
    return GuestSymmetry(
        structure=out,
        host_spacegroup=host_sg,
        host_order=len(ops),
        spacegroup_number=number,
        spacegroup_symbol=symbol,
        order=order,
        subgroup=order < len(ops),
        max_displacement=float(moves.max()),
        rms_displacement=float(np.sqrt(np.mean(moves**2))),
    )


def _acceptable(
    structure: Structure,
    guest_idx: np.ndarray,
    projected: np.ndarray,
    frac: np.ndarray,
    max_displacement: float,
    min_distance: float,
) -> bool:
    lattice = structure.lattice.matrix
    if np.linalg.norm(_periodic(projected - frac) @ lattice, axis=1).max() > max_displacement:
        return False
    coords = structure.frac_coords.copy()
    coords[guest_idx] = projected
    dist = np.linalg.norm(
        _periodic(coords[guest_idx][:, None, :] - coords[None, :, :]) @ lattice, axis=2
    )
    dist[np.arange(len(guest_idx)), guest_idx] = np.inf
    return bool(dist.min() >= min_distance) if dist.size else True
