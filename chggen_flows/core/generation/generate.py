"""Unconditional generation: composition x formula units -> lattice at N x V0 -> sampled positions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from pymatgen.analysis.phase_diagram import PhaseDiagram
from pymatgen.core import Composition, Element, Lattice, Structure

from chggen_flows.core.device import resolve_device
from chggen_flows.core.generation.candidate import (
    GeneratedCandidate,
    check_elements,
    finalize_candidate,
)
from chggen_flows.core.generation.lattice import BRAVAIS_TYPES, LatticeSettings, sample_lattice
from chggen_flows.core.generation.sampler import SamplerSettings, SamplingJob, ScoreFn, sample_jobs
from chggen_flows.core.generation.volume import V0Estimate, estimate_v0
from chggen_flows.errors import InputError


@dataclass(frozen=True)
class GenerationRequest:
    """One candidate to generate.

    Attributes
    ----------
    composition
        Formula unit (integer amounts), e.g. ``Composition("ZnPS3")``.
    formula_units
        Z; the cell holds ``composition * formula_units``.
    lattice
        A fixed cell (used as given, volume included); None draws a random Bravais
        lattice at ``N x V0``.
    bravais
        Crystal system or Pearson symbol to draw from (None: any allowed type).
    v0
        Volume per atom override in Å^3/atom.
    seed
        This candidate's own seed; None derives it from the call's seed and the
        candidate's index (see :func:`candidate_seed`).
    lattice_seed
        Seed of the random lattice alone; requests with the same composition, formula
        units and lattice seed share one lattice (a campaign samples several candidates
        per lattice). None: the lattice is drawn from the candidate's own seed.
    """

    composition: Composition
    formula_units: int = 1
    lattice: Lattice | None = None
    bravais: str | None = None
    v0: float | None = None
    seed: int | None = None
    lattice_seed: int | None = None


# a sampler's sigma may differ from the trained bound by float rounding (YAML, JSON)
_NOISE_RANGE_RTOL = 1e-6


def check_noise_range(score_fn: object, settings: SamplerSettings) -> None:
    """Refuse a sampler schedule that leaves the noise range the model was trained on.

    A score model has seen no noise level outside its training range
    (``score_fn.noise_range``, recorded in its checkpoint), so a schedule that starts
    above its sigma_max or ends below its sigma_min walks on scores it never learned.
    A schedule inside the range is allowed (e.g. a shorter walk from a lower level).
    Score functions that do not say (checkpoints written before the range was
    recorded, all trained on the sampler's default 0.001-10 Å; analytic scores) pass.

    Raises
    ------
    InputError
        The schedule leaves the trained range; the hint names the settings to use.
    """
    trained = getattr(score_fn, "noise_range", None)
    if trained is None:
        return
    low, high = trained
    below = settings.sigma_min < low * (1 - _NOISE_RANGE_RTOL)
    above = settings.sigma_max > high * (1 + _NOISE_RANGE_RTOL)
    if below or above:
        raise InputError(
            f"the sampler's noise schedule ({settings.sigma_max:g} -> {settings.sigma_min:g} Å) "
            f"leaves the range the score model was trained on ({high:g} -> {low:g} Å)",
            hint=f"set the sampler's sigma_max to {high:g} and sigma_min to {low:g} (spec "
            "section `sampler`, or --sigma-max/--sigma-min), or use a model trained on "
            "this range",
        )


def candidate_seed(seed: int, index: int) -> int:
    """Seed of candidate ``index`` of a call seeded with ``seed`` (independent streams)."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def cell_species(composition: Composition, formula_units: int = 1) -> list[str]:
    """Element symbols of the atoms of ``formula_units`` formula units, grouped by element.

    Raises
    ------
    InputError
        Non-integer amounts or a non-positive number of formula units.
    """
    if formula_units < 1:
        raise InputError(f"formula units must be >= 1, got {formula_units}")
    species: list[str] = []
    for element, amount in composition.items():
        count = amount * formula_units
        if abs(count - round(count)) > 1e-8 or round(count) < 1:
            raise InputError(
                f"{composition.formula} x {formula_units} does not give whole atoms",
                hint="give a composition with integer amounts (e.g. Zn2P2S7)",
            )
        species += [element.symbol] * round(count)
    return species


def generate(
    requests: Sequence[GenerationRequest | Composition],
    score_fn: ScoreFn,
    settings: SamplerSettings | None = None,
    seed: int = 0,
    device: str | torch.device = "auto",
    progress: bool | None = None,
    lattice_settings: LatticeSettings | None = None,
    known_structures: list[Structure] | None = None,
    phase_diagram: PhaseDiagram | None = None,
) -> list[GeneratedCandidate]:
    """Generate structures unconditionally, many candidates per batched model call.

    Parameters
    ----------
    requests
        Candidates (a bare Composition means one formula unit, random lattice).
    score_fn
        The score model (e.g. ``load_score_model()``) or any :class:`ScoreFn`.
    settings
        Sampler settings (defaults: the authors' 200 levels, 10 -> 0.001 Å, M=5,
        snr 0.4).
    seed
        Seed of the call; candidate ``i`` uses ``candidate_seed(seed, i)`` unless its
        request carries a seed.
    device
        ``"auto"``, ``"cpu"``, ``"cuda"``...
    progress
        Progress bar over noise levels (None: on a terminal only).
    lattice_settings
        Priors of the random lattices.
    known_structures
        Known phases used to estimate V0 (see :func:`estimate_v0`).
    phase_diagram
        A reference hull with structures (e.g. the offline CHGNet reference of the
        system): V0 from its known phases nearest in composition (see :func:`estimate_v0`).

    Returns
    -------
    list[GeneratedCandidate]
        One per request, in order; degenerate ones are marked invalid, not dropped.

    Examples
    --------
    >>> from chggen_flows.core.model import load_score_model
    >>> model = load_score_model()  # doctest: +SKIP
    >>> out = generate([GenerationRequest(Composition("ZnPS3"), 2)] * 8, model, seed=1)  # doctest: +SKIP
    """
    settings = settings or SamplerSettings()
    check_noise_range(score_fn, settings)
    torch_device = resolve_device(device)
    requests = [r if isinstance(r, GenerationRequest) else GenerationRequest(r) for r in requests]
    v0_cache: dict[tuple[str, float | None], V0Estimate] = {}
    jobs: list[SamplingJob] = []
    metadata: list[dict[str, object]] = []
    for index, request in enumerate(requests):
        symbols = cell_species(request.composition, request.formula_units)
        check_elements(score_fn, symbols)
        own_seed = request.seed if request.seed is not None else candidate_seed(seed, index)
        info: dict[str, object] = {"seed": own_seed, "mode": "unconditional"}
        if request.lattice is not None:
            lattice, kind = request.lattice, "given"
            info.update(v0_source="given lattice", v0_detail="cell given with the request")
        else:
            key = (request.composition.reduced_formula, request.v0)
            if key not in v0_cache:
                v0_cache[key] = estimate_v0(
                    request.composition, known_structures, request.v0, phase_diagram
                )
            v0 = v0_cache[key]
            lattice_seed = own_seed if request.lattice_seed is None else request.lattice_seed
            rng = np.random.default_rng(lattice_seed)
            lattice, kind = sample_lattice(
                len(symbols) * v0.volume_per_atom, rng, request.bravais, lattice_settings
            )
            info.update(
                v0=v0.volume_per_atom,
                v0_source=v0.label,
                v0_detail=v0.detail,
                crystal_system=BRAVAIS_TYPES[kind],
            )
        info.update(
            formula=Composition("".join(symbols)).formula,
            formula_units=request.formula_units,
            natoms=len(symbols),
            lattice_type=kind,
            volume=round(float(lattice.volume), 6),
        )
        numbers = [Element(s).Z for s in symbols]
        jobs.append(SamplingJob(numbers, np.array(lattice.matrix), own_seed))
        metadata.append(info)
    visits = list(range(settings.n_levels, -1, -1))
    results = sample_jobs(score_fn, jobs, settings, visits, torch_device, progress, "generating")
    candidates = []
    for job, result, info in zip(jobs, results, metadata, strict=True):
        structure = Structure(
            Lattice(job.lattice), job.species, result.positions, coords_are_cartesian=True
        )
        info.update(
            final_score_norm=result.final_score_norm,
            model_calls=result.model_calls,
            sampler=settings.model_dump(mode="json"),
            device=str(torch_device),
        )
        candidates.append(finalize_candidate(structure, settings.min_distance, info))
    return candidates
