"""Counter-based random numbers: each structure's noise from its seed alone, batched.

The sampler needs, at every step, standard normal noise for every atom of a batch,
such that a structure's noise depends only on its own seed and on how many draws it
has made, never on which other structures share its batch (so a candidate is the
same sampled alone or in a chunk of any size). One ``torch.Generator`` per structure
gives that, but costs one kernel launch per structure per draw. Here every number is
instead a hash of ``(seed, draw, element)`` (SplitMix64's finaliser, three rounds),
turned into a uniform or (Box-Muller) a normal number: one batched computation per
draw, about fifteen kernels, whatever the batch size.

The integer part is exact and device-independent (int64 arithmetic wraps the same way
on the CPU and CUDA); the float64 ``log``/``cos``/``sqrt`` of Box-Muller may differ by
one unit in the last place between the CPU's and CUDA's maths libraries. CPU and GPU
runs therefore draw the same noise to rounding (bitwise in float32 in almost every
draw), but do not promise bitwise-identical structures: the score model's float32
sums are ordered differently on the two devices anyway.
"""

from __future__ import annotations

import math

import torch

_GOLDEN = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB
_MASK64 = (1 << 64) - 1


def _signed(value: int) -> int:
    """A 64-bit pattern as the int64 that holds it."""
    value &= _MASK64
    return value - (1 << 64) if value >= 1 << 63 else value


def _shift_right(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Logical right shift of int64 bit patterns (torch's ``>>`` is arithmetic)."""
    return (x >> bits) & ((1 << (64 - bits)) - 1)


def splitmix64(x: torch.Tensor) -> torch.Tensor:
    """SplitMix64 finaliser of int64 tensors (a bijection with good avalanche)."""
    z = x + _signed(_GOLDEN)
    z = (z ^ _shift_right(z, 30)) * _signed(_MIX1)
    z = (z ^ _shift_right(z, 27)) * _signed(_MIX2)
    return z ^ _shift_right(z, 31)


def seed_keys(seeds: list[int], device: torch.device) -> torch.Tensor:
    """Int64 keys of per-structure seeds (any Python ints, taken modulo 2^64)."""
    return splitmix64(torch.tensor([_signed(int(s)) for s in seeds], device=device))


def _bits(keys: torch.Tensor, draw: int, element: torch.Tensor) -> torch.Tensor:
    """64 hashed bits per element: ``keys`` [N] (per row), ``element`` [N, k] -> [N, k]."""
    stream = splitmix64(keys + _signed(draw * _GOLDEN))
    return splitmix64(stream[:, None] ^ element)


def _uniform_pair(bits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Two float64 uniforms from 64 bits: (0, 1) from the high half, [0, 1) from the low."""
    high = _shift_right(bits, 32).double()
    low = (bits & 0xFFFFFFFF).double()
    return (high + 0.5) / 2.0**32, low / 2.0**32


def counter_uniform(
    keys: torch.Tensor, local: torch.Tensor, draw: int, width: int, dtype: torch.dtype
) -> torch.Tensor:
    """Uniform [0, 1) numbers, ``width`` per row.

    Parameters
    ----------
    keys
        LongTensor[N], the key of each row's structure (:func:`seed_keys`, gathered).
    local
        LongTensor[N], the row's index within its structure.
    draw
        Draw counter: the same ``(key, local, draw)`` always gives the same numbers.
    width
        Numbers per row.
    dtype
        Floating dtype of the result.
    """
    element = local[:, None] * width + torch.arange(width, device=local.device)
    _, u = _uniform_pair(_bits(keys, draw, element))
    return u.to(dtype)


def counter_normal(
    keys: torch.Tensor, local: torch.Tensor, draw: int, width: int, dtype: torch.dtype
) -> torch.Tensor:
    """Standard normal numbers, ``width`` per row (see :func:`counter_uniform`).

    Box-Muller from 32-bit uniforms: tails are cut at 6.7 standard deviations (a
    probability of 3e-11 per number).
    """
    element = local[:, None] * width + torch.arange(width, device=local.device)
    u1, u2 = _uniform_pair(_bits(keys, draw, element))
    return (torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(2.0 * math.pi * u2)).to(dtype)
