"""Denoising score matching (DSM) training of the score model, resumable step by step.

Loss (paper eq. 6, Song & Ermon 2019): for each structure draw sigma log-uniformly in
[sigma_min, sigma_max], perturb Cartesian positions x~ = x + sigma z, wrap them into
the cell, and regress the model's score onto -(x~ - x)_mic / sigma^2, where _mic is
the minimum-image displacement; the squared error is weighted by sigma^2 and averaged
over atoms.

Reproducibility: the initial weights come from ``seed``, the epoch's shuffle from
``seed + epoch`` and the noise from one generator whose state is saved in every
checkpoint, so a run resumed from any checkpoint (mid-epoch included) continues with
exactly the numbers an uninterrupted run would have used.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chggen_flows.core.device import configure_threads
from chggen_flows.core.model.checkpoint import (
    atomic_save,
    model_from_payload,
    model_payload,
    read_checkpoint,
)
from chggen_flows.core.model.config import ScoreModelConfig
from chggen_flows.core.model.data import Batch, CrystalDataset, read_structures, split_by_id
from chggen_flows.core.model.distributed import (
    Ranks,
    broadcast_from_main,
    init_process_group,
    main_flag,
    shard_bounds,
    sum_gradients,
    sum_over_ranks,
)
from chggen_flows.core.model.network import ScoreModel, deepened
from chggen_flows.errors import CheckpointError, ConfigError
from chggen_flows.progress import make_progress, progress_enabled

logger = logging.getLogger(__name__)

ScoreFn = Callable[..., torch.Tensor]
LAST = "last.pt"
# the loss is read from the device for the progress bar this often
LOG_EVERY_STEPS = 20
# devices on which the minimum image's search bound comes from the host (the data's
# lattices) instead of from the displacements: a host read costs nothing on the CPU,
# and the data-derived bound, being the one earlier versions used, keeps CPU runs
# bit-identical to them (the image search's float rounding depends on its size)
HOST_IMAGE_BOUND = {"cuda"}
# with several ranks, rank 0's wall clock is shared this often (one small collective)
TIME_CHECK_EVERY_STEPS = 20
BEST = "best_model.pt"
HISTORY = "history.json"


# --------------------------------------------------------------------------- loss


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


# --------------------------------------------------------------------------- config


# ScoreModelConfig fields that change the shapes of the weights (num_blocks can grow)
_WEIGHT_SHAPES = (
    "elements",
    "hidden_irreps",
    "lmax",
    "num_bessel",
    "radial_hidden",
    "embedding_dim",
    "sigma_embedding_dim",
)


class TrainConfig(BaseModel):
    """Everything a training run depends on (saved in its checkpoints).

    Attributes
    ----------
    data
        Structure tables / files / directories (see ``read_structures``).
    output_dir
        Where ``last.pt`` (resumable), ``best_model.pt`` (EMA weights with the best
        validation loss) and ``history.json`` go.
    preset, model_overrides
        The architecture: ``ScoreModelConfig.preset(preset, **model_overrides)``; the
        element vocabulary defaults to the elements present in the data.
    max_atoms
        Skip cells with more atoms (CPU budget); None keeps all.
    init_from
        Fine-tuning: start from the (EMA) weights of this model file or checkpoint
        instead of a random initialisation. Its element vocabulary and sizes are kept;
        the architecture is the current one (smooth cutoff, every neighbour), which a
        format-1 file's weights fit unchanged; ``preset`` is ignored. A larger
        ``num_blocks`` in ``model_overrides`` grows the start model: the added blocks
        go last and start as the identity (see :func:`~.network.deepened`).
    focus
        Chemical systems ("Zn-P-S") whose related training structures (sharing two of
        their elements, or made of them only) are shown ``focus_repeat`` times per
        epoch; their validation structures get their own loss in the history.
    focus_only
        System-specific fine-tuning: an epoch is the focus-related training structures
        only (each ``focus_repeat`` times) and the best model is chosen by the focus
        validation loss; the general validation loss is still logged, to show what the
        model forgets elsewhere. Needs ``focus`` (and usually ``init_from``).
    decay_from_epoch
        From this epoch on, the learning rate follows a cosine from its current value
        down to ``min_lr`` at ``epochs`` (per step, so a resumed run continues the same
        curve). None keeps the warm-up + reduce-on-plateau schedule only. It may be set
        when a run is resumed, to anneal a long constant-rate run at its end.
    holdout
        Chemical systems whose structures (those holding all of a system's elements)
        are removed from the training split, e.g. to measure what the related
        chemistry alone teaches a model about an unseen system.
    """

    model_config = ConfigDict(extra="forbid")

    data: list[Path]
    output_dir: Path = Path("runs/score_model")
    preset: str = "cpu"
    model_overrides: dict[str, Any] = Field(default_factory=dict)
    max_atoms: int | None = Field(default=30, ge=1)
    init_from: Path | None = None
    focus: list[str] = Field(default_factory=list)
    focus_repeat: int = Field(default=4, ge=1)
    focus_only: bool = False
    holdout: list[str] = Field(default_factory=list)
    val_fraction: float = Field(default=0.05, ge=0.0, lt=1.0)
    max_val_structures: int = Field(default=512, ge=1)
    epochs: int = Field(default=30, ge=1)
    batch_size: int = Field(default=32, ge=1)
    lr: float = Field(default=2e-3, gt=0)
    weight_decay: float = Field(default=1e-4, ge=0)
    warmup_steps: int = Field(default=200, ge=0)
    lr_patience: int = Field(default=2, ge=0)
    lr_factor: float = Field(default=0.5, gt=0, lt=1)
    min_lr: float = Field(default=1e-5, ge=0)
    decay_from_epoch: int | None = Field(default=None, ge=0)
    ema_decay: float = Field(default=0.999, ge=0, lt=1)
    grad_clip: float = Field(default=1.0, gt=0)
    sigma_min: float = Field(default=1e-3, gt=0)
    sigma_max: float = Field(default=10.0, gt=0)
    seed: int = 0
    device: str = "auto"
    threads: int | None = Field(default=None, ge=1)
    checkpoint_every_steps: int = Field(default=200, ge=1)

    def model_config_for(self, dataset: CrystalDataset) -> ScoreModelConfig:
        """The architecture, with the data's elements unless the overrides fix them."""
        overrides = {"elements": dataset.elements, **self.model_overrides}
        return ScoreModelConfig.preset(self.preset, **overrides)

    def initial_model(self, dataset: CrystalDataset) -> ScoreModel:
        """A fresh model (seeded) or, with ``init_from``, the fine-tuning start."""
        torch.manual_seed(self.seed)
        if self.init_from is None:
            return ScoreModel(self.model_config_for(dataset))
        payload = read_checkpoint(self.init_from)
        try:
            start = ScoreModelConfig(**payload["config"])
        except (KeyError, TypeError, ValidationError) as exc:
            raise CheckpointError(
                f"{self.init_from} holds no valid score-model configuration",
                hint="start from a model file or checkpoint written by chggen train",
            ) from exc
        # current architecture: the format-1 defaults are not carried over
        try:
            target = ScoreModelConfig(
                **{
                    **start.model_dump(),
                    "max_neighbors": None,
                    "radial_envelope": "output",
                    **self.model_overrides,
                }
            )
        except ValidationError as exc:
            raise ConfigError(
                f"model_overrides do not give a valid architecture: {str(exc).splitlines()[0]}",
                hint="see ScoreModelConfig for the fields and their ranges",
            ) from exc
        # compared as validated values, so "32x0e + 16x1o" equals "32x0e+16x1o"
        resized = sorted(
            key
            for key in _WEIGHT_SHAPES
            if key in self.model_overrides and getattr(target, key) != getattr(start, key)
        )
        if resized:
            raise ConfigError(
                f"{self.init_from}'s weights do not fit a model with other {', '.join(resized)}",
                hint="only num_blocks can grow a trained model; train other sizes from scratch",
            )
        # more blocks than the start model: load it as it is, then add identity blocks
        if target.num_blocks < start.num_blocks:
            raise ConfigError(
                f"{self.init_from} has {start.num_blocks} interaction blocks; "
                f"num_blocks {target.num_blocks} would drop trained ones",
                hint=f"use num_blocks >= {start.num_blocks} in model_overrides, or train from scratch",
            )
        model = model_from_payload(
            {
                **payload,
                "config": target.model_copy(update={"num_blocks": start.num_blocks}).model_dump(),
            },
            self.init_from,
        )
        model = deepened(model, target.num_blocks)
        missing = sorted(set(dataset.elements) - set(model.elements))
        if missing:
            raise ConfigError(
                f"{self.init_from} does not know element(s) {', '.join(missing)} of the data",
                hint="fine-tune on structures of its elements, or train from scratch",
            )
        return model


@dataclass
class TrainResult:
    """What a call to :func:`train` left behind."""

    output_dir: Path
    best_model: Path | None
    last_checkpoint: Path
    history: list[dict[str, Any]] = field(default_factory=list)
    finished: bool = False


# --------------------------------------------------------------------------- state


@dataclass
class _State:
    """Counters of a run; everything here is saved and restored on resume."""

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    lr_scale: float = 1.0
    bad_epochs: int = 0
    best_val: float = math.inf
    best_saved: float = math.inf
    wall_s: float = 0.0
    atoms_seen: int = 0
    epoch_loss_sum: float = 0.0
    epoch_steps: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


def cosine_factor(config: TrainConfig, epoch: float) -> float:
    """The annealing factor of the learning rate at (fractional) ``epoch``.

    1 before ``config.decay_from_epoch`` (or without it), then a half cosine reaching
    0 at ``config.epochs``; the step's rate is floored at ``min_lr`` by the caller.
    """
    start = config.decay_from_epoch
    if start is None or epoch <= start:
        return 1.0
    span = max(config.epochs - start, 1)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (epoch - start) / span)))


def _decades(sigma_min: float, sigma_max: float) -> list[tuple[float, float]]:
    lo, hi = math.floor(math.log10(sigma_min) + 1e-9), math.ceil(math.log10(sigma_max) - 1e-9)
    return [(10.0**d, 10.0 ** (d + 1)) for d in range(lo, hi)]


def _to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Host tensor to ``device``; to a GPU through pinned memory, without blocking the
    host, so the next batch is prepared while the GPU works on this one."""
    if device.type != "cuda":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


def _batch_on(batch: Batch, device: torch.device) -> Batch:
    """A batch collated on the host, copied to ``device`` (see :func:`_to_device`)."""
    return Batch(
        species=_to_device(batch.species, device),
        pos=_to_device(batch.pos, device),
        lattice=_to_device(batch.lattice, device),
        batch=_to_device(batch.batch, device),
        counts=batch.counts,
    )


def _host_reach(
    host: Batch, lattice: torch.Tensor, sigma: torch.Tensor, noise: torch.Tensor, device
) -> int | None:
    """The minimum image's bound from the host copies where the device is one of
    HOST_IMAGE_BOUND, else None (the device computes it)."""
    if device.type not in HOST_IMAGE_BOUND:
        return None
    return image_reach(sigma.double()[host.batch, None] * noise.double(), lattice, host.batch)


@torch.no_grad()
def _check_elements(model: ScoreModel, dataset: CrystalDataset) -> None:
    """The data's elements are checked here, once: the forward's own check reads the
    device (a host sync) at every call."""
    unknown = sorted(set(dataset.elements) - set(model.elements))
    if unknown:
        raise ConfigError(
            f"the model does not know element(s) {', '.join(unknown)} of the data",
            hint="train from scratch, or fine-tune on structures of the model's elements",
        )


def _score_fn(model: ScoreModel, host: Batch, device: torch.device) -> ScoreFn:
    """The model as the loss calls it for one batch, with nothing read from the device:
    the data's elements are checked once per run, and on a GPU the neighbour candidates
    are planned from the batch's host cells."""
    return model.prepare(
        host.species, host.lattice, host.batch, host.counts, device=device, check_species=False
    )


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
    _check_elements(model, dataset)
    generator = torch.Generator().manual_seed(seed)
    dtype = next(model.parameters()).dtype
    counts = dataset.counts.tolist()
    names, totals, atoms = [], [], 0
    for lo, hi in _decades(sigma_min, sigma_max):
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
                _score_fn(model, host, device),
                _batch_on(host, device),
                _to_device(sigma, device),
                _to_device(noise, device).to(dtype),
                reach=_host_reach(host, dataset.lattice[indices], sigma, noise, device),
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


def _checkpoint(
    path: Path,
    model: ScoreModel,
    ema: ScoreModel,
    optimizer: torch.optim.Optimizer,
    state: _State,
    noise_rng: torch.Generator,
    config: TrainConfig,
) -> None:
    payload = model_payload(ema, training=_metadata(state, config))
    payload["resume"] = {
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "state": {k: v for k, v in state.__dict__.items() if k != "history"},
        "history": json.dumps(state.history),
        "noise_rng": noise_rng.get_state(),
        "train_config": config.model_dump(mode="json"),
    }
    atomic_save(payload, path)


def _metadata(state: _State, config: TrainConfig) -> dict[str, Any]:
    last = state.history[-1] if state.history else {}
    return {
        "epochs_completed": state.epoch,
        "global_step": state.global_step,
        "wall_s": round(state.wall_s, 1),
        "atoms_seen": state.atoms_seen,
        "best_val_loss": best
        if math.isfinite(best := min(state.best_saved, state.best_val))
        else None,
        "val_loss_by_decade": last.get("val_loss_by_decade"),
        "data": [str(p) for p in config.data],
        "max_atoms": config.max_atoms,
        "init_from": str(config.init_from) if config.init_from else None,
        "focus": list(config.focus),
        "focus_only": config.focus_only,
        "holdout": list(config.holdout),
        "val_fraction": config.val_fraction,
        "seed": config.seed,
    }


def read_train_config(output_dir: str | Path) -> TrainConfig:
    """The TrainConfig stored in ``output_dir/last.pt`` (to resume a run)."""
    payload = read_checkpoint(Path(output_dir) / LAST, kind="training")
    if "resume" not in payload:
        raise CheckpointError(
            f"{Path(output_dir) / LAST} is a model file, not a resumable training checkpoint"
        )
    return TrainConfig(**payload["resume"]["train_config"])


# --------------------------------------------------------------------------- loop


def train(
    config: TrainConfig,
    resume: bool = False,
    time_limit_s: float | None = None,
    max_steps: int | None = None,
    progress: bool | None = None,
    dataset: CrystalDataset | None = None,
) -> TrainResult:
    """Train a score model with denoising score matching.

    Under ``torchrun`` (RANK, WORLD_SIZE and LOCAL_RANK set) each process is one rank
    of a data-parallel run: it joins the process group (nccl on CUDA, gloo on CPU),
    uses cuda:LOCAL_RANK with ``device`` cuda or auto, computes its share of every
    global batch of ``config.batch_size`` structures, and the gradients are summed
    over ranks, so the run makes the optimisation steps of one process on the same
    batches with the same noise. Rank 0 alone writes checkpoints, history and logs;
    every rank resumes from the same ``last.pt``.

    Parameters
    ----------
    config
        The run's settings.
    resume
        Continue from ``config.output_dir/last.pt`` (exactly where it stopped);
        without it, an output folder that already holds a checkpoint is an error.
    time_limit_s
        Save a checkpoint and return after this much wall time (None: no limit).
        With several ranks rank 0's clock decides, checked every
        ``TIME_CHECK_EVERY_STEPS`` steps.
    max_steps
        Save a checkpoint and return after this many optimiser steps in this call.
    progress
        Show a progress bar (None: on a terminal only; rank 0 only).
    dataset
        Already-loaded structures (skips reading ``config.data``).

    Returns
    -------
    TrainResult
        Paths of the checkpoints and the per-epoch history.
    """
    started = time.perf_counter()
    out = Path(config.output_dir)
    last_path = out / LAST
    if last_path.exists() and not resume:
        raise ConfigError(
            f"{out} already holds a training checkpoint",
            hint="continue it with --resume, or choose another output folder",
        )
    if resume and not last_path.exists():
        raise CheckpointError(f"nothing to resume: {last_path} does not exist")
    if config.sigma_min >= config.sigma_max:
        raise ConfigError("sigma_min must be smaller than sigma_max")
    if config.focus_only and not config.focus:
        raise ConfigError(
            "focus_only needs a chemical system to focus on", hint="add --focus Zn-P-S"
        )
    ranks = Ranks.from_environment()
    device = ranks.device(config.device)
    if ranks.enabled:
        configure_threads(config.threads or ranks.default_threads())
    elif config.threads or device.type == "cpu":
        configure_threads(config.threads)
    joined = init_process_group(ranks, device)
    try:
        return _train(
            config, ranks, device, resume, started, time_limit_s, max_steps, progress, dataset
        )
    finally:
        if joined:
            dist.destroy_process_group()


def _train(
    config: TrainConfig,
    ranks: Ranks,
    device: torch.device,
    resume: bool,
    started: float,
    time_limit_s: float | None,
    max_steps: int | None,
    progress: bool | None,
    dataset: CrystalDataset | None,
) -> TrainResult:
    out = Path(config.output_dir)
    last_path = out / LAST
    info = logger.info if ranks.is_main else _quiet
    if dataset is None:
        dataset = read_structures(
            config.data, max_atoms=config.max_atoms, progress=progress if ranks.is_main else False
        )
    train_idx, val_idx = split_by_id(dataset, config.val_fraction)
    if config.holdout:
        held = set(dataset.subset(train_idx).containing(config.holdout).tolist())
        train_idx = torch.as_tensor(
            [i for k, i in enumerate(train_idx.tolist()) if k not in held], dtype=torch.long
        )
        info("holdout %s: %d training structures removed", "/".join(config.holdout), len(held))
    train_set = dataset.subset(train_idx)
    val_set = dataset.subset(val_idx[: config.max_val_structures])
    if len(train_set) == 0:
        raise ConfigError("the validation split took every structure", hint="lower val_fraction")
    epoch_items = torch.arange(len(train_set))
    focus_val = None
    if config.focus:
        related = train_set.related_to(config.focus)
        if config.focus_only:
            if not len(related):
                raise ConfigError(
                    f"no training structure is related to {'/'.join(config.focus)}",
                    hint="add data with these elements, or drop focus_only",
                )
            epoch_items = related.repeat(config.focus_repeat)
        else:
            epoch_items = torch.cat([epoch_items, related.repeat(config.focus_repeat - 1)])
        all_val = dataset.subset(val_idx)
        focus_val = all_val.subset(all_val.related_to(config.focus))
        info(
            "focus %s: %d related training structures (x%d), %d validation",
            "/".join(config.focus), len(related), config.focus_repeat, len(focus_val),
        )  # fmt: skip
    steps_per_epoch = math.ceil(len(epoch_items) / config.batch_size)
    # atoms per structure on the host: the step needs no count from the device
    counts = train_set.counts

    state = _State()
    noise_rng = torch.Generator().manual_seed(config.seed + 1)
    if resume:
        payload = read_checkpoint(last_path, kind="training")
        model = model_from_payload(payload, last_path)
        ema = copy.deepcopy(model)  # payload["state_dict"] holds the EMA weights
        model.load_state_dict(payload["resume"]["model"])
        state = _State(
            **payload["resume"]["state"], history=json.loads(payload["resume"]["history"])
        )
        noise_rng.set_state(payload["resume"]["noise_rng"])
    else:
        model = config.initial_model(dataset)
        ema = copy.deepcopy(model)
    model.to(device).train()
    ema.to(device).eval()
    ema.requires_grad_(False)
    _check_elements(model, dataset)
    if ranks.enabled:
        broadcast_from_main(model)
        broadcast_from_main(ema)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    if resume:
        optimizer.load_state_dict(payload["resume"]["optimizer"])
    info(
        "training on %d structures (%d validation), %d elements, %d parameters, device %s%s",
        len(train_set), len(val_set), len(model.elements),
        sum(p.numel() for p in model.parameters()), device,
        f", {ranks.world_size} ranks" if ranks.enabled else "",
    )  # fmt: skip

    params = [p for p in model.parameters()]
    ema_params = [p for p in ema.parameters()]
    # the epoch's loss sum stays on the device (float64, summed in the order the
    # per-step .item() of earlier versions did) and is read only when it is needed
    loss_sum = torch.tensor(state.epoch_loss_sum, dtype=torch.float64, device=device)
    shown = (state.epoch_loss_sum, state.epoch_steps)
    steps_this_call = 0
    stopped_early = False
    show = ranks.is_main and progress_enabled(None if progress else True)
    with make_progress() as bar:
        task = bar.add_task("training", total=config.epochs * steps_per_epoch, status="")
        bar.update(task, completed=state.global_step, visible=show)
        if not show:
            bar.stop()
        while state.epoch < config.epochs and not stopped_early:
            order = epoch_items[
                torch.randperm(
                    len(epoch_items),
                    generator=torch.Generator().manual_seed(config.seed + state.epoch),
                )
            ]
            tick = time.perf_counter()
            for step in range(state.step_in_epoch, steps_per_epoch):
                idx = order[step * config.batch_size : (step + 1) * config.batch_size]
                batch_counts = counts[idx]
                num_atoms = int(batch_counts.sum())
                # every rank draws the whole global batch's noise: the same numbers
                # whatever the number of ranks
                sigma = sample_sigma(len(idx), config.sigma_min, config.sigma_max, noise_rng)
                noise = torch.randn(num_atoms, 3, generator=noise_rng, dtype=torch.float32)
                if ranks.enabled:
                    bounds = shard_bounds(batch_counts.tolist(), ranks.world_size)
                    first, last = bounds[ranks.rank], bounds[ranks.rank + 1]
                    atom0 = int(batch_counts[:first].sum())
                    atom1 = atom0 + int(batch_counts[first:last].sum())
                    idx, sigma, noise = idx[first:last], sigma[first:last], noise[atom0:atom1]
                optimizer.zero_grad(set_to_none=True)
                if len(idx):
                    host = train_set.batch(idx, torch.float32, "cpu")
                    sigma = sigma.float()
                    loss = dsm_loss(
                        _score_fn(model, host, device),
                        _batch_on(host, device),
                        _to_device(sigma, device),
                        _to_device(noise, device),
                        reach=_host_reach(host, train_set.lattice[idx], sigma, noise, device),
                        atoms=num_atoms if ranks.enabled else None,
                    )
                    loss.backward()
                else:  # an empty share of a short last batch: zero gradients
                    loss = torch.zeros((), device=device)
                if ranks.enabled:
                    loss = sum_gradients(params, loss.detach().reshape(1))[0]
                torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
                warm = min(1.0, (state.global_step + 1) / max(1, config.warmup_steps))
                anneal = cosine_factor(config, state.epoch + step / steps_per_epoch)
                for group in optimizer.param_groups:
                    group["lr"] = max(config.lr * state.lr_scale * warm * anneal, config.min_lr)
                optimizer.step()
                decay = min(config.ema_decay, (1 + state.global_step) / (10 + state.global_step))
                torch._foreach_lerp_(ema_params, [p.detach() for p in params], 1.0 - decay)
                state.step_in_epoch = step + 1
                state.global_step += 1
                state.atoms_seen += num_atoms
                loss_sum += loss.detach().double()
                state.epoch_steps += 1
                steps_this_call += 1
                bar.update(task, advance=1)
                if show and state.global_step % LOG_EVERY_STEPS == 0:
                    shown = _show_loss(bar, task, state, float(loss_sum), shown)
                now = time.perf_counter()
                out_of_time = time_limit_s is not None and now - started > time_limit_s
                if ranks.enabled and time_limit_s is not None:
                    out_of_time = (
                        main_flag(out_of_time, device)
                        if state.global_step % TIME_CHECK_EVERY_STEPS == 0
                        else False
                    )
                out_of_steps = max_steps is not None and steps_this_call >= max_steps
                if (
                    out_of_time
                    or out_of_steps
                    or state.global_step % config.checkpoint_every_steps == 0
                ):
                    state.wall_s += now - tick
                    tick = now
                    state.epoch_loss_sum = float(loss_sum)
                    if ranks.is_main:
                        _checkpoint(last_path, model, ema, optimizer, state, noise_rng, config)
                if out_of_time or out_of_steps:
                    stopped_early = state.step_in_epoch < steps_per_epoch
                    break
            if stopped_early:
                break
            state.wall_s += time.perf_counter() - tick
            state.epoch_loss_sum = float(loss_sum)
            _end_epoch(state, config, ema, val_set, device, optimizer, out, focus_val, ranks)
            loss_sum = torch.tensor(state.epoch_loss_sum, dtype=torch.float64, device=device)
            shown = (state.epoch_loss_sum, state.epoch_steps)
            if ranks.is_main:
                _checkpoint(last_path, model, ema, optimizer, state, noise_rng, config)
            out_of_time = time_limit_s is not None and time.perf_counter() - started > time_limit_s
            if ranks.enabled and time_limit_s is not None:
                out_of_time = main_flag(out_of_time, device)
            if (max_steps is not None and steps_this_call >= max_steps) or out_of_time:
                break
    if ranks.enabled:
        dist.barrier()  # rank 0's files are complete before any rank returns
    best = out / BEST
    return TrainResult(
        output_dir=out,
        best_model=best if best.exists() else None,
        last_checkpoint=last_path,
        history=state.history,
        finished=state.epoch >= config.epochs,
    )


def _quiet(*args: Any, **kwargs: Any) -> None:
    """The logger of ranks other than 0."""


def _show_loss(
    bar: Any, task: Any, state: _State, loss_sum: float, shown: tuple[float, int]
) -> tuple[float, int]:
    """Progress status: mean loss since the last update (one host read per update)."""
    steps = state.epoch_steps - shown[1]
    if steps > 0:
        recent = (loss_sum - shown[0]) / steps
        bar.update(task, status=f"epoch {state.epoch + 1} loss {recent:.3f}")
    return loss_sum, state.epoch_steps


def _end_epoch(
    state: _State,
    config: TrainConfig,
    ema: ScoreModel,
    val_set: CrystalDataset,
    device: torch.device,
    optimizer: torch.optim.Optimizer,
    out: Path,
    focus_val: CrystalDataset | None = None,
    ranks: Ranks | None = None,
) -> None:
    """Validate the EMA weights, adapt the learning rate, save the best model (rank 0)."""
    ranks = ranks or Ranks()

    def losses(structures: CrystalDataset) -> dict[str, float]:
        return validation_loss(
            ema, structures, config.sigma_min, config.sigma_max, config.batch_size, device,
            ranks=ranks,
        )  # fmt: skip

    by_decade = losses(val_set) if len(val_set) else {}
    focus_by_decade = losses(focus_val) if focus_val is not None and len(focus_val) else None
    val = sum(by_decade.values()) / len(by_decade) if by_decade else math.nan
    focus = sum(focus_by_decade.values()) / len(focus_by_decade) if focus_by_decade else math.nan
    # a system-specific fine-tune is judged on its own system's structures
    chosen = focus if config.focus_only and math.isfinite(focus) else val
    state.epoch += 1
    state.step_in_epoch = 0
    train_loss = state.epoch_loss_sum / max(1, state.epoch_steps)
    state.epoch_loss_sum, state.epoch_steps = 0.0, 0
    # the plateau counter wants a 0.1% gain; the best model is any lower loss, so a
    # slowly improving run does not ship weights several epochs old (runs saved before
    # best_saved existed start from their best_val)
    better = math.isfinite(chosen) and chosen < min(state.best_saved, state.best_val)
    if better:
        state.best_saved = chosen
    improved = math.isfinite(chosen) and chosen < state.best_val * (1 - 1e-3)
    if improved:
        state.best_val, state.bad_epochs = chosen, 0
    elif math.isfinite(chosen):
        state.bad_epochs += 1
        if state.bad_epochs > config.lr_patience:
            state.lr_scale *= config.lr_factor
            state.bad_epochs = 0
    state.history.append(
        {
            "epoch": state.epoch,
            "global_step": state.global_step,
            "wall_s": round(state.wall_s, 1),
            "atoms_seen": state.atoms_seen,
            "lr": optimizer.param_groups[0]["lr"],
            "train_loss": train_loss,
            "val_loss": val,
            "val_loss_by_decade": by_decade,
        }
    )
    if focus_by_decade is not None:
        state.history[-1]["val_focus_loss"] = focus
        state.history[-1]["val_focus_by_decade"] = focus_by_decade
    if not ranks.is_main:
        return
    logger.info(
        "epoch %d: train %.4f val %.4f %s", state.epoch, train_loss, val, json.dumps(by_decade)
    )
    if better or not math.isfinite(chosen):
        atomic_save(model_payload(ema, training=_metadata(state, config)), out / BEST)
    tmp = out / f".{HISTORY}.tmp"
    tmp.write_text(json.dumps(state.history, indent=1))
    tmp.replace(out / HISTORY)
