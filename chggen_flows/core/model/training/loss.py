"""Denoising score-matching loss (paper eq. 6, Song & Ermon 2019).

For each structure draw sigma log-uniformly in [sigma_min, sigma_max], perturb the
Cartesian positions x~ = x + sigma z, wrap them into the cell, and regress the model's
score onto -(x~ - x)_mic / sigma^2, where _mic is the minimum-image displacement; the
squared error is weighted by sigma^2 and averaged over atoms.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from chggen_flows.core.model.data import Batch

ScoreFn = Callable[..., torch.Tensor]


def minimum_image(
    displacement: torch.Tensor, lattice: torch.Tensor, reach: int | None = None
) -> torch.Tensor:
    """Shortest periodic image of each displacement.

    Parameters
    ----------
    displacement
        FloatTensor[N, 3], Cartesian displacements.
    lattice
        FloatTensor[N, 3, 3], the lattice of each displacement's structure (rows).
    reach
        Cell offsets to search, -reach..reach along each axis: an upper bound known on
        the host, such as :func:`image_reach`. None: the bound is computed from the
        displacements on their device (one host sync).

    Notes
    -----
    Rounding fractional coordinates alone is wrong in skewed cells. After rounding,
    every image within the rounded image's length is searched: a point at distance R
    has |frac_i| <= R * |column i of lattice^-1|, which bounds the cell offsets needed,
    so the result is exact for any cell. A larger ``reach`` searches a superset of
    the images and gives the same result.
    """
    inverse = torch.linalg.inv_ex(lattice).inverse  # inv without its error-check sync
    frac = torch.einsum("ni,nij->nj", displacement, inverse)
    frac = frac - torch.round(frac)
    if reach is None:
        reach = max(1, math.ceil(float(_image_bound(frac, lattice, inverse).max())))
    grid = torch.arange(-reach, reach + 1, dtype=displacement.dtype, device=displacement.device)
    offsets = torch.cartesian_prod(grid, grid, grid)
    images = torch.einsum("nki,nij->nkj", frac.unsqueeze(1) + offsets, lattice)
    best = images.norm(dim=-1).argmin(dim=1)
    return images[torch.arange(len(images), device=images.device), best]


def _image_bound(frac: torch.Tensor, lattice: torch.Tensor, inverse: torch.Tensor) -> torch.Tensor:
    """Per displacement and axis, the cell offsets within which every image shorter
    than the rounded one lies (``frac`` rounded to the nearest image; see minimum_image)."""
    radius = torch.einsum("ni,nij->nj", frac, lattice).norm(dim=-1)
    return radius[:, None] * inverse.norm(dim=1) + 0.5


def image_reach(displacement: torch.Tensor, lattice: torch.Tensor, batch: torch.Tensor) -> int:
    """The search bound :func:`minimum_image` computes, from host data (no device read).

    Parameters
    ----------
    displacement
        Tensor[N, 3], the displacements (or any that differ from them by lattice
        vectors: sigma * noise for the DSM target), on the host.
    lattice
        Tensor[B, 3, 3], each structure's lattice (rows), on the host.
    batch
        LongTensor[N], structure index of each displacement.

    Notes
    -----
    Computed in float64 with a little slack, so that it is never below the bound the
    device finds in float32 (a larger bound searches more images, with the same
    result); in all but borderline cases it is the same number.
    """
    lattice = lattice.to(torch.float64)
    inverse = torch.linalg.inv(lattice)[batch]
    frac = torch.einsum("ni,nij->nj", displacement.to(torch.float64), inverse)
    bound = _image_bound(frac - torch.round(frac), lattice[batch], inverse)
    return max(1, math.ceil(float(bound.max()) * (1 + 1e-5) + 1e-5)) if len(bound) else 1


def wrap_positions(pos: torch.Tensor, lattice: torch.Tensor) -> torch.Tensor:
    """Cartesian positions wrapped into the cell (``lattice`` per atom, [N, 3, 3])."""
    frac = torch.linalg.solve_ex(lattice.transpose(1, 2), pos.unsqueeze(-1)).result.squeeze(-1)
    return torch.einsum("ni,nij->nj", frac - torch.floor(frac), lattice)


def dsm_loss(
    score_fn: ScoreFn,
    batch: Batch,
    sigma: torch.Tensor,
    noise: torch.Tensor,
    reach: int | None = None,
    atoms: int | None = None,
) -> torch.Tensor:
    """Denoising score-matching loss, mean over atoms of sigma^2 |s - target|^2.

    Parameters
    ----------
    score_fn
        ``score_fn(species, pos, lattice, batch, sigma) -> [N, 3]``: a ScoreModel, or
        one bound to the batch by :meth:`ScoreModel.prepare` (no host syncs).
    batch
        Clean structures.
    sigma
        FloatTensor[B], noise level of each structure.
    noise
        FloatTensor[N, 3], standard normal draws.
    reach
        Image search bound for the minimum image (see :func:`image_reach`); None
        computes it on the device (one host sync).
    atoms
        Divide the sum over atoms by this count instead of taking the mean: a rank's
        share of a global batch of ``atoms`` atoms, so that the shares add up to the
        global batch's loss.
    """
    atom_lattice = batch.lattice[batch.batch]
    atom_sigma = sigma[batch.batch].unsqueeze(-1)
    noisy = wrap_positions(batch.pos + atom_sigma * noise, atom_lattice)
    target = -minimum_image(noisy - batch.pos, atom_lattice, reach) / atom_sigma**2
    score = score_fn(batch.species, noisy, batch.lattice, batch.batch, sigma)
    per_atom = (atom_sigma**2 * (score - target) ** 2).sum(-1)
    return per_atom.mean() if atoms is None else per_atom.sum() / atoms


def sample_sigma(
    n: int, sigma_min: float, sigma_max: float, generator: torch.Generator
) -> torch.Tensor:
    """``n`` noise levels log-uniform in [sigma_min, sigma_max] (float64, CPU)."""
    u = torch.rand(n, generator=generator, dtype=torch.float64)
    return torch.exp(math.log(sigma_min) + u * (math.log(sigma_max) - math.log(sigma_min)))
