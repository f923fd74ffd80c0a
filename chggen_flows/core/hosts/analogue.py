"""Analogue hosts: known frameworks of other chemistries with the target's host part.

Matching rule
-------------
The target (composition C, Z formula units, guest species G; by default G is the most
electropositive element of C) splits into a *framework* F = C - G and guests. A known
structure T is a template when

1. T holds every element of F (the *framework elements*) and its other elements, the
   *exchangeable species*, are each less electronegative (Pauling) than the most
   electronegative framework element: cations that sit in the framework's voids
   (Cd, Ni, Sn, Na for P2S6; never Cl or O next to a sulphide framework);
2. T's framework elements are in F's ratio (P:S = 1:3 for ZnP2S6 and ZnPS3, 2:7 for
   Zn2P2S7, pure Si for Li5Si2);
3. T's cell, or its framework's primitive cell, holds k framework units (F per target
   formula unit) with Z / k a whole number m; the host is that cell repeated m times
   (most isotropic diagonal supercell). A template where no such m exists is *skipped
   with its reason*, never forced, as is one whose framework would have to be
   strained by more than ``max_linear_strain`` to reach the target volume, or whose
   host + guests exceed ``max_atoms``.

The exchangeable species are removed and the framework is isotropically scaled to the
target volume V0 x (framework atoms + guest atoms), V0 being the campaign's volume per
atom (:func:`~chggen_flows.core.generation.volume.estimate_v0`).

Ranking (the cap on templates per target)
-----------------------------------------
Templates are ordered by, in turn: whether the exchangeable species carry the same
charge per framework unit as the target's guests (oxidation-state guesses; Cd2P2S6 and
Na4P2S6 both give P2S6 4-, as ZnPS3 does), how far the number of exchangeable atoms
per framework unit is from the guests', the template's energy above hull (sources
without one count as 0.05 eV/atom), and the strain needed to reach V0. The cap
``max_templates`` is then filled round-robin over space groups (the best template of
each space group first), so the hosts are diverse frameworks rather than one
structure type in many chemistries.

Plain substitution (:func:`substitute`) is the baseline: the exchangeable atoms of the
same template cell replaced one for one by the guests where the counts are equal, no
inpainting.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from pymatgen.core import Composition, Element, Structure

from chggen_flows.core.generation.inpaint import GuestStart
from chggen_flows.core.generation.volume import estimate_v0
from chggen_flows.core.hosts.cells import scaled_to, supercell
from chggen_flows.core.hosts.seed import HostSeed
from chggen_flows.core.sources.entry import StructureEntry
from chggen_flows.errors import InputError

#: e_above_hull assumed for ranking when a source gives none (eV/atom).
UNKNOWN_E_ABOVE_HULL = 0.05


def default_guests(composition: Composition) -> tuple[str, ...]:
    """The most electropositive element of ``composition`` (Zn in ZnPS3, Li in Li5Si2)."""
    elements = sorted(composition.elements, key=lambda el: el.X if not math.isnan(el.X) else 4.0)
    return (elements[0].symbol,)


@dataclass(frozen=True)
class AnalogueTarget:
    """A target of the analogue search: composition, formula units and guest species.

    Attributes
    ----------
    composition
        Formula unit (e.g. ``ZnP2S6``).
    formula_units
        Z: formula units per cell.
    guests
        Exchangeable (guest) species; default :func:`default_guests`.
    """

    composition: Composition
    formula_units: int = 1
    guests: tuple[str, ...] = ()

    @classmethod
    def build(
        cls,
        composition: str | Composition,
        formula_units: int = 1,
        guests: Sequence[str] | str | None = None,
    ) -> AnalogueTarget:
        """A checked target."""
        try:
            comp = Composition(composition)
        except Exception as exc:
            raise InputError(f"bad composition {composition!r}: {exc}") from exc
        if formula_units < 1:
            raise InputError(f"formula units must be >= 1, got {formula_units}")
        chosen = tuple([guests] if isinstance(guests, str) else guests or default_guests(comp))
        missing = [g for g in chosen if Element(g) not in comp.elements]
        if missing:
            raise InputError(
                f"guest(s) {', '.join(missing)} not in {comp.formula}",
                hint="guests are elements of the target composition",
            )
        if {el.symbol for el in comp.elements} <= set(chosen):
            raise InputError(
                f"{comp.formula} has no framework left once {', '.join(chosen)} are removed",
                hint="name fewer guest species",
            )
        return cls(comp, int(formula_units), chosen)

    @property
    def framework(self) -> Composition:
        """The host part of one formula unit (``P2S6`` of ``ZnP2S6``)."""
        return Composition(
            {el: n for el, n in self.composition.items() if el.symbol not in self.guests}
        )

    @property
    def guest_counts(self) -> dict[str, int]:
        """Guest atoms per cell (per formula unit x Z)."""
        return {g: round(self.composition[g] * self.formula_units) for g in self.guests}

    def guest_charge_per_unit(self) -> float | None:
        """Summed oxidation states of the guests per formula unit, or None if unknown."""
        states = _oxidation_guess(self.composition.formula)
        if states is None:
            return None
        return sum(states[g] * self.composition[g] for g in self.guests)


@lru_cache(maxsize=4096)
def _oxidation_guess(formula: str) -> dict[str, float] | None:
    """The most likely oxidation states of a formula's elements (pymatgen), or None."""
    composition = Composition(formula).reduced_composition
    if len(composition) > 5 or composition.num_atoms > 40:
        return None  # pymatgen's guesser is combinatorial: too slow for such formulas
    try:
        guesses = composition.oxi_state_guesses(max_sites=-40)
    except Exception:
        return None
    return dict(guesses[0]) if guesses else None


@dataclass(frozen=True)
class SkippedTemplate:
    """A known structure that matched the framework but could not serve as a host."""

    material_id: str
    formula: str
    reason: str


@dataclass(frozen=True)
class AnalogueHost:
    """A template's framework prepared for one target.

    Attributes
    ----------
    seed
        Host (framework scaled to the target volume) and guests to inpaint.
    template_cell
        The template in the same (super)cell and scaling, exchangeable species kept:
        what :func:`substitute` replaces one for one.
    entry
        The template as the source gave it.
    rank
        Position after ranking (0 = best).
    """

    seed: HostSeed
    template_cell: Structure
    entry: StructureEntry
    rank: int = 0

    @property
    def template(self) -> dict[str, Any]:
        """The template's provenance (material id, formula, space group, E_hull, source)."""
        return self.seed.info["template"]


@dataclass
class AnalogueSearch:
    """The result of :func:`find_analogue_hosts`: hosts kept, and every other template
    whose framework matched with the reason it was not used."""

    target: AnalogueTarget
    hosts: list[AnalogueHost] = field(default_factory=list)
    skipped: list[SkippedTemplate] = field(default_factory=list)


def framework_matches(target: AnalogueTarget, composition: Composition) -> tuple[bool, str]:
    """Whether a template composition has the target's framework (rules 1 and 2)."""
    framework = target.framework
    frame_symbols = {el.symbol for el in framework.elements}
    own = {el.symbol for el in composition.elements}
    if not frame_symbols <= own:
        return False, f"lacks framework element(s) {', '.join(sorted(frame_symbols - own))}"
    anion_x = max(el.X for el in framework.elements)
    foreign = sorted(
        s for s in own - frame_symbols if math.isnan(Element(s).X) or anion_x <= Element(s).X
    )
    if foreign:
        return False, f"{', '.join(foreign)} cannot be exchangeable (not less electronegative)"
    part = Composition({el: composition[el] for el in framework.elements})
    if part.reduced_formula != framework.reduced_formula:
        return False, f"framework {part.reduced_formula} is not {framework.reduced_formula}"
    return True, ""


def _plain(composition: Composition) -> str:
    """``P2S6`` for P2 S6 (the framework per target formula unit, unreduced)."""
    return "".join(f"{el.symbol}{'' if n == 1 else f'{n:g}'}" for el, n in composition.items())


def _units(framework: Composition, cell: Composition) -> float:
    """Framework units (per target formula unit) in a cell."""
    element = framework.elements[0]
    return cell[element] / framework[element]


def _strip(structure: Structure, exchangeable: set[str]) -> Structure:
    host = structure.copy()
    host.remove_species(sorted(exchangeable))
    return host


def prepare_template(
    target: AnalogueTarget,
    entry: StructureEntry,
    v0: float,
    max_linear_strain: float = 0.2,
    max_atoms: int = 80,
) -> AnalogueHost | SkippedTemplate:
    """The host a matching template gives for ``target``, or why it gives none (rule 3)."""
    structure = entry.structure
    if not structure.is_ordered:
        return SkippedTemplate(entry.material_id, entry.formula, "template is disordered")
    framework = target.framework
    frame_symbols = {el.symbol for el in framework.elements}
    exchangeable = {el.symbol for el in structure.composition.elements} - frame_symbols
    guests = target.guest_counts
    z = target.formula_units
    cells = [("cell", structure)]
    stripped = _strip(structure, exchangeable)
    primitive = stripped.get_primitive_structure(tolerance=0.1)
    if len(primitive) < len(stripped):
        cells.append(("framework primitive cell", primitive))
    tried = []
    for label, cell in cells:
        k = _units(framework, cell.composition)
        tried.append(f"{k:g} {_plain(framework)} unit(s) in the {label}")
        multiple = z / k
        if abs(multiple - round(multiple)) > 1e-6 or round(multiple) < 1:
            continue
        multiple = round(multiple)
        full, factors = supercell(cell, multiple)
        host_part = _strip(full, exchangeable)
        n_total = len(host_part) + sum(guests.values())
        if n_total > max_atoms:
            return SkippedTemplate(
                entry.material_id,
                entry.formula,
                f"host + guests would be {n_total} atoms (> max_atoms {max_atoms})",
            )
        volume = v0 * n_total
        linear = (volume / full.volume) ** (1 / 3)
        if abs(linear - 1) > max_linear_strain:
            return SkippedTemplate(
                entry.material_id,
                entry.formula,
                f"framework would be scaled by {linear:.2f} in length to reach the target "
                f"volume (limit +/-{max_linear_strain:.0%}): its voids do not fit "
                f"{sum(guests.values())} guest(s) at V0 = {v0:.2f}",
            )
        template_cell = scaled_to(full, volume)
        host = _strip(template_cell, exchangeable)
        removed = {s: int(full.composition[s]) for s in sorted(exchangeable) if full.composition[s]}
        info = {
            "template": entry.provenance(),
            "formula_units": z,
            "framework": framework.reduced_formula,
            "cell": label,
            "supercell": list(factors),
            "removed": removed,
            "linear_scale": round(linear, 4),
            "v0": round(v0, 4),
        }
        return AnalogueHost(HostSeed(host, dict(guests), "analogue", info), template_cell, entry)
    return SkippedTemplate(
        entry.material_id,
        entry.formula,
        f"the framework holds {' and '.join(tried)}; "
        f"Z = {z} is not a whole multiple of that, so no cell of it takes the "
        f"{target.composition.reduced_formula} x {z} guests {target.guest_counts}",
    )


def _rank_key(target: AnalogueTarget, host: AnalogueHost) -> tuple[float, ...]:
    entry = host.entry
    framework = target.framework
    units = _units(framework, entry.composition)
    exchangeable = {el.symbol for el in entry.composition.elements} - {
        el.symbol for el in framework.elements
    }
    per_unit = sum(entry.composition[s] for s in exchangeable) / units
    want = sum(target.composition[g] for g in target.guests)
    charge_target = target.guest_charge_per_unit()
    states = _oxidation_guess(entry.composition.reduced_formula)
    if charge_target is None or states is None:
        charge_mismatch = 0.5
    else:
        charge = sum(states[s] * entry.composition[s] for s in exchangeable) / units
        charge_mismatch = 0.0 if abs(charge - charge_target) < 1e-6 else 1.0
    host.seed.info["charge_match"] = {0.0: True, 1.0: False}.get(charge_mismatch)
    above = entry.e_above_hull if entry.e_above_hull is not None else UNKNOWN_E_ABOVE_HULL
    return (
        charge_mismatch,
        abs(per_unit - want) / want,
        round(above, 3),
        abs(host.seed.info["linear_scale"] - 1),
    )


def find_analogue_hosts(
    target: AnalogueTarget,
    entries: Sequence[StructureEntry],
    v0: float | None = None,
    max_templates: int | None = 8,
    max_linear_strain: float = 0.2,
    max_atoms: int = 80,
) -> AnalogueSearch:
    """Hosts from known structures whose framework matches the target's (see module doc).

    Parameters
    ----------
    target
        Composition, Z and guest species (:meth:`AnalogueTarget.build`).
    entries
        Known structures (:func:`~chggen_flows.core.sources.load_structures`; filter
        out what a benchmark looks for there, e.g. ``exclude_elements=["Zn"]``).
    v0
        Target volume per atom in Å^3 (the campaign's V0); None: the shipped
        element-volume regression of the composition.
    max_templates
        Cap on hosts kept (ranked, round-robin over space groups); None keeps all.
    max_linear_strain
        Largest isotropic length change to reach the target volume.
    max_atoms
        Largest host + guests.

    Returns
    -------
    AnalogueSearch
        ``hosts`` ranked best first; ``skipped``: matching templates not used, with
        the reason (including those beyond the cap).
    """
    if v0 is None:
        v0 = estimate_v0(target.composition).volume_per_atom
    result = AnalogueSearch(target)
    ready: list[AnalogueHost] = []
    for entry in entries:
        matches, _ = framework_matches(target, entry.composition)
        if not matches:
            continue
        prepared = prepare_template(target, entry, v0, max_linear_strain, max_atoms)
        if isinstance(prepared, SkippedTemplate):
            result.skipped.append(prepared)
        else:
            ready.append(prepared)
    ranked = sorted(ready, key=lambda host: _rank_key(target, host))
    by_group: dict[int, list[AnalogueHost]] = defaultdict(list)
    for host in ranked:
        by_group[host.template["spacegroup_number"]].append(host)
    order: list[AnalogueHost] = []
    while any(by_group.values()):
        for group in [g for g in by_group if by_group[g]]:  # groups in rank order of their best
            order.append(by_group[group].pop(0))
    cap = len(order) if max_templates is None else max_templates
    for rank, host in enumerate(order[:cap]):
        host.seed.info["rank"] = rank
        result.hosts.append(AnalogueHost(host.seed, host.template_cell, host.entry, rank))
    for host in order[cap:]:
        result.skipped.append(
            SkippedTemplate(
                host.entry.material_id, host.entry.formula, f"beyond max_templates={cap}"
            )
        )
    return result


def _exchange_sites(host: AnalogueHost) -> list[int]:
    """Indices of the template's exchangeable atoms in ``host.template_cell``."""
    frame = {el.symbol for el in host.seed.host.composition.elements}
    return [i for i, site in enumerate(host.template_cell) if site.specie.symbol not in frame]


def _paired(cell: Structure, sites: Sequence[int], guests: dict[str, int]) -> list[tuple[int, str]]:
    """Sites and guest atoms paired in order of electronegativity (as many of each)."""
    ordered_sites = sorted(sites, key=lambda i: (cell[i].specie.X, i))
    ordered_guests = sorted(
        (g for g, n in guests.items() for _ in range(n)), key=lambda g: Element(g).X
    )
    return list(zip(ordered_sites, ordered_guests, strict=True))


def substitute(
    host: AnalogueHost, rattle: float | None = None, seed: int = 0
) -> Structure | SkippedTemplate:
    """Plain ion exchange of a template (the baseline): exchangeable atoms replaced one
    for one by the guests, in the same cell and volume as the inpainting host.

    Possible only where the template holds as many exchangeable atoms as the target
    has guests; otherwise the reason comes back as a :class:`SkippedTemplate`. With one
    guest species every exchangeable atom becomes it (``replace_species``); with several,
    exchangeable and guest atoms are paired in order of electronegativity.

    ``rattle`` (Å): each exchanged atom is then displaced by Gaussian noise of this
    standard deviation per axis (``seed``), so that the relaxation can leave the
    template's symmetric arrangement, a saddle for the new cation as often as a minimum
    (docs/hosts.md: on Zn-P-S this lowers the median E_d as much as any model step).
    """
    cell = host.template_cell
    guests = host.seed.guests
    sites = _exchange_sites(host)
    entry = host.entry
    if host.seed.info.get("cell") != "cell":
        return SkippedTemplate(
            entry.material_id,
            entry.formula,
            "the host is the framework's primitive cell, which holds none of the template's "
            "cations: nothing to exchange",
        )
    if len(sites) != sum(guests.values()):
        return SkippedTemplate(
            entry.material_id,
            entry.formula,
            f"{len(sites)} exchangeable atom(s) in the cell, {sum(guests.values())} guest(s): "
            "no one-for-one substitution",
        )
    structure = cell.copy()
    if len(guests) == 1:
        (guest,) = guests
        structure.replace_species({s: guest for s in {cell[i].specie.symbol for i in sites}})
    else:
        for index, guest in _paired(cell, sites, guests):
            structure.replace(index, guest)
    if rattle:
        import numpy as np

        rng = np.random.default_rng(seed)
        for index in sites:
            moved = structure[index].coords + rng.normal(0.0, rattle, 3)
            structure.replace(index, structure[index].species, moved, coords_are_cartesian=True)
    return structure


def template_guest_start(host: AnalogueHost, sigma: float, seed: int) -> GuestStart | str:
    """Where the guests of ``host`` begin: the template's own cation sites.

    The exchangeable atoms of the template (in the host's cell and scaling) give the
    start sites; with more sites than guests a random subset (``seed``) is taken, so the
    candidates of one host start from different arrangements. With several guest species
    sites and guests are paired by electronegativity, as in :func:`substitute`.

    Returns
    -------
    GuestStart or str
        The start, or why there is none (the host is the framework's primitive cell,
        which holds no cation; fewer sites than guests).
    """
    import numpy as np

    cell = host.template_cell
    guests = host.seed.guests
    sites = _exchange_sites(host)
    n_guests = sum(guests.values())
    if host.seed.info.get("cell") != "cell":
        return "the host is the framework's primitive cell: no template cation sites"
    if len(sites) < n_guests:
        return f"{len(sites)} template cation site(s) for {n_guests} guest(s)"
    if len(sites) > n_guests:
        rng = np.random.default_rng(seed)
        sites = sorted(rng.choice(sites, size=n_guests, replace=False).tolist())
    pairs = _paired(cell, sites, guests)
    coords = tuple(tuple(float(x) for x in cell[i].frac_coords) for i, _ in pairs)
    return GuestStart(tuple(g for _, g in pairs), coords, sigma)
