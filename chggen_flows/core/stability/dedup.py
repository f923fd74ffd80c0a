"""De-duplication of candidates across a campaign.

Two candidates are duplicates when they have the same reduced composition and space
group, energies within ``energy_tol`` (authors: 2 meV/atom) and pymatgen's
:class:`~pymatgen.analysis.structure_matcher.StructureMatcher` says the structures match.
Grouping by composition and space group first keeps the (slow) structure comparisons
to the few candidates that could match at all.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from pydantic import BaseModel, Field
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Structure

from chggen_flows.errors import InputError

ENERGY_TOL = 0.002  # eV/atom, the authors' criterion


class DedupResult(BaseModel):
    """Which candidates to keep and what the others duplicate.

    Attributes
    ----------
    representatives
        Ids of the unique candidates (lowest energy of each duplicate group), in input
        order.
    duplicate_of
        ``{duplicate id: representative id}`` for every dropped candidate.
    """

    representatives: list[str]
    duplicate_of: dict[str, str] = Field(default_factory=dict)


def deduplicate(
    items: Sequence[tuple[str, Structure, float, int]],
    energy_tol: float = ENERGY_TOL,
    matcher: StructureMatcher | None = None,
) -> DedupResult:
    """Keep the lowest-energy representative of each group of duplicate candidates.

    Parameters
    ----------
    items
        ``(id, structure, energy_per_atom, spacegroup_number)`` per candidate.
    energy_tol
        Largest energy difference (eV/atom) between duplicates.
    matcher
        Structure comparison; pymatgen's defaults when None.

    Returns
    -------
    DedupResult

    Raises
    ------
    InputError
        Repeated ids.
    """
    ids = [item[0] for item in items]
    if len(set(ids)) != len(ids):
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        raise InputError(f"candidate ids must be unique; repeated: {repeated[:5]}")
    matcher = matcher or StructureMatcher()

    groups: dict[tuple[str, int], list[tuple[str, Structure, float, int]]] = defaultdict(list)
    for item in items:
        groups[(item[1].composition.reduced_formula, int(item[3]))].append(item)

    duplicate_of: dict[str, str] = {}
    for members in groups.values():
        kept: list[tuple[str, Structure, float]] = []
        for cid, structure, energy, _ in sorted(members, key=lambda m: m[2]):
            match = next(
                (
                    rep_id
                    for rep_id, rep_structure, rep_energy in kept
                    if energy - rep_energy <= energy_tol and matcher.fit(rep_structure, structure)
                ),
                None,
            )
            if match is None:
                kept.append((cid, structure, energy))
            else:
                duplicate_of[cid] = match
    return DedupResult(
        representatives=[i for i in ids if i not in duplicate_of], duplicate_of=duplicate_of
    )
