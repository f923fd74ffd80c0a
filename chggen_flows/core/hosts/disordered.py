"""Disordered structures as hosts: fully occupied sites are the host, the partially
occupied species are the guests.

For a structure with partial occupancies (a CIF with ``_atom_site_occupancy`` < 1, or
two species on one site):

* every site fully occupied by one species belongs to the host;
* every species on a partially occupied site is a guest; in a cell repeated m times it
  counts m x (sum of its occupancies over the cell's sites), i.e. occupancy x
  multiplicity; m is the smallest number (up to ``max_supercell``) that makes every
  count whole. When none does, the m with the smallest rounding error is used and the
  counts are rounded (floor or ceiling per species, chosen to keep the cell
  charge-neutral when oxidation states are known, then nearest); the rounding is
  recorded with the host;
* mixed sites (two species) give guests of both species.

The guests are then inpainted anywhere in the supercell, not only on the listed sites.
Two baselines work on the same supercell: :func:`ewald_orderings` (pymatgen's
``OrderDisorderedStructureTransformation``, best N by Ewald energy) and
:func:`enumerate_orderings` (every ordering of the listed sites, the exact answer
within the site constraint, where there are few enough).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pymatgen.core import Composition, Element, Structure

from chggen_flows.core.hosts.cells import supercell
from chggen_flows.core.hosts.seed import HostSeed
from chggen_flows.errors import InputError

#: Occupancies this close to 1 count as full; counts this close to whole are whole.
OCCUPANCY_TOLERANCE = 0.02


def _symbol(species: Any) -> str:
    return getattr(species, "element", species).symbol


def _oxidation_states(structure: Structure) -> dict[str, float] | None:
    """Oxidation states the structure carries (Species with oxi_state), else None."""
    states: dict[str, float] = {}
    for site in structure:
        for species in site.species:
            oxi = getattr(species, "oxi_state", None)
            if oxi is None:
                return None
            states[_symbol(species)] = float(oxi)
    return states


@dataclass(frozen=True)
class DisorderedHost:
    """A disordered structure split into host and guests on one supercell.

    Attributes
    ----------
    seed
        The ordered host and the guest counts (``kind="disordered"``); ``info`` holds
        ``supercell``, ``multiple``, ``guests_exact``, ``rounding`` (per species, empty
        when the counts are whole), ``charge`` (of host + guests, None when oxidation
        states are unknown), ``listed_sites`` and ``source_formula``.
    disordered
        The supercell with partial occupancies rescaled to the (rounded) guest counts:
        what the Ewald baseline orders.
    listed_sites
        Indices in ``disordered`` of the partially occupied sites.
    """

    seed: HostSeed
    disordered: Structure
    listed_sites: tuple[int, ...]

    @property
    def guests(self) -> dict[str, int]:
        """Guest counts of the supercell."""
        return self.seed.guests


def _guest_amounts(structure: Structure) -> tuple[dict[str, float], list[int]]:
    amounts: dict[str, float] = {}
    partial = []
    for index, site in enumerate(structure):
        species = site.species
        full = len(species) == 1 and species.num_atoms >= 1 - OCCUPANCY_TOLERANCE
        if full:
            continue
        partial.append(index)
        for sp, occupancy in species.items():
            amounts[_symbol(sp)] = amounts.get(_symbol(sp), 0.0) + occupancy
    return amounts, partial


def _choose_multiple(
    amounts: dict[str, float], max_supercell: int, multiple: int | None
) -> tuple[int, bool]:
    """The supercell multiple and whether its counts are whole."""

    def error(m: int) -> float:
        return max(abs(m * a - round(m * a)) for a in amounts.values())

    if multiple is not None:
        return multiple, error(multiple) <= OCCUPANCY_TOLERANCE
    for m in range(1, max_supercell + 1):
        if error(m) <= OCCUPANCY_TOLERANCE and all(round(m * a) >= 0 for a in amounts.values()):
            return m, True
    best = min(range(1, max_supercell + 1), key=lambda m: (error(m), m))
    return best, False


def _rounded_counts(
    exact: dict[str, float], host_charge: float | None, states: dict[str, float] | None
) -> dict[str, int]:
    """Floor or ceiling per species: neutral first (when charges are known), then nearest."""
    options = [sorted({math.floor(v), math.ceil(v)}) for v in exact.values()]
    best: tuple[float, float, dict[str, int]] | None = None
    for combo in itertools.product(*options):
        counts = dict(zip(exact, combo, strict=True))
        if host_charge is not None and states is not None:
            charge = abs(host_charge + sum(states[s] * n for s, n in counts.items()))
        else:
            charge = 0.0
        off = sum(abs(n - exact[s]) for s, n in counts.items())
        key = (round(charge, 6), off, counts)
        if best is None or key[:2] < best[:2]:
            best = key
    assert best is not None
    return best[2]


def disordered_host(
    structure: Structure,
    max_supercell: int = 8,
    multiple: int | None = None,
) -> DisorderedHost:
    """Split a disordered structure into an ordered host and guests (module docstring).

    Parameters
    ----------
    structure
        A structure with partial occupancies.
    max_supercell
        Largest supercell multiple tried for whole guest counts.
    multiple
        Use exactly this supercell multiple (e.g. a larger cell than the smallest, to
        give the guests more freedom); counts are rounded if needed.

    Raises
    ------
    InputError
        The structure is ordered, or the multiple is not >= 1.
    """
    if structure.is_ordered:
        raise InputError(
            f"{structure.composition.reduced_formula} has no partial occupancies",
            hint="an ordered host needs its guests named (--guests)",
        )
    if max_supercell < 1 or (multiple is not None and multiple < 1):
        raise InputError("supercell multiples must be >= 1")
    states = _oxidation_states(structure)
    amounts, _ = _guest_amounts(structure)
    m, whole = _choose_multiple(amounts, max_supercell, multiple)
    big, factors = supercell(structure, m)
    amounts, partial = _guest_amounts(big)
    host_sites = [i for i in range(len(big)) if i not in set(partial)]
    host_charge = None
    if states is not None:
        host_charge = sum(states[_symbol(big[i].specie)] for i in host_sites)
    counts = (
        {s: round(a) for s, a in amounts.items()}
        if whole
        else _rounded_counts(amounts, host_charge, states)
    )
    counts = {s: n for s, n in counts.items() if n > 0}
    host = Structure.from_sites([big[i] for i in host_sites])
    host.remove_oxidation_states()
    charge = None
    if host_charge is not None and states is not None:
        charge = round(host_charge + sum(states[s] * n for s, n in counts.items()), 6)
    rounding = {
        s: {"exact": round(a, 4), "rounded": counts.get(s, 0)}
        for s, a in amounts.items()
        if abs(a - counts.get(s, 0)) > OCCUPANCY_TOLERANCE
    }
    disordered = _rescaled(big, partial, amounts, counts)
    info = {
        "source_formula": structure.composition.formula,
        "multiple": m,
        "supercell": list(factors),
        "guests_exact": {s: round(a, 4) for s, a in amounts.items()},
        "rounding": rounding,
        "charge": charge,
        "listed_sites": len(partial),
    }
    seed = HostSeed(host, counts, "disordered", info)
    return DisorderedHost(seed, disordered, tuple(partial))


def _rescaled(
    big: Structure, partial: Sequence[int], amounts: dict[str, float], counts: dict[str, int]
) -> Structure:
    """The supercell with each guest's occupancies scaled to its rounded count."""
    copy = big.copy()
    empty = []
    for index in partial:
        species = {
            sp: occupancy * counts.get(_symbol(sp), 0) / amounts[_symbol(sp)]
            for sp, occupancy in big[index].species.items()
        }
        species = {sp: x for sp, x in species.items() if x > 0}
        if species:
            copy.replace(index, species, big[index].frac_coords)
        else:
            empty.append(index)
    copy.remove_sites(empty)
    return copy


def host_from_structure(
    structure: Structure,
    guests: dict[str, int] | None = None,
    max_supercell: int = 8,
) -> HostSeed:
    """The host and guests a user's structure gives: an ordered structure with named
    guests as it is (``kind="given"``), a disordered one through :func:`disordered_host`.

    This is what ``chggen generate --host`` and a campaign's ``host: {structure: ...}``
    call instead of refusing partial occupancies.

    Raises
    ------
    InputError
        An ordered structure without guests, or a disordered one with guests named
        (its partial occupancies define them).
    """
    if structure.is_ordered:
        if not guests:
            raise InputError(
                f"host {structure.composition.reduced_formula} is ordered: name its guests",
                hint="e.g. --guests Li:4, or give a CIF with partial occupancies",
            )
        return HostSeed(structure, dict(guests), "given", {})
    if guests:
        raise InputError(
            f"host {structure.composition.reduced_formula} has partial occupancies, which "
            "define its guests",
            hint="drop the guests, or give an ordered host",
        )
    return disordered_host(structure, max_supercell).seed


def neutral_charges(host: DisorderedHost) -> dict[str, float]:
    """Oxidation states that make the supercell neutral, for the Ewald ranking.

    The structure's own oxidation states when it carries them; else pymatgen's guess of
    the ordered composition; else guests and anions at their most common oxidation state
    and the remaining charge shared equally by the host's other atoms (Co 3.5+ in
    Li0.5CoO2: only differences between orderings matter for the ranking).
    """
    states = _oxidation_states(host.disordered)
    if states is not None:
        return states
    composition = host.seed.host.composition + Composition(host.guests)
    try:
        guesses = composition.oxi_state_guesses(max_sites=-40)
    except Exception:
        guesses = []
    if guesses:
        return dict(guesses[0])
    states = {}
    for symbol in {el.symbol for el in composition.elements}:
        element = Element(symbol)
        common = element.common_oxidation_states
        if symbol in host.guests or (common and common[0] < 0):
            states[symbol] = float(common[0] if common else 0)
    rest = [el.symbol for el in composition.elements if el.symbol not in states]
    charge = sum(states[s] * composition[s] for s in states)
    n_rest = sum(composition[s] for s in rest)
    for symbol in rest:
        states[symbol] = -charge / n_rest
    return states


def ewald_orderings(host: DisorderedHost, count: int = 16) -> list[dict[str, Any]]:
    """The ``count`` orderings of lowest Ewald energy (pymatgen
    ``OrderDisorderedStructureTransformation``) of the same supercell.

    Returns
    -------
    list[dict]
        ``{"structure": ordered Structure (no oxidation states), "ewald_energy": eV}``,
        lowest first.
    """
    from pymatgen.transformations.standard_transformations import (
        OrderDisorderedStructureTransformation,
    )

    states = neutral_charges(host)
    decorated = host.disordered.copy()
    decorated.remove_oxidation_states()
    decorated.add_oxidation_state_by_element(states)
    ranked = OrderDisorderedStructureTransformation().apply_transformation(
        decorated, return_ranked_list=count
    )
    out = []
    for item in ranked:
        structure = item["structure"].copy()
        structure.remove_oxidation_states()
        out.append({"structure": structure, "ewald_energy": float(item["energy"])})
    return out


def count_orderings(host: DisorderedHost, limit: int | None = None) -> int:
    """How many orderings the listed sites allow (stops counting past ``limit``)."""
    total = 0
    for _ in _assignments(host):
        total += 1
        if limit is not None and total > limit:
            break
    return total


def _assignments(host: DisorderedHost):
    """Every placement of the guests on the listed sites (species allowed per site)."""
    allowed = {
        index: {_symbol(sp) for sp in host.disordered[index].species} for index in host.listed_sites
    }
    guests = sorted(host.guests.items())

    def place(k: int, free: frozenset[int], chosen: dict[str, tuple[int, ...]]):
        if k == len(guests):
            yield dict(chosen)
            return
        symbol, n = guests[k]
        options = sorted(i for i in free if symbol in allowed[i])
        for combo in itertools.combinations(options, n):
            chosen[symbol] = combo
            yield from place(k + 1, free - set(combo), chosen)
        chosen.pop(symbol, None)

    yield from place(0, frozenset(host.listed_sites), {})


def enumerate_orderings(
    host: DisorderedHost, limit: int = 500, unique: bool = True
) -> list[Structure] | None:
    """Every ordering of the guests on the listed sites of the supercell, or None when
    there are more than ``limit``.

    Parameters
    ----------
    unique
        Keep one structure per symmetry-equivalent group (pymatgen StructureMatcher),
        so each distinct ordering is relaxed once.
    """
    if count_orderings(host, limit) > limit:
        return None
    structures = []
    for placement in _assignments(host):
        structure = host.seed.host.copy()
        for symbol, indices in placement.items():
            for index in indices:
                structure.append(Element(symbol), host.disordered[index].frac_coords)
        structures.append(structure)
    if unique and len(structures) > 1:
        from pymatgen.analysis.structure_matcher import StructureMatcher

        groups = StructureMatcher(primitive_cell=False, scale=False, attempt_supercell=False)
        structures = [group[0] for group in groups.group_structures(structures)]
    return structures
