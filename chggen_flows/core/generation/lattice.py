"""Random Bravais lattices (7 crystal systems, 14 Bravais types) at an exact volume.

A type is named by its Pearson symbol (``"cF"`` = face-centred cubic, ...). The
conventional cell is drawn with the authors' priors (axis ratios from
{0.75, 0.875, 1.125, 1.25}, monoclinic beta ~ U(60, 120) deg, triclinic angles
~ U(75, 105) deg), reduced to the primitive cell of the centred lattice (the cell the
atoms are sampled in; a P1 structure in a conventional cell would not carry the
centring) and scaled so that its volume is exactly the target. Volumes come from the
cell's determinant, never from a per-family formula (the authors' hexagonal formula
was wrong by 9-34x).
"""

from __future__ import annotations

import numpy as np
from pydantic import ValidationInfo, field_validator
from pymatgen.core import Lattice

from chggen_flows.core.settings_model import CoreSettings
from chggen_flows.errors import InputError

# Pearson symbol -> crystal system (hR is the rhombohedral lattice of the trigonal system)
BRAVAIS_TYPES: dict[str, str] = {
    "aP": "triclinic",
    "mP": "monoclinic",
    "mC": "monoclinic",
    "oP": "orthorhombic",
    "oC": "orthorhombic",
    "oI": "orthorhombic",
    "oF": "orthorhombic",
    "tP": "tetragonal",
    "tI": "tetragonal",
    "hR": "trigonal",
    "hP": "hexagonal",
    "cP": "cubic",
    "cI": "cubic",
    "cF": "cubic",
}
CRYSTAL_SYSTEMS: tuple[str, ...] = (
    "triclinic",
    "monoclinic",
    "orthorhombic",
    "tetragonal",
    "trigonal",
    "hexagonal",
    "cubic",
)

# Rows: primitive vectors in units of the conventional ones, by centring letter.
_CENTRING = {
    "P": np.eye(3),
    "C": np.array([[0.5, 0.5, 0.0], [-0.5, 0.5, 0.0], [0.0, 0.0, 1.0]]),
    "I": np.array([[-0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.5, 0.5, -0.5]]),
    "F": np.array([[0.0, 0.5, 0.5], [0.5, 0.0, 0.5], [0.5, 0.5, 0.0]]),
    "R": np.eye(3),  # rhombohedral cells are drawn directly in the primitive setting
}


class LatticeSettings(CoreSettings):
    """Priors of the random lattice search.

    Attributes
    ----------
    types
        Bravais types (Pearson symbols) to draw from. A crystal system is picked
        uniformly among those with an allowed type, then a type within it uniformly.
    ratios
        Axis ratios b/a and c/a are drawn from this set (authors' values); where two
        ratios are drawn (orthorhombic, monoclinic, triclinic) they are distinct, so an
        orthorhombic cell is never metrically tetragonal.
    monoclinic_beta
        Range of the monoclinic angle in degrees (authors: 60-120).
    triclinic_angles
        Range of each triclinic angle in degrees (authors: 75-105).
    rhombohedral_alpha
        Range of the rhombohedral angle in degrees (our choice; the authors drew no
        R lattices).
    """

    types: tuple[str, ...] = tuple(BRAVAIS_TYPES)
    ratios: tuple[float, ...] = (0.75, 0.875, 1.125, 1.25)
    monoclinic_beta: tuple[float, float] = (60.0, 120.0)
    triclinic_angles: tuple[float, float] = (75.0, 105.0)
    rhombohedral_alpha: tuple[float, float] = (50.0, 110.0)

    @field_validator("types")
    @classmethod
    def _check_types(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [t for t in value if t not in BRAVAIS_TYPES]
        if unknown or not value:
            raise InputError(
                f"unknown Bravais type(s) {unknown}", hint=f"choose from {list(BRAVAIS_TYPES)}"
            )
        return value

    @field_validator("ratios")
    @classmethod
    def _check_ratios(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if len(value) < 2 or min(value) <= 0:
            raise InputError("lattice ratios need at least two positive values")
        return value

    @field_validator("monoclinic_beta", "triclinic_angles", "rhombohedral_alpha")
    @classmethod
    def _check_range(cls, value: tuple[float, float], info: ValidationInfo) -> tuple:
        low, high = value
        if not 0 < low <= high < 180:
            raise InputError(f"{info.field_name} must be a range within (0, 180) degrees")
        return value


def resolve_types(family: str | None, settings: LatticeSettings) -> list[str]:
    """Bravais types selected by a crystal system, a Pearson symbol or None (all allowed)."""
    if family is None:
        return list(settings.types)
    if family in BRAVAIS_TYPES:
        return [family]
    name = "trigonal" if family.lower() == "rhombohedral" else family.lower()
    if name not in CRYSTAL_SYSTEMS:
        raise InputError(
            f"unknown lattice family {family!r}",
            hint=f"use a crystal system ({', '.join(CRYSTAL_SYSTEMS)}) or a Bravais type "
            f"({' '.join(BRAVAIS_TYPES)})",
        )
    return [t for t in BRAVAIS_TYPES if BRAVAIS_TYPES[t] == name]


def conventional_parameters(
    bravais: str, rng: np.random.Generator, settings: LatticeSettings
) -> tuple[float, float, float, float, float, float]:
    """Random (a, b, c, alpha, beta, gamma) of a type's conventional cell, with a = 1."""
    system = BRAVAIS_TYPES[bravais]
    r1, r2 = (float(r) for r in rng.choice(settings.ratios, size=2, replace=False))
    if system == "cubic":
        return 1.0, 1.0, 1.0, 90.0, 90.0, 90.0
    if system == "tetragonal":
        return 1.0, 1.0, r1, 90.0, 90.0, 90.0
    if system == "hexagonal":
        return 1.0, 1.0, r1, 90.0, 90.0, 120.0
    if system == "trigonal":
        alpha = float(rng.uniform(*settings.rhombohedral_alpha))
        return 1.0, 1.0, 1.0, alpha, alpha, alpha
    if system == "orthorhombic":
        return 1.0, r1, r2, 90.0, 90.0, 90.0
    if system == "monoclinic":
        return 1.0, r1, r2, 90.0, float(rng.uniform(*settings.monoclinic_beta)), 90.0
    while True:  # triclinic: redraw the rare angle triples that give no cell
        angles = rng.uniform(*settings.triclinic_angles, size=3)
        if _angles_valid(angles):
            return 1.0, r1, r2, *(float(x) for x in angles)


def _angles_valid(angles: np.ndarray) -> bool:
    """Whether three cell angles (degrees) span a cell of positive volume."""
    cosines = np.cos(np.radians(angles))
    gram = 1 - (cosines**2).sum() + 2 * cosines.prod()
    return bool(gram > 1e-6)


def sample_lattice(
    volume: float,
    rng: np.random.Generator,
    family: str | None = None,
    settings: LatticeSettings | None = None,
) -> tuple[Lattice, str]:
    """A random primitive Bravais lattice of exactly ``volume`` Å^3.

    Parameters
    ----------
    volume
        Target cell volume in Å^3 (N atoms x V0).
    rng
        Source of randomness (seeded by the caller).
    family
        A crystal system (``"cubic"``, ..., ``"triclinic"``; ``"rhombohedral"`` is
        accepted for trigonal), a Pearson symbol (``"cF"``) or None for any allowed type.
    settings
        Priors; defaults to the authors' values.

    Returns
    -------
    tuple[Lattice, str]
        The lattice (rows are vectors, right-handed) and its Pearson symbol.

    Examples
    --------
    >>> lattice, kind = sample_lattice(200.0, np.random.default_rng(0), "hexagonal")
    >>> round(lattice.volume, 9), kind
    (200.0, 'hP')
    """
    if not volume > 0 or not np.isfinite(volume):
        raise InputError(f"lattice volume must be positive, got {volume}")
    settings = settings or LatticeSettings()
    types = resolve_types(family, settings)
    if family is None:
        systems = sorted({BRAVAIS_TYPES[t] for t in types}, key=CRYSTAL_SYSTEMS.index)
        system = systems[int(rng.integers(len(systems)))]
        types = [t for t in types if BRAVAIS_TYPES[t] == system]
    bravais = types[int(rng.integers(len(types)))]
    conventional = Lattice.from_parameters(*conventional_parameters(bravais, rng, settings))
    matrix = _CENTRING[bravais[1]] @ conventional.matrix
    if np.linalg.det(matrix) < 0:  # keep the cell right-handed
        matrix = -matrix
    matrix *= (volume / np.linalg.det(matrix)) ** (1.0 / 3.0)
    return Lattice(matrix), bravais
