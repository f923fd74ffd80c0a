"""Structure sources: known crystals from files, folders or the Materials Project.

One concept, one implementation (see :mod:`chggen_flows.core.sources.base`)::

    from chggen_flows.core.sources import SourceFilter, load_structures

    entries = load_structures(
        "data/structures/mpts_52/val.csv.gz",
        SourceFilter.build(related_to="Zn-P-S", exclude_elements=["Zn"]),
    )

Analogue hosts (:mod:`chggen_flows.core.hosts`) and model adaptation read sources.
"""

from __future__ import annotations

from chggen_flows.core.sources.base import (
    SOURCES,
    SourceFilter,
    SourceRow,
    StructureSource,
    load_structures,
    open_source,
    register_source,
)
from chggen_flows.core.sources.chemsys import is_related, parse_chemical_systems
from chggen_flows.core.sources.entry import StructureEntry

__all__ = [
    "SOURCES",
    "SourceFilter",
    "SourceRow",
    "StructureEntry",
    "StructureSource",
    "is_related",
    "load_structures",
    "open_source",
    "parse_chemical_systems",
    "register_source",
]
