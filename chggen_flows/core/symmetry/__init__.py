"""The symmetry stage: host frameworks, the tolerance ladder, final classification and
symmetric guests.

- :mod:`~chggen_flows.core.symmetry.framework`: remove the guests, symmetrise the host
  along the tolerance ladder (:class:`FrameworkSettings`), classify a relaxed structure
  at the paper's tolerance (:data:`PAPER_SYMPREC`, :data:`PAPER_ANGLE_TOLERANCE`).
- :mod:`~chggen_flows.core.symmetry.host_search`: geometry of the host search
  (displacements, point-group order, supercells for dilute guests).
- :mod:`~chggen_flows.core.symmetry.guests`: snap inpainted guests onto a subgroup of
  the host's symmetry and keep it through the relaxation.
"""

from __future__ import annotations

from chggen_flows.core.symmetry.framework import (
    AUTHORS_LADDER,
    MODES,
    NOT_SYMMETRIC,
    PAPER_ANGLE_TOLERANCE,
    PAPER_SYMPREC,
    FrameworkResult,
    FrameworkSettings,
    SymmetryInfo,
    classify_symmetry,
    extract_framework,
    host_candidates,
    scaled_guest_counts,
)
from chggen_flows.core.symmetry.guests import (
    EXACT_SYMPREC,
    GUEST_SYMMETRY_MODES,
    GuestSymmetry,
    symmetrize_guests,
)

__all__ = [
    "AUTHORS_LADDER",
    "EXACT_SYMPREC",
    "GUEST_SYMMETRY_MODES",
    "MODES",
    "NOT_SYMMETRIC",
    "PAPER_ANGLE_TOLERANCE",
    "PAPER_SYMPREC",
    "FrameworkResult",
    "FrameworkSettings",
    "GuestSymmetry",
    "SymmetryInfo",
    "classify_symmetry",
    "extract_framework",
    "host_candidates",
    "scaled_guest_counts",
    "symmetrize_guests",
]
