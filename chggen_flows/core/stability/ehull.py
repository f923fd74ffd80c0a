"""Decomposition energy E_d of candidates against a reference phase diagram."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from pydantic import BaseModel, Field
from pymatgen.analysis.phase_diagram import PhaseDiagram
from pymatgen.core import Composition, Structure

from chggen_flows.core.stability.references import ReferenceProvider, check_reference_potential
from chggen_flows.errors import InputError


class EdRecord(BaseModel):
    """E_d of one candidate and where it came from.

    Attributes
    ----------
    formula
        Reduced formula of the candidate.
    energy_per_atom
        The candidate's energy (eV/atom) on the reference's scale.
    e_d
        Energy above (positive) or below (negative) the hull, eV/atom.
    e_hull_per_atom
        Energy of the hull at the candidate's composition, eV/atom.
    decomposition
        Hull phases the composition decomposes into, ``{formula: fraction}`` (atom
        fractions).
    reference
        Label of the reference provider, e.g. ``"offline-chgnet"``.
    functional
        The functional of the reference (``"GGA_GGA+U"`` or ``"r2SCAN"``).
    potential
        The potential of the candidate's energy when the caller named it (checked
        against the hull), else None.
    warning
        Set when the composition lies on a stretch of the hull that a known phase missing
        from the reference would lower ("E_d may be too low here ..."), else None.
    """

    formula: str
    energy_per_atom: float
    e_d: float
    e_hull_per_atom: float
    decomposition: dict[str, float] = Field(default_factory=dict)
    reference: str
    functional: str
    potential: str | None = None
    warning: str | None = None


class HullPhase(BaseModel):
    """One reference phase: formula, entry id, formation energy and distance to the hull."""

    formula: str
    entry_id: str | None
    formation_energy_per_atom: float
    e_above_hull: float


class HullSummary(BaseModel):
    """What a reference hull is: its source, its phases and the known phases it lacks.

    Attributes
    ----------
    chemsys
        The chemical system, e.g. ``"Li-Si"``.
    reference
        Provider label (``offline-chgnet``, ``mp-gga-mp2020``, ``file:NAME``).
    source
        Where the entries come from, in words.
    functional
        ``GGA_GGA+U`` or ``r2SCAN``.
    stable
        Phases on the hull (lowest entry per formula).
    unstable
        Other distinct formulas/polymorphs, lowest first per formula.
    missing
        Known phases the reference lacks, ``[{formula, note}]``.
    """

    chemsys: str
    reference: str
    source: str
    functional: str
    stable: list[HullPhase]
    unstable: list[HullPhase]
    missing: list[dict[str, str]]

    def line(self) -> str:
        """One line for a terminal or a report."""
        text = (
            f"{self.reference} ({self.source}), {self.chemsys}: "
            f"{len(self.stable)} stable phases ({', '.join(p.formula for p in self.stable)})"
        )
        if self.missing:
            text += f"; lacks {', '.join(m.get('note') or m['formula'] for m in self.missing)}"
        return text


def largest_systems(structures: Iterable[Structure]) -> list[tuple[str, ...]]:
    """The chemical systems of ``structures`` not contained in another of them, sorted
    (the hulls a report describes: Li-Si covers Li and Si)."""
    systems = {tuple(sorted(el.symbol for el in s.composition.elements)) for s in structures}
    return sorted(x for x in systems if not any(set(x) < set(y) for y in systems))


def describe_hull(provider: ReferenceProvider, elements: Sequence[str]) -> HullSummary:
    """The hull of ``elements`` as ``provider`` builds it, with its missing phases."""
    diagram = provider.phase_diagram(elements)
    wanted = {str(e) for e in elements}
    phases = []
    for entry in diagram.all_entries:
        if not {el.symbol for el in entry.composition.elements} <= wanted:
            continue
        phases.append(
            HullPhase(
                formula=entry.composition.reduced_formula,
                entry_id=getattr(entry, "entry_id", None),
                formation_energy_per_atom=float(diagram.get_form_energy_per_atom(entry)),
                e_above_hull=float(diagram.get_e_above_hull(entry, allow_negative=True) or 0.0),
            )
        )
    phases.sort(key=lambda p: (p.e_above_hull > 1e-6, p.formula, p.e_above_hull))
    stable = [p for p in phases if p.e_above_hull <= 1e-6]
    names = {p.formula for p in stable}
    unstable = []
    for p in phases:
        if p.e_above_hull > 1e-6 and not any(u.formula == p.formula for u in unstable):
            unstable.append(p)
    missing = [m for m in provider.missing_phases(sorted(wanted)) if m["formula"] not in names]
    return HullSummary(
        chemsys="-".join(sorted(wanted)),
        reference=provider.label,
        source=provider.source,
        functional=provider.functional,
        stable=stable,
        unstable=sorted(unstable, key=lambda p: p.formula),
        missing=missing,
    )


def _face(diagram: PhaseDiagram, comp: Composition) -> frozenset[int]:
    """The hull phases a composition decomposes into, as ids of the diagram's entries."""
    return frozenset(
        id(entry) for entry, amount in diagram.get_decomposition(comp).items() if amount > 1e-9
    )


def hull_warning(
    diagram: PhaseDiagram, composition: Composition, missing: Sequence[Mapping[str, str]]
) -> str | None:
    """A warning when a missing known phase would lower the hull at ``composition``.

    A phase added at composition ``c_m`` below the hull splits the hull facet that holds
    ``c_m``. So a candidate is flagged when its own decomposition phases and those of
    ``c_m`` lie on one common facet of the hull, i.e. in the stretch (binary) or triangle
    (ternary) that the missing phase would cut. Candidates that are themselves a hull
    phase are not flagged (a phase far below the hull could also move neighbouring
    facets; this first-order rule does not look that far).
    """
    own = _face(diagram, composition)
    if len(own) < 2:
        return None
    elements = {el.symbol for el in diagram.elements}
    facets = [frozenset(id(diagram.qhull_entries[k]) for k in f) for f in diagram.facets]
    hits = []
    for item in missing:
        comp = Composition(item["formula"])
        if not {el.symbol for el in comp.elements} <= elements:
            continue
        joint = own | _face(diagram, comp)
        if any(joint <= facet for facet in facets):
            hits.append(item.get("note") or item["formula"])
    if not hits:
        return None
    return (
        f"E_d may be too low here: the reference hull lacks {'; '.join(hits)} "
        f"(known phase{'s' if len(hits) > 1 else ''} on this stretch of the hull)"
    )


def compute_e_d(
    items: Sequence[tuple[Composition | str, float]],
    provider: ReferenceProvider,
    potential: str | None = None,
) -> list[EdRecord]:
    """E_d of each (composition, energy per atom) against ``provider``'s hull.

    The phase diagram of each chemical system is built once (the provider caches it) and
    reused for every candidate of that system, which is what keeps thousands of
    candidates cheap. Candidates are not added to the diagram, so E_d is negative for a
    candidate below the reference hull.

    Parameters
    ----------
    items
        ``(composition, energy_per_atom)`` pairs; the energies must be on the
        provider's scale (CHGNet or corrected GGA/GGA+U for ``GGA_GGA+U``, raw r2SCAN for
        ``r2SCAN``).
    provider
        Reference phases (see :func:`~chggen_flows.core.stability.get_reference`).
    potential
        The potential that produced the energies (``"chgnet"``, ``"chgnet-r2scan"``,
        ...). When given, a hull made by another potential, or a DFT hull on another
        functional, is refused before any E_d is computed
        (:func:`~chggen_flows.core.stability.references.check_reference_potential`).

    Returns
    -------
    list of EdRecord
        In the order of ``items``.

    Raises
    ------
    InputError
        An unreadable composition or a non-finite energy.
    ReferenceDataError
        The reference lacks an element or chemical system of a candidate.
    PotentialMismatchError
        ``potential`` does not fit the hull.
    """
    if potential is not None:
        check_reference_potential(potential, provider)
    records = []
    for composition, energy in items:
        comp = _composition(composition)
        energy = float(energy)
        if not math.isfinite(energy):
            raise InputError(f"energy of {comp.reduced_formula} is not finite: {energy}")
        elements = [el.symbol for el in comp.elements]
        diagram = provider.phase_diagram(elements)
        decomposition = diagram.get_decomposition(comp)
        e_hull = sum(amount * entry.energy_per_atom for entry, amount in decomposition.items())
        records.append(
            EdRecord(
                formula=comp.reduced_formula,
                energy_per_atom=energy,
                e_d=energy - e_hull,
                e_hull_per_atom=e_hull,
                decomposition={
                    entry.composition.reduced_formula: float(amount)
                    for entry, amount in decomposition.items()
                },
                reference=provider.label,
                functional=provider.functional,
                potential=potential,
                warning=hull_warning(diagram, comp, provider.missing_phases(elements)),
            )
        )
    return records


def _composition(value: Composition | str) -> Composition:
    try:
        comp = value if isinstance(value, Composition) else Composition(value)
    except (ValueError, KeyError) as exc:
        raise InputError(f"cannot read composition {value!r}: {exc}") from exc
    if comp.num_atoms <= 0:
        raise InputError(f"empty composition {value!r}")
    return comp
