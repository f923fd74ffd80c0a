"""Score functions known in closed form, for testing the sampler against exact targets.

Both work in orthorhombic cells, where a Gaussian wrapped on the cell factorises over
the Cartesian axes: along each axis of length L a wrapped normal is the image sum
sum_n N(x + nL; mu, s^2). Perturbing with VE noise sigma only widens it:
s^2 -> s^2 + sigma^2, so the score of every noise level is exact.
"""

from __future__ import annotations

import math

import torch

MIN_CELL_LENGTH = 5.0  # Å; the tests' cells are longer


def _images(sigma_max: float) -> torch.Tensor:
    """Image offsets n covering +-5 standard deviations in cells of at least 5 Å.

    The count depends on sigma only, never on the other cells of the batch, so a
    structure's score is bit-identical whichever batch it is in.
    """
    reach = math.ceil(5.0 * sigma_max / MIN_CELL_LENGTH) + 1
    return torch.arange(-reach, reach + 1, dtype=torch.float64)


class PeriodicMixtureScore:
    """Independent atoms, each distributed as a periodic mixture of isotropic Gaussians.

    Parameters
    ----------
    centres
        Fractional centres of the mixture components, shape [K, 3].
    weights
        Component weights, shape [K] (normalised here).
    width
        Standard deviation of every component in Å.
    """

    def __init__(self, centres: list[list[float]], weights: list[float], width: float) -> None:
        self.centres = torch.tensor(centres, dtype=torch.float64)
        self.log_weights = torch.log(torch.tensor(weights, dtype=torch.float64) / sum(weights))
        self.width = width

    def __call__(self, species, pos, lattice, batch, sigma):
        lengths = torch.diagonal(lattice, dim1=1, dim2=2).to(torch.float64)[batch]  # [N, 3]
        s2 = (self.width**2 + sigma.to(torch.float64) ** 2)[batch][:, None, None, None]
        n = _images(float(sigma.max()) + self.width)
        mu = self.centres[None] * lengths[:, None, :]  # [N, K, 3]
        delta = (
            pos.to(torch.float64)[:, None, :, None] - mu[..., None] + n * lengths[:, None, :, None]
        )
        log_terms = -(delta**2) / (2 * s2)  # [N, K, 3, I]
        log_axis = torch.logsumexp(log_terms, dim=-1)  # [N, K, 3]
        axis_score = (torch.softmax(log_terms, dim=-1) * (-delta / s2)).sum(-1)  # [N, K, 3]
        log_comp = self.log_weights + log_axis.sum(-1) - 1.5 * torch.log(s2[:, :, 0, 0])
        resp = torch.softmax(log_comp, dim=-1)  # [N, K]
        return (resp[..., None] * axis_score).sum(1).to(pos.dtype)


class HostGuestGaussianScore:
    """Structures of k hosts followed by k guests; pair i = (host i, guest i) is Gaussian.

    Along each axis a host is h ~ N(mu, a) and its guest g = h + offset + e with
    e ~ N(0, b), wrapped on the cell; pairs are independent. Given the host at h0 the
    guest's exact conditional is N(h0 + offset, b) (wrapped), whereas its marginal is
    N(mu + offset, a + b).
    """

    def __init__(self, mu_frac: list[float], offset: list[float], a: float, b: float) -> None:
        self.mu_frac = torch.tensor(mu_frac, dtype=torch.float64)
        self.offset = torch.tensor(offset, dtype=torch.float64)
        self.a, self.b = a, b

    def __call__(self, species, pos, lattice, batch, sigma):
        n_structures = len(sigma)
        lengths = torch.diagonal(lattice, dim1=1, dim2=2).to(torch.float64)  # [B, 3]
        x = pos.to(torch.float64).reshape(n_structures, 2, -1, 3)  # [B, (h, g), k, 3]
        host_mean = (self.mu_frac * lengths)[:, None, None, :]
        mean = torch.cat([host_mean, host_mean + self.offset], dim=1)  # [B, 2, 1, 3]
        s2 = sigma.to(torch.float64) ** 2
        cov = torch.zeros(n_structures, 2, 2, dtype=torch.float64)
        cov[:, 0, 0] = self.a + s2
        cov[:, 0, 1] = cov[:, 1, 0] = self.a
        cov[:, 1, 1] = self.a + self.b + s2
        precision = torch.linalg.inv(cov)  # [B, 2, 2]
        n = _images(float(sigma.max()) + math.sqrt(self.a + self.b))
        grid = torch.stack(torch.meshgrid(n, n, indexing="ij"), dim=-1).reshape(-1, 2)  # [I, 2]
        # d[b, pair, axis, image, (h, g)] = x - mean + n L
        d = (x - mean).permute(0, 2, 3, 1)[:, :, :, None, :]
        d = d + grid * lengths[:, None, :, None, None]
        pd = torch.einsum("bij,bpkmj->bpkmi", precision, d)
        weights = torch.softmax(-0.5 * (d * pd).sum(-1), dim=-1)  # [B, k, 3, I]
        score = -(weights[..., None] * pd).sum(3)  # [B, k, 3, 2]
        return score.permute(0, 3, 1, 2).reshape(-1, 3).to(pos.dtype)
