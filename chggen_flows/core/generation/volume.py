"""The volume per atom V0 of a composition: user value, known phases or regression.

Order of preference (the source is recorded with every estimate):

1. ``override``: the user's value.
2. ``known:same_composition``: mean volume per atom of known structures with the
   same reduced formula.
3. ``known:chemsys``: known structures of the chemical system (element sets within the
   target's) correct the regression: V0 = regression(target) x median over those
   structures of (actual / regression). Where the regression lacks an element, the mean
   volume per atom of those phases is used (the authors' practice,
   ``known:chemsys_mean``).
4. ``regression``: the additive per-element fit shipped in
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
        ``override``, ``known:same_composition``, ``known:chemsys``,
        ``known:chemsys_mean`` or ``regression``.
    detail
        Human-readable account (which structures, which fit).
    """

    volume_per_atom: float
    source: str
    detail: str


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


def estimate_v0(
    composition: Composition,
    known_structures: list[Structure] | None = None,
    override: float | None = None,
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
