"""Validation loss of a score model: the DSM loss per sigma decade with fixed noise."""

from __future__ import annotations

import math

import torch

from chggen_flows.core.model.data import CrystalDataset
from chggen_flows.core.model.distributed import Ranks, sum_over_ranks
from chggen_flows.core.model.network import ScoreModel
from chggen_flows.core.model.training import transfer
from chggen_flows.core.model.training.loss import dsm_loss


def decades(sigma_min: float, sigma_max: float) -> list[tuple[float, float]]:
    """The powers-of-ten intervals that cover [sigma_min, sigma_max]."""
    lo, hi = math.floor(math.log10(sigma_min) + 1e-9), math.ceil(math.log10(sigma_max) - 1e-9)
    return [(10.0**d, 10.0 ** (d + 1)) for d in range(lo, hi)]


def validation_loss(
    model: ScoreModel,
    dataset: CrystalDataset,
    sigma_min: float,
    sigma_max: float,
    batch_size: int,
    device: torch.device,
    seed: int = 12345,
    ranks: Ranks | None = None,
) -> dict[str, float]:
    """DSM loss per sigma decade at its geometric midpoint, with fixed noise.

    The noise is drawn from ``seed`` so numbers are comparable across epochs and runs.
    Under torchrun (``ranks``) every rank evaluates every ``world_size``-th batch, all
    draw the same noise, and the sums are added over ranks: the figures are those of
    one process. The losses stay on the device until the end (one host read).
    """
    ranks = ranks or Ranks()
    transfer.check_elements(model, dataset)
    generator = torch.Generator().manual_seed(seed)
    dtype = next(model.parameters()).dtype
    counts = dataset.counts.tolist()
    names, totals, atoms = [], [], 0
    for lo, hi in decades(sigma_min, sigma_max):
        mid = math.sqrt(lo * hi)
        total = torch.zeros((), dtype=torch.float64, device=device)
        atoms = 0
        for k, start in enumerate(range(0, len(dataset), batch_size)):
            stop = min(start + batch_size, len(dataset))
            num_atoms = sum(counts[start:stop])
            noise = torch.randn(num_atoms, 3, generator=generator, dtype=torch.float64)
            atoms += num_atoms
            if k % ranks.world_size != ranks.rank:
                continue  # another rank's batch; its noise is drawn all the same
            indices = torch.arange(start, stop)
            host = dataset.batch(indices, dtype, "cpu")
            sigma = torch.full((host.num_structures,), mid, dtype=dtype)
            loss = dsm_loss(
                transfer.bound_score_fn(model, host, device),
                transfer.batch_on(host, device),
                transfer.to_device(sigma, device),
                transfer.to_device(noise, device).to(dtype),
                reach=transfer.host_reach(host, dataset.lattice[indices], sigma, noise, device),
            )
            total += loss.double() * num_atoms
        names.append(f"{lo:.0e}-{hi:.0e}")
        totals.append(total)
    if not totals:
        return {}
    summed = torch.stack(totals)
    if ranks.enabled:
        summed = sum_over_ranks(summed)
    return {name: value / atoms for name, value in zip(names, summed.tolist(), strict=True)}
