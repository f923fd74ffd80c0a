"""Structure generation: Bravais lattices, V0, batched predictor-corrector sampling, RePaint.

Public entry points: :func:`generate` (unconditional) and :func:`inpaint` (guests in a
fixed host), both batched over many candidates and seeded per candidate, plus
:func:`sample_lattice` and :func:`estimate_v0`. See ``docs/generation.md``.

The names below load on first use (PEP 562), so that the settings classes (a spec's
``sampler`` and ``inpaint`` sections, the CLI's defaults) come without torch.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chggen_flows.core.generation.candidate import GeneratedCandidate, rejection_summary
    from chggen_flows.core.generation.generate import (
        GenerationRequest,
        candidate_seed,
        generate,
    )
    from chggen_flows.core.generation.inpaint import inpaint, parse_guests
    from chggen_flows.core.generation.lattice import (
        BRAVAIS_TYPES,
        LatticeSettings,
        sample_lattice,
    )
    from chggen_flows.core.generation.sampler import ScoreFn
    from chggen_flows.core.generation.settings import InpaintSettings, SamplerSettings
    from chggen_flows.core.generation.volume import V0Estimate, estimate_v0

#: Public name -> module of this package that defines it.
_EXPORTS = {
    "GeneratedCandidate": "candidate",
    "rejection_summary": "candidate",
    "GenerationRequest": "generate",
    "candidate_seed": "generate",
    "generate": "generate",
    "inpaint": "inpaint",
    "parse_guests": "inpaint",
    "BRAVAIS_TYPES": "lattice",
    "LatticeSettings": "lattice",
    "sample_lattice": "lattice",
    "ScoreFn": "sampler",
    "InpaintSettings": "settings",
    "SamplerSettings": "settings",
    "V0Estimate": "volume",
    "estimate_v0": "volume",
}

__all__ = [
    "BRAVAIS_TYPES",
    "GeneratedCandidate",
    "GenerationRequest",
    "InpaintSettings",
    "LatticeSettings",
    "SamplerSettings",
    "ScoreFn",
    "V0Estimate",
    "candidate_seed",
    "estimate_v0",
    "generate",
    "inpaint",
    "parse_guests",
    "rejection_summary",
    "sample_lattice",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)


class _Package(types.ModuleType):
    """``generate`` and ``inpaint`` name both a function and the submodule that defines
    it; importing the submodule must not replace the function (as the eager imports
    this package had did not)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if _EXPORTS.get(name) == name and isinstance(value, types.ModuleType):
            return  # the function stays what the package's name means (see __getattr__)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
