"""The training loop: optimiser steps, EMA, time and step limits, checkpoints, and the
end-of-epoch validation, learning-rate schedule and best model.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from chggen_flows.core.device import configure_threads
from chggen_flows.core.model.data import CrystalDataset, read_structures
from chggen_flows.core.model.distributed import (
    Ranks,
    broadcast_from_main,
    init_process_group,
    main_flag,
    shard_bounds,
    sum_gradients,
)
from chggen_flows.core.model.network import ScoreModel
from chggen_flows.core.model.training import transfer
from chggen_flows.core.model.training.config import TrainConfig, cosine_factor
from chggen_flows.core.model.training.history import RunState, write_history
from chggen_flows.core.model.training.loss import dsm_loss, sample_sigma
from chggen_flows.core.model.training.run_files import (
    BEST,
    LAST,
    load_resumable,
    save_best,
    save_resumable,
)
from chggen_flows.core.model.training.splits import training_splits
from chggen_flows.core.model.training.validation import validation_loss
from chggen_flows.errors import CheckpointError, ConfigError
from chggen_flows.progress import make_progress, progress_enabled

logger = logging.getLogger(__name__)

# the loss is read from the device for the progress bar this often
LOG_EVERY_STEPS = 20
# with several ranks, rank 0's wall clock is shared this often (one small collective)
TIME_CHECK_EVERY_STEPS = 20


@dataclass
class TrainResult:
    """What a call to :func:`train` left behind."""

    output_dir: Path
    best_model: Path | None
    last_checkpoint: Path
    history: list[dict[str, Any]] = field(default_factory=list)
    finished: bool = False
    early_stopped: bool = False


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
    splits = training_splits(dataset, config, info)
    train_set, val_set = splits.train_set, splits.val_set
    epoch_items, focus_val = splits.epoch_items, splits.focus_val
    steps_per_epoch = math.ceil(len(epoch_items) / config.batch_size)
    # atoms per structure on the host: the step needs no count from the device
    counts = train_set.counts

    state = RunState()
    noise_rng = torch.Generator().manual_seed(config.seed + 1)
    optimizer_state = None
    if resume:
        resumed = load_resumable(last_path)
        model, ema, state = resumed.model, resumed.ema, resumed.state
        optimizer_state = resumed.optimizer_state
        noise_rng.set_state(resumed.noise_rng_state)
    else:
        model = config.initial_model(dataset)
        ema = copy.deepcopy(model)
    model.to(device).train()
    ema.to(device).eval()
    ema.requires_grad_(False)
    transfer.check_elements(model, dataset)
    if ranks.enabled:
        broadcast_from_main(model)
        broadcast_from_main(ema)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    if optimizer_state is not None:
        optimizer.load_state_dict(optimizer_state)
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
        while (
            state.epoch < config.epochs and not stopped_early and not _patience_out(state, config)
        ):
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
                        transfer.bound_score_fn(model, host, device),
                        transfer.batch_on(host, device),
                        transfer.to_device(sigma, device),
                        transfer.to_device(noise, device),
                        reach=transfer.host_reach(
                            host, train_set.lattice[idx], sigma, noise, device
                        ),
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
                        save_resumable(last_path, model, ema, optimizer, state, noise_rng, config)
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
                save_resumable(last_path, model, ema, optimizer, state, noise_rng, config)
            out_of_time = time_limit_s is not None and time.perf_counter() - started > time_limit_s
            if ranks.enabled and time_limit_s is not None:
                out_of_time = main_flag(out_of_time, device)
            if (max_steps is not None and steps_this_call >= max_steps) or out_of_time:
                break
    early_stopped = _patience_out(state, config)
    if early_stopped:
        info("no lower validation loss for %d epochs: stopped early", state.stale_epochs)
    if ranks.enabled:
        dist.barrier()  # rank 0's files are complete before any rank returns
    best = out / BEST
    return TrainResult(
        output_dir=out,
        best_model=best if best.exists() else None,
        last_checkpoint=last_path,
        history=state.history,
        finished=state.epoch >= config.epochs or early_stopped,
        early_stopped=early_stopped,
    )


def _patience_out(state: RunState, config: TrainConfig) -> bool:
    """Early stopping: ``stop_patience`` epochs without a lower validation loss."""
    return config.stop_patience is not None and state.stale_epochs >= config.stop_patience


def _quiet(*args: Any, **kwargs: Any) -> None:
    """The logger of ranks other than 0."""


def _show_loss(
    bar: Any, task: Any, state: RunState, loss_sum: float, shown: tuple[float, int]
) -> tuple[float, int]:
    """Progress status: mean loss since the last update (one host read per update)."""
    steps = state.epoch_steps - shown[1]
    if steps > 0:
        recent = (loss_sum - shown[0]) / steps
        bar.update(task, status=f"epoch {state.epoch + 1} loss {recent:.3f}")
    return loss_sum, state.epoch_steps


def _end_epoch(
    state: RunState,
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
        state.stale_epochs = 0
    elif math.isfinite(chosen):
        state.stale_epochs += 1
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
        save_best(ema, state, config, out / BEST)
    write_history(state.history, out)
