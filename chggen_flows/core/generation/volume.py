"""The volume per atom V0 of a composition: user value, known phases or regression.

Order of preference (the source is recorded with every estimate):

1. ``override``: the user's value.
2. ``known_phases``: the reference hull's known phases of the same chemical system
   (relaxed with the same potential as the candidates) nearest in composition (see
   :func:`v0_from_hull`). Recorded as ``known phases: Li7Si3, Li13Si4``.
3. ``known:same_composition``: mean volume per atom of known structures with the
   same reduced formula.
4. ``known:chemsys``: known structures of the chemical system (element sets within the
   target's) correct the regression: V0 = regression(target) x median over those
   structures of (actual / regression). Where the regression lacks an element, the mean
   volume per atom of those phases is used (the authors' practice,
   ``known:chemsys_mean``).
5. ``regression``: the additive per-element fit shipped in
   ``chggen_flows/data/volumes/element_volumes.json`` (see
   :mod:`chggen_flows.core.generation.volume_fit`).
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
from pymatgen.analysis.phase_diagram import PhaseDiagram
from pymatgen.core import Composition, Structure

from chggen_flows.errors import InputError, ReferenceDataError


@dataclass(frozen=True)
class V0Estimate:
    """An estimated volume per atom and where it came from.

    Attributes
    ----------
    volume_per_atom
        V0 in Å^3/atom.
    source
        ``override``, ``known_phases``, ``known:same_composition``, ``known:chemsys``,
        ``known:chemsys_mean`` or ``regression``.
    detail
        Human-readable account (which structures, which fit).
    phases
        For ``known_phases``: the formulas of the phases used.
    """

    volume_per_atom: float
    source: str
    detail: str
    phases: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """What a record shows: ``known phases: Li13Si4, Li15Si4`` or the source."""
        if self.source == "known_phases":
            return f"known phases: {', '.join(self.phases)}"
        return self.source


@cache
def element_volume_table() -> dict[str, Any]:
    """The shipped per-element volume fit (JSON document with provenance)."""
    path = resources.files("chggen_flows") / "data" / "volumes" / "element_volumes.json"
    return json.loads(path.read_text(encoding="utf-8"))


def regression_volume(composition: Composition) -> float:
    """V0 (Å^3/atom) from the additive per-element fit.

    Raises
    ------
    ReferenceDataError
        An element of the composition is not in the fitted table.
    """
    table = element_volume_table()["elements"]
    missing = [e.symbol for e in composition.elements if e.symbol not in table]
    if missing:
        raise ReferenceDataError(
            f"no fitted atomic volume for {', '.join(missing)}",
            hint="give V0 explicitly (--v0) or known structures of the chemical system",
        )
    return sum(table[e.symbol]["volume"] * x for e, x in composition.fractional_composition.items())


#: Known phases further above the hull than this (eV/atom) are not used for V0.
KNOWN_PHASE_MAX_E_ABOVE_HULL = 0.1
#: How many nearest known phases V0 is interpolated between.
KNOWN_PHASE_NEIGHBOURS = 2


def v0_from_hull(composition: Composition, diagram: PhaseDiagram) -> V0Estimate | None:
    """V0 from the known phases of the reference nearest in composition, or None.

    Only phases with every element of ``composition`` count (a Li-Si compound for a
    Li-Si target, a Zn-P-S one for a Zn-P-S target): elements and subsystem compounds
    are poor guides, because atoms contract on alloying and because molecular or
    low-density entries (e.g. the P2S3 entry mp-1147708 at 129 Å^3/atom) would dominate
    a hull decomposition of a sulphide. Per formula the lowest-energy entry is used, and
    none more than :data:`KNOWN_PHASE_MAX_E_ABOVE_HULL` above the hull. V0 is the volume
    per atom of the phase with the same composition if there is one, else the
    inverse-distance-weighted mean over the :data:`KNOWN_PHASE_NEIGHBOURS` nearest phases
    (distance between atom-fraction vectors). None when the reference holds no such
    phase or its entries have no structures.
    """
    target = {el.symbol for el in composition.elements}
    if not target <= {el.symbol for el in diagram.elements}:
        return None
    order = sorted(target)
    best: dict[str, tuple[float, float, np.ndarray]] = {}
    for entry in diagram.all_entries:
        structure = getattr(entry, "structure", None)
        if structure is None or {el.symbol for el in entry.composition.elements} != target:
            continue
        above = diagram.get_e_above_hull(entry, allow_negative=True) or 0.0
        formula = entry.composition.reduced_formula
        if above > KNOWN_PHASE_MAX_E_ABOVE_HULL or (formula in best and best[formula][0] <= above):
            continue
        fractions = np.array([entry.composition.get_atomic_fraction(el) for el in order])
        best[formula] = (above, structure.volume / len(structure), fractions)
    if not best:
        return None
    want = np.array([composition.get_atomic_fraction(el) for el in order])
    ranked = sorted(
        (float(np.linalg.norm(fr - want)), formula, volume)
        for formula, (_, volume, fr) in best.items()
    )[:KNOWN_PHASE_NEIGHBOURS]
    if ranked[0][0] < 1e-9:
        _, formula, volume = ranked[0]
        detail = f"volume per atom of the known {formula} phase ({volume:.2f})"
        return V0Estimate(float(volume), "known_phases", detail, (formula,))
    weights = np.array([1.0 / d for d, _, _ in ranked])
    value = float(np.dot(weights, [v for _, _, v in ranked]) / weights.sum())
    detail = "inverse-distance-weighted volumes per atom of the nearest known phases " + ", ".join(
        f"{formula} ({volume:.2f}, distance {d:.3f})" for d, formula, volume in ranked
    )
    return V0Estimate(value, "known_phases", detail, tuple(f for _, f, _ in ranked))


def estimate_v0(
    composition: Composition,
    known_structures: list[Structure] | None = None,
    override: float | None = None,
    phase_diagram: PhaseDiagram | None = None,
) -> V0Estimate:
    """Estimate the volume per atom of ``composition``.

    Parameters
    ----------
    composition
        Target composition (any number of formula units).
    known_structures
        Known phases (e.g. the chemical system's entries in a database, or the user's).
        Structures with elements outside the composition's chemical system are ignored.
    override
        A user value in Å^3/atom; wins over everything else.
    phase_diagram
        The reference hull of the system, with structures (e.g. the offline CHGNet
        reference): see :func:`v0_from_hull`.

    Returns
    -------
    V0Estimate
        Value, source and detail.

    Examples
    --------
    >>> estimate_v0(Composition("ZnPS3"), override=24.0).source
    'override'
    """
    if override is not None:
        if not override > 0:
            raise InputError(f"V0 must be positive, got {override}")
        return V0Estimate(float(override), "override", "given by the user")
    if phase_diagram is not None and (hull := v0_from_hull(composition, phase_diagram)):
        return hull
    elements = set(composition.elements)
    related = [s for s in known_structures or [] if set(s.composition.elements) <= elements]
    formula = composition.reduced_formula
    same = [s for s in related if s.composition.reduced_formula == formula]
    if same:
        value = statistics.fmean(s.volume / len(s) for s in same)
        return V0Estimate(
            value, "known:same_composition", f"mean of {len(same)} known {formula} structure(s)"
        )
    if related:
        names = sorted({s.composition.reduced_formula for s in related})
        try:
            ratio = statistics.median(
                s.volume / len(s) / regression_volume(s.composition) for s in related
            )
            value = ratio * regression_volume(composition)
            detail = f"element fit x {ratio:.3f} (median actual/fit over {len(related)} phases: {', '.join(names)})"
            return V0Estimate(value, "known:chemsys", detail)
        except ReferenceDataError:
            value = statistics.fmean(s.volume / len(s) for s in related)
            detail = f"mean of {len(related)} phases: {', '.join(names)}"
            return V0Estimate(value, "known:chemsys_mean", detail)
    table = element_volume_table()
    detail = (
        f"additive element-volume fit over {table['n_structures']} MP structures "
        f"(median relative error {table['median_relative_error']:.1%})"
    )
    return V0Estimate(regression_volume(composition), "regression", detail)
