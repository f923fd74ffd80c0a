"""Structure generation: Bravais lattices, V0, batched predictor-corrector sampling, RePaint.

Public entry points: :func:`generate` (unconditional) and :func:`inpaint` (guests in a
fixed host), both batched over many candidates and seeded per candidate, plus
:func:`sample_lattice` and :func:`estimate_v0`. See ``docs/generation.md``.
"""

from __future__ import annotations

from chggen_flows.core.generation.candidate import GeneratedCandidate, rejection_summary
from chggen_flows.core.generation.generate import GenerationRequest, candidate_seed, generate
from chggen_flows.core.generation.inpaint import InpaintSettings, inpaint, parse_guests
from chggen_flows.core.generation.lattice import BRAVAIS_TYPES, LatticeSettings, sample_lattice
from chggen_flows.core.generation.sampler import SamplerSettings, ScoreFn
from chggen_flows.core.generation.volume import V0Estimate, estimate_v0

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
