"""Decomposition energy E_d of candidates against a reference phase diagram."""

from __future__ import annotations

import math
from collections.abc import Sequence

from pydantic import BaseModel, Field
from pymatgen.core import Composition

from chggen_flows.core.stability.references import ReferenceProvider
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
    """

    formula: str
    energy_per_atom: float
    e_d: float
    e_hull_per_atom: float
    decomposition: dict[str, float] = Field(default_factory=dict)
    reference: str
    functional: str


def compute_e_d(
    items: Sequence[tuple[Composition | str, float]], provider: ReferenceProvider
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
    """
    records = []
    for composition, energy in items:
        comp = _composition(composition)
        energy = float(energy)
        if not math.isfinite(energy):
            raise InputError(f"energy of {comp.reduced_formula} is not finite: {energy}")
        diagram = provider.phase_diagram([el.symbol for el in comp.elements])
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
