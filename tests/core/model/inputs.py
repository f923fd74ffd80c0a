"""Turn pymatgen structures into the score model's tensor inputs."""

from __future__ import annotations

import numpy as np
import torch
from pymatgen.core import Structure


def as_inputs(structures: list[Structure], sigmas: list[float]) -> tuple[torch.Tensor, ...]:
    """(species, pos, lattice, batch, sigma) in float64 for the model's forward."""
    species = torch.tensor([site.specie.Z for s in structures for site in s])
    pos = torch.tensor(np.concatenate([s.cart_coords for s in structures]))
    lattice = torch.tensor(np.stack([s.lattice.matrix for s in structures]))
    counts = torch.tensor([len(s) for s in structures])
    batch = torch.repeat_interleave(torch.arange(len(structures)), counts)
    return species, pos, lattice, batch, torch.tensor(sigmas, dtype=torch.float64)
