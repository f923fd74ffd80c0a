"""Structure analysis: partial RDFs, coordination numbers and the locality-bias comparison."""

from __future__ import annotations

from chggen_flows.core.analysis.coordination import (
    METHODS,
    CoordinationStats,
    coordination_numbers,
    coordination_stats,
)
from chggen_flows.core.analysis.locality import LocalityComparison, compare_locality
from chggen_flows.core.analysis.rdf import PartialRDF, partial_rdfs, rdf_distance

__all__ = [
    "METHODS",
    "CoordinationStats",
    "LocalityComparison",
    "PartialRDF",
    "compare_locality",
    "coordination_numbers",
    "coordination_stats",
    "partial_rdfs",
    "rdf_distance",
]
