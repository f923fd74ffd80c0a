"""Stability of candidates: reference phase diagrams, E_d and de-duplication.

See docs/stability.md. Typical use::

    from chggen_flows.core.stability import get_reference, compute_e_d

    provider = get_reference("offline")
    records = compute_e_d([("Li5Si2", -2.95)], provider)
"""

from __future__ import annotations

from chggen_flows.core.stability.dedup import DedupResult, deduplicate
from chggen_flows.core.stability.ehull import (
    EdRecord,
    HullPhase,
    HullSummary,
    compute_e_d,
    describe_hull,
    hull_warning,
    largest_systems,
)
from chggen_flows.core.stability.references import (
    GGA,
    R2SCAN,
    EntriesFileReference,
    EntriesReference,
    MPReference,
    OfflineCHGNetReference,
    OfflineReference,
    ReferenceProvider,
    check_reference_potential,
    chgnet_entries,
    get_reference,
    potential_reference_files,
    relaxed_entries,
)

__all__ = [
    "GGA",
    "R2SCAN",
    "DedupResult",
    "EdRecord",
    "EntriesFileReference",
    "EntriesReference",
    "HullPhase",
    "HullSummary",
    "MPReference",
    "OfflineCHGNetReference",
    "OfflineReference",
    "ReferenceProvider",
    "check_reference_potential",
    "chgnet_entries",
    "compute_e_d",
    "deduplicate",
    "describe_hull",
    "get_reference",
    "hull_warning",
    "largest_systems",
    "potential_reference_files",
    "relaxed_entries",
]
