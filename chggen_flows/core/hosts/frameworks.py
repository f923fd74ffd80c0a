"""Random symmetric frameworks: PyXtal structures of the host species only.

For a target (composition, Z, guest species) the host atoms (e.g. the 2 x Z Si of
Li5Si2) are placed by :func:`~chggen_flows.core.baseline.random_search.pyxtal_structure`
in a random space group compatible with their count, in a cell of the *whole*
candidate's volume (V0 x all atoms, guests included: they are inpainted into it
afterwards). Random search's symmetry for the framework, the model for the guests.

With ``guest_start_sigma`` PyXtal places every atom, guests included, and the guests'
symmetric sites become their start (:class:`~chggen_flows.core.generation.inpaint.
GuestStart`): the model refines a symmetric arrangement instead of drawing one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from chggen_flows.core.baseline.random_search import BaselineSettings, pyxtal_structure
from chggen_flows.core.generation.generate import candidate_seed, cell_species
from chggen_flows.core.generation.inpaint import GuestStart
from chggen_flows.core.generation.volume import estimate_v0
from chggen_flows.core.hosts.analogue import AnalogueTarget
from chggen_flows.core.hosts.seed import HostSeed
from chggen_flows.core.symmetry import classify_symmetry


def random_frameworks(
    target: AnalogueTarget,
    count: int,
    v0: float | None = None,
    seed: int = 0,
    settings: BaselineSettings | None = None,
    guest_start_sigma: float | None = None,
) -> list[HostSeed]:
    """``count`` random symmetric frameworks of ``target``'s host species.

    Parameters
    ----------
    target
        Composition, Z and guest species (:meth:`AnalogueTarget.build`).
    count
        Number of frameworks (each from its own seed ``candidate_seed(seed, i)``).
    v0
        Volume per atom of the target (Å^3); None: :func:`estimate_v0` of the composition.
    seed
        Seed of the call.
    settings
        PyXtal settings (groups, attempts, tolerances); default: every symmetric group
        compatible with the host counts.
    guest_start_sigma
        None: PyXtal places the host atoms only, the guests are drawn from the prior.
        A sigma (Å): PyXtal places all atoms (a group compatible with every count) and
        the host carries the guests' sites as its :class:`GuestStart` at that sigma.

    Returns
    -------
    list[HostSeed]
        ``kind="random_framework"``; ``info`` holds the seed, the requested and the
        obtained space group, the attempts and V0.

    Raises
    ------
    InputError
        No space group fits the host counts, or PyXtal failed every attempt.
    """
    settings = settings or BaselineSettings()
    if v0 is None:
        v0 = estimate_v0(target.composition).volume_per_atom
    symbols = cell_species(target.composition, target.formula_units)
    host_symbols = [s for s in symbols if s not in target.guests]
    volume = len(symbols) * v0
    seeds = []
    for index in range(count):
        own_seed = candidate_seed(seed, index)
        rng = np.random.default_rng(own_seed)
        if guest_start_sigma is None:
            structure, info = pyxtal_structure(host_symbols, volume, rng, settings)
        else:
            structure, info = _with_guest_start(
                symbols, target, volume, rng, settings, guest_start_sigma
            )
        obtained = classify_symmetry(structure, settings.symprec, settings.angle_tolerance)
        seeds.append(
            HostSeed(
                structure,
                target.guest_counts,
                "random_framework",
                {
                    "seed": own_seed,
                    "formula_units": target.formula_units,
                    "framework": structure.composition.reduced_formula,
                    "v0": round(v0, 4),
                    "framework_spacegroup_requested": info["spacegroup_requested"],
                    "framework_spacegroup_obtained": obtained.number,
                    "attempts": info["attempts"],
                    **({"guest_start_sigma": guest_start_sigma} if guest_start_sigma else {}),
                },
            )
        )
    return seeds


def _with_guest_start(
    symbols: list[str],
    target: AnalogueTarget,
    volume: float,
    rng: np.random.Generator,
    settings: BaselineSettings,
    sigma: float,
) -> tuple[object, dict]:
    """A PyXtal structure of every atom, split: the host, carrying the guests' sites."""
    full, info = pyxtal_structure(symbols, volume, rng, settings)
    guests = [i for i, site in enumerate(full) if site.specie.symbol in target.guests]
    start = GuestStart(
        tuple(full[i].specie.symbol for i in guests),
        tuple(tuple(float(x) for x in full[i].frac_coords) for i in guests),
        sigma,
    )
    host = full.copy()
    host.remove_sites(guests)
    return start.attach(host), info


def repeat_seeds(seeds: Sequence[HostSeed], total: int) -> list[HostSeed]:
    """``total`` hosts cycling through ``seeds`` (several inpaintings per host)."""
    return [seeds[i % len(seeds)] for i in range(total)] if seeds else []
