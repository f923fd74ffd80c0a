"""RePaint inpainting: sample guest atoms inside a fixed host structure (paper Algorithm 2).

At every noise level visited, host atoms are their known positions plus fresh noise of
standard deviation sigma_t (the same level index t as the guests, which the authors'
code had off by one), guests follow the predictor-corrector steps, and resampling
jumps back ``jump_length`` levels ``n_resample - 1`` times (Lugmayr et al. 2022) by
adding noise of std ``sqrt(sigma_a^2 - sigma_b^2)``. Corrector steps move only the
guests (their step size from the guests' score norm), i.e. Langevin dynamics of the
guests given the noisy host. At the end (sigma_0 = 0) the host is exactly the input.

Beyond the paper, a host may say where its guests begin (:class:`GuestStart`, e.g. the
cation sites of the known crystal an analogue host was cut from): the walk then begins
at the first level at or below the start's sigma, the guests at those sites plus that
level's noise (SDEdit, Meng et al. 2022): the model refines a known arrangement instead
of drawing one from nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from pymatgen.core import Element, Structure

from chggen_flows.core.device import resolve_device
from chggen_flows.core.generation.candidate import (
    GeneratedCandidate,
    check_elements,
    finalize_candidate,
)
from chggen_flows.core.generation.generate import candidate_seed, check_noise_range
from chggen_flows.core.generation.sampler import SamplingJob, ScoreFn, sample_jobs
from chggen_flows.core.generation.schedule import repaint_schedule, sigma_levels
from chggen_flows.core.generation.settings import InpaintSettings, SamplerSettings
from chggen_flows.core.symmetry.guests import symmetrize_guests
from chggen_flows.errors import InputError


def parse_guests(text: str) -> dict[str, int]:
    """Parse ``"Li:4"`` or ``"Li:2,Na:1"`` into ``{"Li": 4}``; InputError on bad syntax."""
    guests: dict[str, int] = {}
    hint = "write guests as ELEMENT:COUNT[,ELEMENT:COUNT...], e.g. Li:4"
    for part in filter(None, (p.strip() for p in text.split(","))):
        symbol, sep, count = part.partition(":")
        symbol = symbol.strip()
        if not sep or not Element.is_valid_symbol(symbol) or not count.strip().isdigit():
            raise InputError(f"bad guest specification {part!r}", hint=hint)
        if int(count) < 1:
            raise InputError(f"guest count must be >= 1 in {part!r}", hint=hint)
        guests[symbol] = guests.get(symbol, 0) + int(count)
    if not guests:
        raise InputError(f"no guests in {text!r}", hint=hint)
    return guests


#: Key of a host structure's ``properties`` that holds its :class:`GuestStart`.
GUEST_START_KEY = "guest_start"


@dataclass(frozen=True)
class GuestStart:
    """Where a host's guests begin (a warm start), carried in the host's ``properties``.

    Attributes
    ----------
    species
        One element per guest atom (a permutation of the guest counts).
    frac_coords
        Fractional coordinates in the host's cell, one row per guest.
    sigma
        Noise (Å) the guests start at: the walk begins at the highest level at or below
        it, and its RePaint jumps stay below that level.
    """

    species: tuple[str, ...]
    frac_coords: tuple[tuple[float, float, float], ...]
    sigma: float

    def attach(self, host: Structure) -> Structure:
        """A copy of ``host`` that carries this start."""
        out = host.copy()
        out.properties[GUEST_START_KEY] = {
            "species": list(self.species),
            "frac_coords": [list(map(float, row)) for row in self.frac_coords],
            "sigma": float(self.sigma),
        }
        return out

    @classmethod
    def of(cls, host: Structure) -> GuestStart | None:
        """The start ``host`` carries, or None."""
        data: Any = (host.properties or {}).get(GUEST_START_KEY)
        if not data:
            return None
        coords = tuple(tuple(float(x) for x in row) for row in data["frac_coords"])
        return cls(tuple(data["species"]), coords, float(data["sigma"]))

    def order(self, guests: dict[str, int]) -> list[str]:
        """The guest atoms in the start's order (InputError if the counts differ)."""
        counts = {el: self.species.count(el) for el in set(self.species)}
        if counts != {el: n for el, n in guests.items() if n}:
            raise InputError(
                f"the host's guest start places {counts}, the guests are {dict(guests)}",
                hint="give the host without its guest start, or matching guest counts",
            )
        return list(self.species)


def _start_level(settings: SamplerSettings, sigma: float) -> int:
    """The highest level index whose noise is at or below ``sigma`` (at least 1)."""
    sigmas = sigma_levels(settings.n_levels, settings.sigma_max, settings.sigma_min)
    return max(1, max(t for t, level in enumerate(sigmas) if level <= sigma))  # sigma_0 = 0


def inpaint(
    hosts: Sequence[Structure],
    guests: Sequence[dict[str, int]],
    score_fn: ScoreFn,
    settings: SamplerSettings | None = None,
    inpaint_settings: InpaintSettings | None = None,
    seed: int = 0,
    device: str | torch.device = "auto",
    progress: bool | None = None,
    seeds: Sequence[int] | None = None,
) -> list[GeneratedCandidate]:
    """Place guest atoms in host structures by RePaint inpainting, many per batch.

    Parameters
    ----------
    hosts
        Host structures (ordered; any host: generated and symmetrised, or the user's).
    guests
        Guest species and counts for each host, e.g. ``{"Li": 4}`` (same length as
        ``hosts``; repeat a host to get several candidates).
    score_fn
        The score model.
    settings, inpaint_settings
        Sampler and resampling settings.
    seed
        Seed of the call; candidate ``i`` uses ``candidate_seed(seed, i)``.
    device
        ``"auto"``, ``"cpu"``, ``"cuda"``...
    progress
        Progress bar over noise levels (None: on a terminal only).
    seeds
        Explicit per-candidate seeds (overrides ``seed``).

    A host that carries a :class:`GuestStart` (``host.properties["guest_start"]``) is
    sampled from it (a shorter walk; its candidate's ``metadata["guest_start_sigma"]``
    says so), the others from the prior.

    Returns
    -------
    list[GeneratedCandidate]
        Structures whose first sites are the host's sites, unchanged (positions,
        species, properties), followed by the guests; with
        ``guest_symmetry="symmetric"`` the guests are on orbits of the imposed group
        (:func:`symmetric_candidate`).
    """
    if len(hosts) != len(guests) or (seeds is not None and len(seeds) != len(hosts)):
        raise InputError("inpaint needs one guest specification (and seed) per host")
    settings = settings or SamplerSettings()
    inpaint_settings = inpaint_settings or InpaintSettings()
    check_noise_range(score_fn, settings)
    torch_device = resolve_device(device)
    jobs: list[SamplingJob] = []
    starts: list[GuestStart | None] = []
    for index, (host, guest) in enumerate(zip(hosts, guests, strict=True)):
        if not host.is_ordered:
            raise InputError(
                f"host {host.formula} has partial occupancies",
                hint="give an ordered host, or split a disordered one into host and guests "
                "with chggen_flows.core.hosts.host_from_structure",
            )
        if not guest or min(guest.values()) < 1:
            raise InputError(f"guests {guest} must name at least one atom to place")
        start = GuestStart.of(host)
        guest_symbols = (
            start.order(guest) if start else [s for s, n in guest.items() for _ in range(n)]
        )
        check_elements(score_fn, [site.specie.symbol for site in host] + guest_symbols)
        species = [site.specie.Z for site in host] + [Element(s).Z for s in guest_symbols]
        known = np.vstack([host.cart_coords, np.full((len(guest_symbols), 3), np.nan)])
        own_seed = int(seeds[index]) if seeds is not None else candidate_seed(seed, index)
        job = SamplingJob(species, np.array(host.lattice.matrix), own_seed, known)
        if start:
            guest_pos = host.lattice.get_cartesian_coords(np.array(start.frac_coords))
            job.start_pos = np.vstack([np.full((len(host), 3), np.nan), guest_pos])
        jobs.append(job)
        starts.append(start)
    # one walk per start level (jobs of one walk share their chunks' noise draws); a
    # warm start's walk begins at its level and never jumps above it (a RePaint jump
    # higher would undo the start)
    groups: dict[float | None, list[int]] = {}
    for i, start in enumerate(starts):
        groups.setdefault(start.sigma if start else None, []).append(i)
    results: list[Any] = [None] * len(jobs)
    for sigma, group in groups.items():
        top = settings.n_levels if sigma is None else _start_level(settings, sigma)
        walk = repaint_schedule(top, inpaint_settings.jump_length, inpaint_settings.n_resample)
        done = sample_jobs(
            score_fn, [jobs[i] for i in group], settings, walk, torch_device, progress, "inpainting"
        )
        for i, result in zip(group, done, strict=True):
            results[i] = result
    candidates = []
    for host, guest, job, result, start in zip(hosts, guests, jobs, results, starts, strict=True):
        structure = host.copy()
        structure.properties.pop(GUEST_START_KEY, None)
        n_host = len(host)
        for z, position in zip(job.species[n_host:], result.positions[n_host:], strict=True):
            structure.append(Element.from_Z(z), position, coords_are_cartesian=True)
        metadata = {
            "seed": job.seed,
            "mode": "inpaint",
            "host_formula": host.composition.formula,
            "guests": dict(guest),
            "formula": structure.composition.formula,
            "natoms": len(structure),
            "lattice_type": "host",
            "v0_source": "host",
            "volume": round(float(host.volume), 6),
            "final_score_norm": result.final_score_norm,
            "model_calls": result.model_calls,
            "sampler": settings.model_dump(mode="json"),
            "inpaint": inpaint_settings.model_dump(mode="json"),
            "device": str(torch_device),
        }
        if start is not None:
            metadata["guest_start_sigma"] = start.sigma
        candidate = finalize_candidate(structure, settings.min_distance, metadata)
        if inpaint_settings.symmetric:
            candidate = symmetric_candidate(candidate, guest, inpaint_settings, settings)
        candidates.append(candidate)
    return candidates


def symmetric_candidate(
    candidate: GeneratedCandidate,
    guests: dict[str, int],
    inpaint_settings: InpaintSettings,
    settings: SamplerSettings,
) -> GeneratedCandidate:
    """The candidate with its guests snapped onto the host's symmetry (a new candidate).

    Invalid candidates come back unchanged. ``metadata["guest_symmetry"]`` records the
    host's and the imposed space group, whether a proper subgroup was needed and how far
    the guests moved.
    """
    if not candidate.valid:
        return candidate
    result = symmetrize_guests(
        candidate.structure,
        guests,
        max_displacement=inpaint_settings.guest_max_displacement,
        min_distance=settings.min_distance,
    )
    record = {
        "host_spacegroup": result.host_spacegroup,
        "spacegroup_number": result.spacegroup_number,
        "spacegroup_symbol": result.spacegroup_symbol,
        "order": result.order,
        "host_order": result.host_order,
        "subgroup": result.subgroup,
        "max_displacement": round(result.max_displacement, 6),
        "rms_displacement": round(result.rms_displacement, 6),
    }
    return finalize_candidate(
        result.structure, settings.min_distance, {**candidate.metadata, "guest_symmetry": record}
    )
