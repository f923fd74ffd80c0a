"""Generated candidates, their validity check (minimum distance) and a rejection summary."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pymatgen.core import Structure
from vesin import NeighborList

from chggen_flows.errors import InputError


@dataclass
class GeneratedCandidate:
    """One sampled structure.

    Attributes
    ----------
    structure
        The generated structure (for inpainting: the host's sites, unchanged, then the
        guests).
    valid
        False for degenerate outputs (atoms closer than the minimum distance or
        non-finite coordinates); such candidates are kept and counted, not dropped.
    reason
        Why the candidate is invalid, else None.
    metadata
        JSON-ready provenance: ``seed``, ``mode``, ``lattice_type``, ``v0_source``,
        ``volume``, ``min_distance``, ``final_score_norm``, ``sampler`` settings, ...
    """

    structure: Structure
    valid: bool
    reason: str | None
    metadata: dict[str, Any] = field(default_factory=dict)


def min_interatomic_distance(structure: Structure) -> float:
    """Shortest distance (Å) between two atoms, periodic images (and self-images) included."""
    matrix = structure.lattice.matrix
    # every atom has a periodic self-image within the longest lattice vector, so this
    # cutoff always finds at least one pair
    cutoff = float(np.linalg.norm(matrix, axis=1).max()) + 1e-6
    points = structure.cart_coords
    (distances,) = NeighborList(cutoff=cutoff, full_list=False).compute(
        points, matrix, periodic=True, quantities="d"
    )
    return float(distances.min())


def check_candidate(structure: Structure, min_distance: float) -> tuple[bool, str | None, float]:
    """Validity of a structure: finite coordinates and no pair closer than ``min_distance``.

    Returns
    -------
    tuple
        ``(valid, reason, shortest distance in Å)``.
    """
    if not np.isfinite(structure.cart_coords).all():
        return False, "non-finite coordinates", float("nan")
    shortest = min_interatomic_distance(structure)
    if shortest < min_distance:
        return False, f"too close: atoms {shortest:.3f} Å apart (< {min_distance} Å)", shortest
    return True, None, shortest


def rejection_summary(candidates: Sequence[GeneratedCandidate]) -> dict[str, Any]:
    """Counts of valid and rejected candidates, with the rejection reasons by kind."""
    rejected = [c for c in candidates if not c.valid]
    kinds = Counter((c.reason or "").split(":")[0] for c in rejected)
    return {
        "n_total": len(candidates),
        "n_valid": len(candidates) - len(rejected),
        "n_rejected": len(rejected),
        "reasons": dict(kinds),
    }


def finalize_candidate(
    structure: Structure, min_distance: float, metadata: dict[str, Any]
) -> GeneratedCandidate:
    """Check a sampled structure and wrap it with its metadata (adds ``min_distance``)."""
    valid, reason, shortest = check_candidate(structure, min_distance)
    metadata = {**metadata, "min_distance": round(shortest, 6) if np.isfinite(shortest) else None}
    return GeneratedCandidate(structure=structure, valid=valid, reason=reason, metadata=metadata)


def check_elements(score_fn: object, symbols: Sequence[str]) -> None:
    """Raise InputError early when the score model does not know an element.

    Score functions without an ``elements`` attribute (analytic test scores) accept any.
    """
    known = getattr(score_fn, "elements", None)
    if known is None:
        return
    missing = sorted(set(symbols) - set(known))
    if missing:
        raise InputError(
            f"the score model does not support element(s) {', '.join(missing)}",
            hint=f"supported: {' '.join(known)}; use a checkpoint trained on these elements",
        )
