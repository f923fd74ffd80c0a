"""Random-search baselines: the structures a campaign would find without the model.

Public entry points: :func:`random_search` (candidates shaped like the generative arm's
:class:`~chggen_flows.core.generation.GeneratedCandidate`) and :class:`BaselineSettings`.
See ``docs/baseline.md``.
"""

from __future__ import annotations

from chggen_flows.core.baseline.random_search import (
    BASELINE_KINDS,
    BaselineSettings,
    allowed_spacegroups,
    pyxtal_structure,
    random_positions_structure,
    random_search,
)
from chggen_flows.core.baseline.spacegroups import (
    compatible_spacegroups,
    conventional_to_primitive,
)

__all__ = [
    "BASELINE_KINDS",
    "BaselineSettings",
    "allowed_spacegroups",
    "compatible_spacegroups",
    "conventional_to_primitive",
    "pyxtal_structure",
    "random_positions_structure",
    "random_search",
]
