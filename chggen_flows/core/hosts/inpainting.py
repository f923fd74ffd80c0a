"""Candidates from host seeds: the guests of every :class:`HostSeed` inpainted."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from chggen_flows.core.generation.candidate import GeneratedCandidate
from chggen_flows.core.generation.inpaint import InpaintSettings, inpaint
from chggen_flows.core.generation.sampler import SamplerSettings, ScoreFn
from chggen_flows.core.hosts.seed import HostSeed


def inpaint_hosts(
    seeds: Sequence[HostSeed],
    score_fn: ScoreFn,
    settings: SamplerSettings | None = None,
    inpaint_settings: InpaintSettings | None = None,
    seed: int = 0,
    device: str | torch.device = "auto",
    progress: bool | None = None,
) -> list[GeneratedCandidate]:
    """Inpaint the guests of each host seed (repeat a seed for several candidates).

    Returns
    -------
    list[GeneratedCandidate]
        One per seed, in order, as :func:`~chggen_flows.core.generation.inpaint.inpaint`
        makes them, with ``metadata["host_source"]`` = :meth:`HostSeed.metadata`
        (template, supercell, rounding...) and ``metadata["arm"]`` = the seed's kind.
    """
    candidates = inpaint(
        [s.host for s in seeds],
        [s.guests for s in seeds],
        score_fn,
        settings,
        inpaint_settings,
        seed=seed,
        device=device,
        progress=progress,
    )
    for host_seed, candidate in zip(seeds, candidates, strict=True):
        candidate.metadata["host_source"] = host_seed.metadata()
        candidate.metadata["arm"] = host_seed.kind
    return candidates
