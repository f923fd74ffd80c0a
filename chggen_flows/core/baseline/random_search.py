"""Random-search baselines: what a campaign finds without the diffusion model.

Two kinds, both at the generative arm's cell size (N atoms of ``composition x Z``) and
volume (N x V0, V0 from :func:`~chggen_flows.core.generation.volume.estimate_v0`):

``pyxtal``
    Random *symmetric* structures (PyXtal, Fredericks et al., Comput. Phys. Commun.
    2021): a space group compatible with the atom counts is drawn, PyXtal fills its
    Wyckoff positions at random (keeping its covalent-radius distance tolerances) in a
    random cell of that group's lattice type whose volume is set exactly, and a centred
    conventional cell is reduced to its primitive cell so the atom count is N, as in
    the generative arm. When PyXtal fails for a group another one is tried.
``random_positions``
    Uniform random fractional positions in a random Bravais lattice from the core's own
    :func:`~chggen_flows.core.generation.lattice.sample_lattice`; draws with two atoms
    closer than ``min_distance`` are rejected as a whole (so the result is the uniform
    distribution conditioned on that distance). This is the pipeline without a model.

Every candidate owns a seed (``candidate_seed(seed, index)`` as in the generative arm)
and all randomness, PyXtal's included, is drawn from a ``numpy.random.Generator``
seeded with it, so a candidate does not depend on the global RNG or its neighbours.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator
from pymatgen.analysis.phase_diagram import PhaseDiagram
from pymatgen.core import Composition, Structure

from chggen_flows.core.baseline.spacegroups import (
    centring_multiplicity,
    compatible_spacegroups,
    conventional_to_primitive,
    group_info,
)
from chggen_flows.core.generation.candidate import (
    GeneratedCandidate,
    check_candidate,
    finalize_candidate,
)
from chggen_flows.core.generation.generate import GenerationRequest, candidate_seed, cell_species
from chggen_flows.core.generation.lattice import CRYSTAL_SYSTEMS, LatticeSettings, sample_lattice
from chggen_flows.core.generation.volume import V0Estimate, estimate_v0
from chggen_flows.core.settings_model import CoreSettings, bounded, one_of
from chggen_flows.core.symmetry import (
    NOT_SYMMETRIC,
    PAPER_ANGLE_TOLERANCE,
    PAPER_SYMPREC,
    classify_symmetry,
)
from chggen_flows.errors import InputError

BASELINE_KINDS = ("pyxtal", "random_positions")
CRYSTAL_SYSTEM_ORDER = CRYSTAL_SYSTEMS  # the lattice module's order, triclinic first


class BaselineSettings(CoreSettings):
    """Settings of the random-search baseline.

    Attributes
    ----------
    kind
        ``"pyxtal"`` (random symmetric structures) or ``"random_positions"`` (uniform
        positions in a random Bravais lattice).
    spacegroups
        ``pyxtal`` only: the groups to draw from; those incompatible with a cell's atom
        counts are skipped. None: every compatible group except P1 and P-1 (the paper's
        "not symmetric" groups), so the baseline's structures are symmetric like the
        generative arm's symmetrised candidates.
    spacegroup_weighting
        ``"crystal_system"`` (default): a crystal system is drawn uniformly among those
        with a compatible group, then a group within it, the prior of the generative
        arm's lattices (:func:`sample_lattice`); ``"uniform"``: every compatible group
        equally likely (favours the 68 tetragonal and 59 orthorhombic groups).
    max_attempts
        Attempts per candidate: PyXtal calls (each with a new group when one fails) or
        random-position draws (each in a new lattice).
    min_distance
        Shortest allowed interatomic distance in Å (periodic images included); PyXtal
        structures below it are retried too. Same default as the sampler's.
    tolerance_factor
        ``pyxtal`` only: scales PyXtal's covalent-radius distance tolerances
        (``Tol_matrix(prototype="atomic", factor=...)``; 1 is PyXtal's default).
    symprec, angle_tolerance
        Tolerances (Å, degrees) with which the obtained space group is recorded (the
        paper's final classification).
    lattice
        ``random_positions`` only: priors of the random Bravais lattices.
    """

    kind: Literal["pyxtal", "random_positions"] = "pyxtal"
    spacegroups: tuple[int, ...] | None = None
    spacegroup_weighting: Literal["crystal_system", "uniform"] = "crystal_system"
    max_attempts: int = 20
    min_distance: float = 0.5
    tolerance_factor: float = 1.0
    symprec: float = PAPER_SYMPREC
    angle_tolerance: float = PAPER_ANGLE_TOLERANCE
    lattice: LatticeSettings = Field(default_factory=LatticeSettings)

    @field_validator("spacegroups", mode="before")
    @classmethod
    def _check_spacegroups(cls, value: object) -> object:
        if value is None:
            return None
        try:
            groups = tuple(int(n) for n in value)  # type: ignore[attr-defined]
        except (TypeError, ValueError) as exc:
            raise InputError(f"spacegroups must be space-group numbers, got {value!r}") from exc
        if not groups:
            raise InputError("spacegroups is empty", hint="leave it unset for all groups")
        bad = [n for n in groups if not 1 <= n <= 230]
        if bad:
            raise InputError(f"spacegroups holds {bad}, not space-group numbers (1-230)")
        return groups

    _kind = one_of(
        "kind",
        BASELINE_KINDS,
        "unknown baseline kind {value!r}",
        hint=f"choose from {list(BASELINE_KINDS)}",
    )
    _weighting = one_of("spacegroup_weighting", ("crystal_system", "uniform"))
    _max_attempts = bounded("max_attempts", low=1, hint="e.g. 20")
    _min_distance = bounded("min_distance", low=0, unit=" Å")
    _positive = bounded("tolerance_factor", "symprec", "angle_tolerance", low=0, inclusive=False)


def allowed_spacegroups(counts: Sequence[int], settings: BaselineSettings) -> list[int]:
    """The groups a ``pyxtal`` candidate of ``counts`` atoms (primitive cell) is drawn from.

    Raises
    ------
    InputError
        No allowed group can hold these atom counts.
    """
    if settings.spacegroups is not None:
        pool: Sequence[int] = settings.spacegroups
    else:
        pool = [n for n in range(1, 231) if n not in NOT_SYMMETRIC]
    groups = compatible_spacegroups(counts, pool)
    if not groups:
        raise InputError(
            f"no allowed space group has Wyckoff positions for {list(counts)} atoms",
            hint="use more formula units, or allow more space groups (spacegroups)",
        )
    return groups


def _draw_group(groups: Sequence[int], weighting: str, rng: np.random.Generator) -> int:
    if weighting == "uniform":
        return int(groups[int(rng.integers(len(groups)))])
    systems = sorted({group_info(n)[1] for n in groups}, key=CRYSTAL_SYSTEM_ORDER.index)
    system = systems[int(rng.integers(len(systems)))]
    within = [n for n in groups if group_info(n)[1] == system]
    return int(within[int(rng.integers(len(within)))])


def _element_counts(symbols: Sequence[str]) -> tuple[list[str], list[int]]:
    species = list(dict.fromkeys(symbols))
    return species, [symbols.count(s) for s in species]


def pyxtal_structure(
    symbols: Sequence[str], volume: float, rng: np.random.Generator, settings: BaselineSettings
) -> tuple[Structure, dict[str, Any]]:
    """One random symmetric primitive cell of the atoms ``symbols`` at ``volume`` Å^3.

    Parameters
    ----------
    symbols
        Element symbols of the primitive cell's atoms.
    volume
        Volume of the primitive cell in Å^3 (N x V0).
    rng
        Source of all randomness (passed to PyXtal as its ``random_state``).
    settings
        Baseline settings (groups, attempts, tolerances).

    Returns
    -------
    tuple
        The structure and its metadata: ``spacegroup_requested`` (number and symbol),
        ``natoms_conventional``, ``attempts`` and ``failed_spacegroups``.

    Raises
    ------
    InputError
        No allowed group fits the counts, or every attempt failed.
    """
    from pyxtal import pyxtal
    from pyxtal.lattice import Lattice as PyxtalLattice
    from pyxtal.tolerance import Tol_matrix

    species, counts = _element_counts(list(symbols))
    groups = allowed_spacegroups(counts, settings)
    tolerances = Tol_matrix(prototype="atomic", factor=settings.tolerance_factor)
    failed: list[int] = []
    for attempt in range(1, settings.max_attempts + 1):
        # a group that failed is not drawn again for this candidate while others remain
        pool = [n for n in groups if n not in failed] or groups
        number = _draw_group(pool, settings.spacegroup_weighting, rng)
        k = centring_multiplicity(number)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # PyXtal warns on every volume retry
                # A lattice of the exact conventional volume k x N x V0 instead of a
                # volume factor: PyXtal's own estimate is random (covalent to van der
                # Waals radii), so no factor gives V0; with a fixed-volume lattice it
                # redraws the cell shape, never the volume, between its attempts.
                lattice = PyxtalLattice(group_info(number)[1], volume=k * volume, random_state=rng)
                crystal = pyxtal()
                crystal.from_random(
                    3,
                    number,
                    species,
                    counts,
                    lattice=lattice,
                    conventional=False,  # counts are per primitive cell; PyXtal scales by k
                    tm=tolerances,
                    random_state=rng,
                    max_count=2,
                )
                conventional = crystal.to_pymatgen()
            structure = conventional_to_primitive(conventional, number)
        except Exception:  # PyXtal raises RuntimeError, ValueError, its own errors...
            failed.append(number)
            continue
        if not crystal.valid or not check_candidate(structure, settings.min_distance)[0]:
            failed.append(number)
            continue
        return structure, {
            "spacegroup_requested": number,
            "spacegroup_symbol_requested": group_info(number)[0],
            "crystal_system_requested": group_info(number)[1],
            "natoms_conventional": len(conventional),
            "attempts": attempt,
            "failed_spacegroups": failed,
        }
    raise InputError(
        f"PyXtal found no structure of {Composition(''.join(symbols)).formula} at "
        f"{volume:.1f} Å^3 in {settings.max_attempts} attempts (groups {sorted(set(failed))})",
        hint="raise max_attempts, check V0, lower tolerance_factor or choose other spacegroups",
    )


def random_positions_structure(
    symbols: Sequence[str],
    volume: float,
    rng: np.random.Generator,
    settings: BaselineSettings,
    family: str | None = None,
) -> tuple[Structure, dict[str, Any]]:
    """Uniform random positions of ``symbols`` in a random Bravais lattice of ``volume``.

    Each attempt draws a lattice with :func:`sample_lattice` and every fractional
    coordinate uniformly; the first draw whose atoms are all at least
    ``settings.min_distance`` apart is returned. When none is, the last draw is returned
    (the caller marks it invalid, as the generative arm keeps its degenerate outputs).

    Returns
    -------
    tuple
        The structure and its metadata: ``lattice_type`` (Pearson symbol) and
        ``attempts``.
    """
    attempt = 0
    while True:
        attempt += 1
        lattice, kind = sample_lattice(volume, rng, family, settings.lattice)
        structure = Structure(lattice, list(symbols), rng.random((len(symbols), 3)))
        if attempt >= settings.max_attempts or check_candidate(structure, settings.min_distance)[0]:
            return structure, {"lattice_type": kind, "attempts": attempt}


def random_search(
    requests: Sequence[GenerationRequest | Composition],
    settings: BaselineSettings | None = None,
    seed: int = 0,
    known_structures: list[Structure] | None = None,
    phase_diagram: PhaseDiagram | None = None,
) -> list[GeneratedCandidate]:
    """Random-search candidates, one per request, shaped like the generative arm's.

    Parameters
    ----------
    requests
        Composition, formula units Z, V0 override and seed per candidate (a bare
        Composition means Z = 1); ``bravais`` restricts ``random_positions`` lattices,
        ``lattice`` is not used.
    settings
        Which baseline and its settings (default: PyXtal, symmetric groups).
    seed
        Seed of the call; candidate ``i`` uses ``candidate_seed(seed, i)`` unless its
        request carries a seed.
    known_structures, phase_diagram
        Known phases for V0 (see :func:`estimate_v0`); pass the campaign's reference
        hull so both arms use the same V0.

    Returns
    -------
    list[GeneratedCandidate]
        In request order. ``metadata`` holds ``seed``, ``mode`` (``"baseline"``),
        ``baseline`` (the kind), ``v0``/``v0_source``/``v0_detail``, ``formula``,
        ``formula_units``, ``natoms``, ``volume``, ``lattice_type``, ``attempts``,
        ``spacegroup_obtained`` (and its symbol, at ``symprec``), ``model_calls`` (0),
        ``min_distance`` (shortest distance), ``baseline_settings``; for ``pyxtal``
        also ``spacegroup_requested``, ``spacegroup_symbol_requested``,
        ``natoms_conventional`` and ``failed_spacegroups``. A ``random_positions``
        candidate with no acceptable draw is returned marked invalid.

    Raises
    ------
    InputError
        Bad composition or formula units, no space group fits, or PyXtal failed every
        attempt.

    Examples
    --------
    >>> out = random_search([GenerationRequest(Composition("Li5Si2"), 1, v0=20.0)], seed=1)
    >>> len(out[0].structure), round(out[0].structure.volume, 6)
    (7, 140.0)
    """
    settings = settings or BaselineSettings()
    requests = [r if isinstance(r, GenerationRequest) else GenerationRequest(r) for r in requests]
    v0_cache: dict[tuple[str, float | None], V0Estimate] = {}
    candidates = []
    for index, request in enumerate(requests):
        symbols = cell_species(request.composition, request.formula_units)
        own_seed = request.seed if request.seed is not None else candidate_seed(seed, index)
        key = (request.composition.reduced_formula, request.v0)
        if key not in v0_cache:
            v0_cache[key] = estimate_v0(
                request.composition, known_structures, request.v0, phase_diagram
            )
        v0 = v0_cache[key]
        volume = len(symbols) * v0.volume_per_atom
        rng = np.random.default_rng(own_seed)
        if settings.kind == "pyxtal":
            structure, info = pyxtal_structure(symbols, volume, rng, settings)
            info["lattice_type"] = info["crystal_system_requested"]
        else:
            structure, info = random_positions_structure(
                symbols, volume, rng, settings, request.bravais
            )
        obtained = classify_symmetry(structure, settings.symprec, settings.angle_tolerance)
        metadata: dict[str, Any] = {
            "seed": own_seed,
            "mode": "baseline",
            "baseline": settings.kind,
            "v0": round(v0.volume_per_atom, 6),
            "v0_source": v0.label,
            "v0_detail": v0.detail,
            "formula": structure.composition.formula,
            "formula_units": request.formula_units,
            "natoms": len(structure),
            "volume": round(float(structure.volume), 6),
            **info,
            "spacegroup_obtained": obtained.number,
            "spacegroup_symbol_obtained": obtained.symbol,
            "model_calls": 0,
            "baseline_settings": settings.model_dump(mode="json"),
        }
        candidates.append(finalize_candidate(structure, settings.min_distance, metadata))
    return candidates
