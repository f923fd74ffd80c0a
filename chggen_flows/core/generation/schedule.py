"""Noise levels of the VE-SDE and the RePaint resampling schedule."""

from __future__ import annotations

import numpy as np

from chggen_flows.errors import InputError


def sigma_levels(n_levels: int, sigma_max: float, sigma_min: float) -> np.ndarray:
    """Geometric noise levels in the paper's indexing, with ``sigma_0 = 0`` prepended.

    Parameters
    ----------
    n_levels
        Number of noise levels T (the authors used 200).
    sigma_max, sigma_min
        Largest and smallest standard deviation in Å (authors: 10 and 0.001).

    Returns
    -------
    numpy.ndarray
        ``sigmas[t]`` for ``t = 0..T``: ``sigmas[0] = 0``, ``sigmas[1] = sigma_min``,
        ``sigmas[T] = sigma_max``, geometric in between. The final predictor step goes
        from ``sigma_1`` to ``sigma_0 = 0`` (Song et al.'s convention), which makes the
        last step the noise-free denoiser ``x + sigma_min^2 s(x, sigma_min)``.
    """
    if n_levels < 1:
        raise InputError("n_levels must be >= 1")
    if not 0 < sigma_min <= sigma_max:
        raise InputError("need 0 < sigma_min <= sigma_max")
    geometric = np.geomspace(sigma_min, sigma_max, n_levels) if n_levels > 1 else [sigma_max]
    return np.concatenate([[0.0], geometric])


def repaint_schedule(n_levels: int, jump_length: int, n_resample: int) -> list[int]:
    """Sequence of level indices visited by RePaint (Lugmayr et al. 2022).

    The walk starts at ``T = n_levels`` and goes down one level at a time to 0. Each
    time it reaches a level ``t`` that is a multiple of ``jump_length`` (``0 < t < T``)
    it jumps back up ``jump_length`` levels, ``n_resample - 1`` times in all, and comes
    down again. With ``jump_length = 1`` this is the per-step resampling written in the
    paper's algorithm (no jump from the final, noise-free level).

    Returns
    -------
    list[int]
        Visited indices, starting with ``T`` and ending with 0; consecutive entries
        differ by -1 (a reverse step) or by ``+jump_length`` (a jump).
    """
    if jump_length < 1 or n_resample < 1:
        raise InputError("jump_length and n_resample must be >= 1")
    jumps = {t: n_resample - 1 for t in range(jump_length, n_levels, jump_length)}
    t = n_levels
    visited = [t]
    while t > 0:
        t -= 1
        visited.append(t)
        if jumps.get(t, 0) > 0:
            jumps[t] -= 1
            t += jump_length
            visited.append(t)
    return visited
