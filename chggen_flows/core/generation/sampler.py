"""Batched VE-SDE predictor-corrector sampling of atomic positions (paper Algorithm 1).

One reverse-diffusion engine serves unconditional generation and RePaint inpainting:
it walks a list of noise-level indices, taking a predictor step (paper eq. 4) plus
``M`` Langevin corrector steps on every step down and adding noise on every jump up
(RePaint). Atoms whose positions are known (a host) are replaced at every level by
their known positions re-noised to that level.

Reproducibility: a candidate's noise is a counter-based hash of its own seed, the
draw's number and the atom (:mod:`~chggen_flows.core.generation.noise`), drawn for the
whole batch in one computation per step, and every per-structure quantity (the
corrector step) is computed per structure, so a candidate's trajectory does not depend
on which other candidates share its batch. CPU and GPU draw the same noise to rounding
(see the noise module); their structures agree to rounding, not bitwise.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from chggen_flows.core.generation.batching import (
    DEFAULT_BYTES_PER_ATOM,
    PackedBatch,
    auto_max_batch_atoms,
    plan_chunks,
)
from chggen_flows.core.generation.noise import counter_normal, counter_uniform, seed_keys
from chggen_flows.core.generation.schedule import sigma_levels
from chggen_flows.core.generation.settings import SamplerSettings
from chggen_flows.errors import InputError
from chggen_flows.progress import make_progress, progress_enabled


class ScoreFn(Protocol):
    """A score model: per-atom grad_x log p_sigma(x) in 1/Å.

    Parameters
    ----------
    species
        LongTensor[N], atomic numbers.
    pos
        FloatTensor[N, 3], Cartesian positions in Å.
    lattice
        FloatTensor[B, 3, 3], rows are lattice vectors.
    batch
        LongTensor[N], structure index of each atom (atoms grouped by structure).
    sigma
        FloatTensor[B], noise level of each structure in Å.

    Notes
    -----
    A score function may also have ``prepare(species, lattice, batch, counts)``
    returning a score function for that batch (atoms and cells do not change during
    sampling): the sampler then calls it once per chunk and uses what it returns, so
    per-batch work (checks, neighbour-search set-up) is done once and not at every
    model call (see :meth:`~chggen_flows.core.model.network.ScoreModel.prepare`).
    """

    def __call__(
        self,
        species: torch.Tensor,
        pos: torch.Tensor,
        lattice: torch.Tensor,
        batch: torch.Tensor,
        sigma: torch.Tensor,
    ) -> torch.Tensor: ...


@dataclass
class SamplingJob:
    """One candidate to sample: its atoms, cell and seed, and optionally known atoms.

    Attributes
    ----------
    species
        Atomic numbers.
    lattice
        3x3 cell, rows are vectors (Å).
    seed
        Seed of this candidate's noise stream.
    known_pos
        Cartesian positions (Å) of the atoms held fixed (inpainting host), NaN rows for
        the atoms to sample; None samples every atom.
    start_pos
        Cartesian positions (Å) the sampled atoms begin at (a warm start: they get the
        first visited level's noise), NaN rows for atoms drawn from the prior; None: every
        atom from the prior. Meaningful when the walk begins below ``sigma_max``.
    """

    species: list[int]
    lattice: np.ndarray
    seed: int
    known_pos: np.ndarray | None = None
    start_pos: np.ndarray | None = None

    @property
    def free(self) -> np.ndarray:
        """Boolean mask of the atoms that are sampled."""
        if self.known_pos is None:
            return np.ones(len(self.species), dtype=bool)
        return np.isnan(self.known_pos).any(axis=1)


@dataclass
class SamplingResult:
    """Final positions of one job and diagnostics."""

    positions: np.ndarray  # Cartesian, Å, wrapped into the cell (known atoms as given)
    final_score_norm: float  # ||s(x, sigma_min)||_2 over the structure at the last model call
    model_calls: int


@dataclass
class _Chunk:
    """Tensors of one batch of jobs during sampling."""

    packed: PackedBatch
    keys: torch.Tensor  # [N] int64, the noise key of each atom's structure
    local: torch.Tensor  # [N] int64, each atom's index within its structure
    free: torch.Tensor  # [N] float, 1 for sampled atoms
    known: torch.Tensor | None  # [N, 3], known positions (0 for free atoms)
    counts: list[int]  # atoms per structure
    start: torch.Tensor | None = None  # [N, 3] warm-start positions (0 elsewhere)
    started: torch.Tensor | None = None  # [N] float, 1 for sampled atoms with a start
    draws: int = 0  # noise draws so far (the same for every structure of the chunk)

    def rand(self, dtype: torch.dtype) -> torch.Tensor:
        """Uniform [0, 1)^3 per atom (draw 0: the prior), from each structure's seed."""
        return counter_uniform(self.keys, self.local, 0, 3, dtype)

    def randn(self, dtype: torch.dtype) -> torch.Tensor:
        """Standard normal noise for every atom, each structure from its own seed."""
        self.draws += 1
        return counter_normal(self.keys, self.local, self.draws, 3, dtype)

    def renoise_known(self, pos: torch.Tensor, sigma: float) -> torch.Tensor:
        """Replace known atoms by their known positions plus noise of std ``sigma``."""
        if self.known is None:
            return pos
        noisy = (
            self.packed.wrap(self.known + sigma * self.randn(pos.dtype))
            if sigma > 0
            else self.known
        )
        return torch.where(self.free[:, None] > 0, pos, noisy)


def _make_chunk(jobs: Sequence[SamplingJob], device: torch.device, dtype: torch.dtype) -> _Chunk:
    packed = PackedBatch.from_lists(
        [j.species for j in jobs], [j.lattice for j in jobs], device, dtype
    )
    free = np.concatenate([j.free for j in jobs])
    known = None
    if any(j.known_pos is not None for j in jobs):
        rows = [
            np.nan_to_num(j.known_pos) if j.known_pos is not None else np.zeros((len(j.species), 3))
            for j in jobs
        ]
        known = torch.tensor(np.concatenate(rows), dtype=dtype, device=device)
    start = started = None
    if any(j.start_pos is not None for j in jobs):
        rows = [
            j.start_pos if j.start_pos is not None else np.full((len(j.species), 3), np.nan)
            for j in jobs
        ]
        given = np.concatenate(rows)
        mask = ~np.isnan(given).any(axis=1) & free
        start = torch.tensor(np.nan_to_num(given), dtype=dtype, device=device)
        started = torch.tensor(mask, dtype=dtype, device=device)
    counts = [len(j.species) for j in jobs]
    local = np.concatenate([np.arange(n) for n in counts])
    return _Chunk(
        packed=packed,
        keys=seed_keys([j.seed for j in jobs], device)[packed.batch],
        local=torch.tensor(local, dtype=torch.long, device=device),
        free=torch.tensor(free, dtype=dtype, device=device),
        known=known,
        counts=counts,
        start=start,
        started=started,
    )


def reverse_diffusion(
    score_fn: ScoreFn,
    jobs: Sequence[SamplingJob],
    settings: SamplerSettings,
    visits: Sequence[int],
    device: torch.device,
    on_level: Callable[[float], None] | None = None,
) -> list[SamplingResult]:
    """Run the reverse process for one batch of jobs along a walk over noise levels.

    Parameters
    ----------
    score_fn
        The score model.
    jobs
        Candidates sampled together in one batched graph per model call.
    settings
        Schedule, corrector and dtype.
    visits
        Level indices to walk (into ``sigma_levels``), from ``T`` down to 0; a step of
        -1 is a predictor step (plus correctors), a step up is a RePaint jump.
    device
        Where the tensors live.
    on_level
        Called after every visited level with its sigma (progress reporting).

    Returns
    -------
    list[SamplingResult]
        One per job, in order.
    """
    dtype = settings.torch_dtype
    sigmas = sigma_levels(settings.n_levels, settings.sigma_max, settings.sigma_min)
    chunk = _make_chunk(jobs, device, dtype)
    packed = chunk.packed
    free = chunk.free[:, None]
    calls = 0
    score_norm = torch.zeros(packed.n_structures, dtype=dtype, device=device)
    prepare = getattr(score_fn, "prepare", None)
    if callable(prepare):
        score_fn = prepare(packed.species, packed.lattice, packed.batch, chunk.counts)

    def score(pos: torch.Tensor, sigma: float) -> torch.Tensor:
        nonlocal calls
        calls += 1
        level = torch.full((packed.n_structures,), sigma, dtype=dtype, device=device)
        return score_fn(packed.species, pos, packed.lattice, packed.batch, level).to(dtype)

    # Prior at sigma_max: uniform fractional coordinates. The paper draws N(0, 1)
    # fractional coordinates and wraps them; that wrapped density differs from uniform
    # by < 1e-8, and VE noise of 10 Å is itself uniform on cells of this size.
    frac = chunk.rand(dtype)
    pos = chunk.renoise_known(packed.to_cartesian(frac), float(sigmas[visits[0]]))
    if chunk.start is not None:  # warm start: given positions at the first level's noise
        noisy = packed.wrap(chunk.start + float(sigmas[visits[0]]) * chunk.randn(dtype))
        pos = torch.where(chunk.started[:, None] > 0, noisy, pos)
    # A Langevin step larger than the prior variance only re-randomises positions;
    # capping it keeps coordinates finite where the score vanishes (uniform density).
    max_step = settings.sigma_max**2
    with torch.inference_mode():
        for upper, lower in itertools.pairwise(visits):
            if lower > upper:  # RePaint jump back up: forward noise on the sampled atoms
                step = math.sqrt(sigmas[lower] ** 2 - sigmas[upper] ** 2)
                pos = packed.wrap(pos + free * step * chunk.randn(dtype))
                pos = chunk.renoise_known(pos, float(sigmas[lower]))
                if on_level is not None:
                    on_level(float(sigmas[lower]))
                continue
            s_hi, s_lo = float(sigmas[upper]), float(sigmas[lower])
            g = score(pos, s_hi)
            score_norm = packed.structure_norm(g)
            # predictor, paper eq. 4 (ancestral step of the VE-SDE)
            noise_std = math.sqrt(s_lo**2 * (s_hi**2 - s_lo**2) / s_hi**2)
            pos = pos + free * ((s_hi**2 - s_lo**2) * g + noise_std * chunk.randn(dtype))
            pos = chunk.renoise_known(packed.wrap(pos), s_lo)
            if lower > 0:
                for _ in range(settings.n_corrector):
                    z = chunk.randn(dtype)
                    g = score(pos, s_lo)
                    g_norm = packed.structure_norm(g)
                    z_norm = (
                        torch.sqrt(3.0 * packed.natoms.to(dtype))
                        if settings.corrector_norm == "sqrt_dim"
                        else torch.full_like(g_norm, math.sqrt(3.0))
                    )
                    eps = 2.0 * (settings.snr * z_norm / g_norm.clamp_min(1e-30)) ** 2
                    eps = torch.where(g_norm > 0, eps.clamp_max(max_step), torch.zeros_like(eps))
                    eps = eps[packed.batch, None]
                    pos = packed.wrap(pos + free * (eps * g + torch.sqrt(2.0 * eps) * z))
            if on_level is not None:
                on_level(s_lo)
    final = pos.detach().cpu().numpy()
    offsets = np.cumsum([0, *chunk.counts])
    norms = score_norm.cpu().numpy()
    return [
        SamplingResult(final[offsets[i] : offsets[i + 1]], float(norms[i]), calls)
        for i in range(len(jobs))
    ]


def sample_jobs(
    score_fn: ScoreFn,
    jobs: Sequence[SamplingJob],
    settings: SamplerSettings,
    visits: Sequence[int],
    device: torch.device,
    progress: bool | None = None,
    description: str = "sampling",
) -> list[SamplingResult]:
    """Sample many jobs in memory-sized batches, with a progress bar over noise levels.

    Batches are consecutive runs of jobs of at most ``settings.max_batch_atoms`` atoms
    (when None, sized from free device memory and the score function's
    ``inference_bytes_per_atom(largest structure)`` if it has one). On an out-of-memory
    error (torch's, or any RuntimeError saying "out of memory", e.g. vesin's) the limit
    drops to half the failed batch and the remaining jobs are re-planned; results are
    unchanged because each job's noise depends only on its own seed.
    """
    sizes = [len(j.species) for j in jobs]
    limit = settings.max_batch_atoms or auto_max_batch_atoms(
        device, _bytes_per_atom(score_fn, max(sizes, default=1))
    )
    steps = len(visits) - 1
    bar = make_progress(transient=True) if progress_enabled(_disable(progress)) else None
    results: list[SamplingResult] = []
    with bar or contextlib.nullcontext():
        n_chunks = len(plan_chunks(sizes, limit, settings.max_batch_size))
        task = bar.add_task(description, total=steps * n_chunks, status="") if bar else None

        def tick(sigma: float) -> None:
            if bar is not None:
                bar.update(task, advance=1, status=f"sigma={sigma:.3g} Å")

        done_chunks = 0
        while len(results) < len(jobs):
            start = len(results)
            plan = plan_chunks(sizes[start:], limit, settings.max_batch_size)
            chunk = [jobs[start + i] for i in plan[0]]
            failed = False
            try:
                results.extend(reverse_diffusion(score_fn, chunk, settings, visits, device, tick))
                done_chunks += 1
            except RuntimeError as error:  # torch.cuda.OutOfMemoryError is one
                if len(chunk) == 1 or not is_out_of_memory(error):
                    raise
                failed = True
            if failed:
                # Out of the except block: the exception, its traceback and the frames
                # holding the failed batch's tensors are gone, so this frees them.
                _free_memory(device)
                limit = max(1, sum(sizes[start : start + len(chunk)]) // 2)
                if bar is not None:
                    remaining = len(plan_chunks(sizes[start:], limit, settings.max_batch_size))
                    bar.update(
                        task, completed=steps * done_chunks, total=steps * (done_chunks + remaining)
                    )
    return results


def is_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` is a device (or host) allocation failure.

    torch raises ``torch.cuda.OutOfMemoryError`` for its own allocations; extensions
    (vesin's CUDA code, cuBLAS workspaces) and the CPU allocator raise a plain
    RuntimeError whose message says so.
    """
    if isinstance(error, torch.cuda.OutOfMemoryError):
        return True
    message = str(error).lower()
    return isinstance(error, RuntimeError) and (
        "out of memory" in message or "can't allocate memory" in message
    )


def _free_memory(device: torch.device) -> None:
    """Release what a failed batch left: unreachable tensors, then CUDA's cached blocks."""
    gc.collect()  # reference cycles (e.g. through autograd or closures) that hold tensors
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _bytes_per_atom(score_fn: ScoreFn, atoms_per_structure: int) -> int:
    """The score function's own memory estimate per atom, else the default."""
    estimate = getattr(score_fn, "inference_bytes_per_atom", None)
    if callable(estimate):
        return int(estimate(atoms_per_structure))
    return DEFAULT_BYTES_PER_ATOM


def _disable(progress: bool | None) -> bool | None:
    """``progress`` (True/False/None = automatic) as the ``disable`` flag of the helpers."""
    return None if progress is None else not progress


def cuda_syncs_per_model_call(
    score_fn: ScoreFn,
    jobs: Sequence[SamplingJob],
    device: torch.device,
    levels: tuple[int, int] = (2, 5),
) -> dict[str, float]:
    """CUDA host synchronisations per model call of the sampler, measured on ``device``.

    Runs the reverse process twice (``levels`` predictor levels, one corrector step)
    under ``torch.cuda.set_sync_debug_mode("warn")``, which warns at every sync, and
    takes the difference, so the per-batch set-up and read-out cancel out.

    Returns
    -------
    dict
        ``syncs_per_model_call`` and ``syncs_per_chunk_setup`` (the fixed rest).
    """
    import warnings

    if device.type != "cuda":
        raise InputError("sync counting needs a CUDA device", hint="run it on a GPU node")
    figures = []
    for n_levels in levels:
        settings = SamplerSettings(n_levels=n_levels, n_corrector=1, min_distance=0.0)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                results = reverse_diffusion(
                    score_fn, jobs, settings, list(range(n_levels, -1, -1)), device
                )
            finally:
                torch.cuda.set_sync_debug_mode("default")
        syncs = sum("synchroniz" in str(w.message).lower() for w in caught)
        figures.append((syncs, results[0].model_calls))
    (few, calls_few), (many, calls_many) = figures
    per_call = (many - few) / (calls_many - calls_few)
    return {"syncs_per_model_call": per_call, "syncs_per_chunk_setup": few - calls_few * per_call}
