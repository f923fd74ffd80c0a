"""Local-stability metrics of a relaxation: energy drop dE and displacement RMSD.

The paper (Fig. 4a, b) judges how close a generated structure is to a local minimum
by the per-atom energy drop on CHGNet relaxation and by the "maximum pair-wise
root-mean-squared displacement" between the generated and the relaxed structure.
Relaxation keeps the atoms in order, so atom *i* before and after form a pair and no
matching (e.g. pymatgen's ``StructureMatcher``, which can fail on large changes) is
needed; like ``StructureMatcher`` the comparison is made in a common frame, so a
rigid translation or a homogeneous strain of the cell is not counted as displacement.
"""

from __future__ import annotations

import numpy as np
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Structure

from chggen_flows.errors import InputError


def energy_drop(initial_energy_per_atom: float, final_energy_per_atom: float) -> float:
    """dE = E(initial) - E(final) in eV/atom; positive when relaxation lowered the energy."""
    return float(initial_energy_per_atom) - float(final_energy_per_atom)


def atom_displacements(initial: Structure, final: Structure) -> np.ndarray:
    """Per-atom displacement lengths (Å) between two states of the same structure.

    Fractional displacements are wrapped to the nearest periodic image, the mean
    displacement (a rigid translation, which costs no energy) is removed, and the
    result is expressed in the mean of the two lattices, so cell strain alone gives
    zero displacement.

    Parameters
    ----------
    initial, final
        The same atoms in the same order (e.g. a structure before and after relaxation).

    Returns
    -------
    numpy.ndarray
        Shape ``(n_atoms,)``.
    """
    if len(initial) != len(final) or [s.species for s in initial] != [s.species for s in final]:
        raise InputError(
            "displacements need the same atoms in the same order in both structures",
            hint="compare a structure with its own relaxed version",
        )
    delta = final.frac_coords - initial.frac_coords
    delta -= np.round(delta)
    delta -= delta.mean(axis=0)
    delta -= np.round(delta)
    lattice = 0.5 * (initial.lattice.matrix + final.lattice.matrix)
    return np.linalg.norm(delta @ lattice, axis=1)


def displacement_rmsd(initial: Structure, final: Structure) -> tuple[float, float]:
    """Root-mean-square and maximum of the pairwise (atom i <-> atom i) displacements.

    Returns
    -------
    tuple of float
        ``(rmsd, max_displacement)`` in Å; see :func:`atom_displacements` for the frame.
    """
    d = atom_displacements(initial, final)
    if d.size == 0:
        return 0.0, 0.0
    return float(np.sqrt(np.mean(d**2))), float(d.max())


def matcher_displacement(initial: Structure, final: Structure) -> tuple[float, float] | None:
    """RMS and maximum displacement (Å) as pymatgen's ``StructureMatcher`` measures them.

    The authors' analysis scripts compare structures with
    ``StructureMatcher().get_rms_dist`` and multiply its two values (normalised by the
    free length per atom, ``(V / n) ** (1/3)``) back into Å; a pair the matcher does not
    match (default tolerances: ltol 0.2, stol 0.3, angle 5 degrees) gives NaN there and
    drops out of their averages. This reproduces that protocol, so our figures can be
    set beside the paper's (Fig. 4b), unlike :func:`displacement_rmsd`, which keeps
    every pair.

    Returns
    -------
    tuple of float or None
        ``(rms, max)`` in Å, or None when the matcher finds no match.
    """
    rms = StructureMatcher().get_rms_dist(final, initial)
    if rms is None:
        return None
    scale = (final.volume / len(final)) ** (1 / 3)
    return float(rms[0]) * scale, float(rms[1]) * scale
