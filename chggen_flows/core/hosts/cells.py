"""Cell helpers shared by the host sources: isotropic supercells and volume scaling."""

from __future__ import annotations

import itertools

import numpy as np
from pymatgen.core import Structure


def isotropic_scaling(structure: Structure, multiple: int) -> tuple[int, int, int]:
    """Diagonal supercell factors with product ``multiple`` that keep the cell most
    isotropic (largest shortest axis, then smallest longest axis)."""
    lengths = np.array(structure.lattice.abc)
    best: tuple[float, float, tuple[int, int, int]] | None = None
    for a, b in itertools.product(range(1, multiple + 1), repeat=2):
        if multiple % (a * b):
            continue
        factors = (a, b, multiple // (a * b))
        scaled = lengths * factors
        key = (-float(scaled.min()), float(scaled.max()), factors)
        if best is None or key < best:
            best = key
    assert best is not None
    return best[2]


def supercell(structure: Structure, multiple: int) -> tuple[Structure, tuple[int, int, int]]:
    """A copy ``multiple`` times larger (see :func:`isotropic_scaling`) and its factors."""
    factors = isotropic_scaling(structure, multiple)
    bigger = structure.copy()
    if multiple > 1:
        bigger.make_supercell(list(factors))
    return bigger, factors


def scaled_to(structure: Structure, volume: float) -> Structure:
    """A copy isotropically scaled to ``volume`` Å^3 (fractional coordinates kept)."""
    copy = structure.copy()
    copy.scale_lattice(float(volume))
    return copy
