"""Per-campaign adaptation: fine-tune a score model on the known structures related to a
chemical system, read from a structure source.

The selection is the training ``--focus`` rule (structures that share two of the
system's elements or are made of its elements only;
:func:`~chggen_flows.core.sources.chemsys.is_related`), applied by the structure
sources (:mod:`chggen_flows.core.sources`), minus an exclusion filter (benchmarks hold
out the phases they look for). The related set is split by id hash into training and a
held-out part; the run starts from the base model's weights, stops at its budget
(steps or minutes) or when the held-out loss has not fallen for ``patience`` epochs,
and keeps the weights with the lowest held-out loss. When the related set is too small
to help, or the run does not lower the held-out loss below the base model's, the
result says so and names the base model instead.

Everything a run leaves is in its output folder: ``related.dataset.pt`` (the
structures it trained on), the training run's ``last.pt``, ``best_model.pt`` and
``history.json``, and ``adaptation.json`` (:class:`AdaptResult`). A second call with
the same request returns the stored result without training again; an interrupted
run is resumed.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator

from chggen_flows.core.device import resolve_device
from chggen_flows.core.model.checkpoint import load_score_model, resolve_checkpoint
from chggen_flows.core.model.data import CrystalDataset, split_by_id
from chggen_flows.core.model.training import LAST, TrainConfig, train, validation_loss
from chggen_flows.core.sources import SourceFilter, StructureEntry, load_structures
from chggen_flows.core.sources.chemsys import parse_chemical_systems
from chggen_flows.errors import ConfigError

logger = logging.getLogger(__name__)

RESULT = "adaptation.json"
RELATED = "related.dataset.pt"
RUN = "run"
REQUEST = ".request.json"

SourceLike = str | Path


class AdaptSettings(BaseModel):
    """How a base model is adapted to one chemical system.

    Attributes
    ----------
    max_steps
        Budget in optimiser steps: with ``steps_per_epoch``, the whole epochs that fit
        in it (at least one); without, the epochs that cover it.
    steps_per_epoch
        About this many steps between two evaluations of the held-out loss (the
        related set is repeated to fill an epoch): the learning-rate plateau counter
        and ``patience`` count these epochs, as in the hand-made fine-tune (about 100
        steps per epoch). None: one pass over the training part per epoch, which for a
        small set gives epochs of a few steps whose plateau counter drives the learning
        rate to its floor (docs/model_card.md).
    max_minutes
        Budget in wall-clock minutes (None: no time limit). With both, the first
        reached ends the run.
    min_related
        Fewer related structures than this (after exclusions) and the base model is
        used instead (a fine-tune on a handful of structures overfits them).
    patience
        Early stopping: end after this many epochs without a lower held-out loss.
    val_fraction, min_val
        The held-out share of the related set (by id hash), at least ``min_val``
        structures.
    exclude_formulas, exclude_ids
        Left out of the related set (reduced formulas match any number of formula
        units): what a benchmark looks for must not be trained on.
    lr, batch_size, warmup_steps, weight_decay, ema_decay
        Optimisation (the hand-made ``shipped:Zn-P-S`` fine-tune used lr 3e-4, batch
        32). The warm-up defaults to a tenth of the step budget, at most 50 steps.
    max_atoms
        Skip larger cells of the source.
    seed, device, threads, checkpoint_every_steps
        As in :class:`~chggen_flows.core.model.training.TrainConfig`.
    """

    model_config = ConfigDict(extra="forbid")

    max_steps: int = Field(default=1500, ge=1)
    steps_per_epoch: int | None = Field(default=100, ge=1)
    max_minutes: float | None = Field(default=None, gt=0)
    min_related: int = Field(default=20, ge=1)
    patience: int = Field(default=5, ge=1)
    val_fraction: float = Field(default=0.15, gt=0.0, lt=1.0)
    min_val: int = Field(default=4, ge=1)
    exclude_formulas: list[str] = Field(default_factory=list)
    exclude_ids: list[str] = Field(default_factory=list)
    lr: float = Field(default=3e-4, gt=0)
    batch_size: int = Field(default=32, ge=1)
    warmup_steps: int | None = Field(default=None, ge=0)
    weight_decay: float = Field(default=1e-4, ge=0)
    ema_decay: float = Field(default=0.999, ge=0, lt=1)
    max_atoms: int | None = Field(default=52, ge=1)
    seed: int = 0
    device: str = "auto"
    threads: int | None = Field(default=None, ge=1)
    checkpoint_every_steps: int = Field(default=200, ge=1)

    @field_validator("exclude_formulas")
    @classmethod
    def _formulas_parse(cls, value: list[str]) -> list[str]:
        SourceFilter.build(exclude_formulas=value)  # raises InputError on a bad formula
        return value


class AdaptResult(BaseModel):
    """What an adaptation did (``adaptation.json`` in its output folder).

    Attributes
    ----------
    status
        ``adapted``: ``checkpoint`` is the fine-tuned model. ``fallback``: the related
        set was too small or the fine-tune did not lower the held-out loss;
        ``checkpoint`` is the base model and ``message`` says why.
    checkpoint
        The model to generate with (a path, or the base's ``shipped...`` name).
    base_checkpoint
        The base model as requested (None: the shipped general model).
    n_related, n_excluded, n_unknown_elements
        Related structures used; left out by the exclusion filter; left out because the
        base model does not know one of their elements.
    excluded_ids
        The ids the exclusion filter removed (what a benchmark may look for).
    n_train, n_val
        The split of the used structures.
    base_val_loss, best_val_loss
        Held-out DSM loss (mean over sigma decades, fixed noise) of the base model and
        of the kept weights.
    steps, epochs, wall_s, early_stopped
        What the training run did.
    request
        The inputs (system, sources, base, settings): a second call with the same
        request returns this result instead of training again.
    """

    model_config = ConfigDict(extra="forbid")

    system: str
    status: Literal["adapted", "fallback"]
    checkpoint: str
    base_checkpoint: str | None
    message: str
    n_related: int
    n_excluded: int
    n_unknown_elements: int
    excluded_ids: list[str] = Field(default_factory=list)
    n_train: int = 0
    n_val: int = 0
    base_val_loss: float | None = None
    best_val_loss: float | None = None
    steps: int = 0
    epochs: int = 0
    wall_s: float = 0.0
    early_stopped: bool = False
    sigma_min: float | None = None
    sigma_max: float | None = None
    request: dict[str, Any] = Field(default_factory=dict)

    @property
    def adapted(self) -> bool:
        """Whether ``checkpoint`` is a fine-tuned model (not the base)."""
        return self.status == "adapted"


def related_structures(
    system: str,
    sources: SourceLike | Sequence[SourceLike],
    settings: AdaptSettings,
) -> tuple[list[StructureEntry], list[StructureEntry]]:
    """The ordered structures of ``sources`` related to ``system``: (kept, excluded).

    The exclusion filter is applied after the selection, so what it removes can be
    reported (and checked by benchmarks).
    """
    query = SourceFilter.build(related_to=system, max_atoms=settings.max_atoms, ordered_only=True)
    entries = load_structures(list(sources) if _is_many(sources) else sources, query)
    exclusion = SourceFilter.build(
        exclude_formulas=settings.exclude_formulas, exclude_ids=settings.exclude_ids
    )
    kept = [e for e in entries if exclusion.accepts(e)]
    excluded = [e for e in entries if not exclusion.accepts(e)]
    return kept, excluded


def _is_many(sources: object) -> bool:
    return isinstance(sources, list | tuple)


def _request(
    system: str,
    sources: SourceLike | Sequence[SourceLike],
    base: str | Path | None,
    settings: AdaptSettings,
) -> dict[str, Any]:
    names = [str(s) for s in sources] if _is_many(sources) else [str(sources)]
    # settings that change how the run executes but not what it learns are left out,
    # so a resumed campaign on another device reuses the result
    learned = settings.model_dump(mode="json", exclude={"device", "threads"})
    return {"system": system, "sources": names, "base": _name(base), "settings": learned}


def _name(base: str | Path | None) -> str | None:
    return None if base is None else str(base)


def _base_name(base: str | Path | None) -> str:
    """The base model as a checkpoint setting names it (``shipped``: the general model)."""
    return "shipped" if base is None else str(base)


def _mean(losses: dict[str, float]) -> float:
    return sum(losses.values()) / len(losses) if losses else math.nan


def adapt_model(
    system: str,
    sources: SourceLike | Sequence[SourceLike],
    output_dir: str | Path,
    base: str | Path | None = None,
    settings: AdaptSettings | None = None,
    progress: bool | None = None,
) -> AdaptResult:
    """Fine-tune ``base`` on the structures of ``sources`` related to ``system``.

    Parameters
    ----------
    system
        The chemical system, e.g. ``"Li-P-S"``.
    sources
        One or several structure sources (a CSV table, a folder of CIFs, a JSON file,
        ``materials_project``; see :func:`~chggen_flows.core.sources.open_source`).
    output_dir
        The run folder (see the module docstring).
    base
        The model to start from: a checkpoint path, ``shipped:SYSTEM``, or None (the
        shipped general model).
    settings
        Budget, exclusions and optimisation.
    progress
        Progress bar (None: on a terminal only).

    Returns
    -------
    AdaptResult
        ``checkpoint`` names the model to generate with, fine-tuned or the base.

    Raises
    ------
    ConfigError
        ``output_dir`` holds an adaptation made for another request.
    """
    settings = settings or AdaptSettings()
    parse_chemical_systems(system)  # a clear error for a bad system
    system = system.strip()
    out = Path(output_dir)
    request = _request(system, sources, base, settings)
    stored = _stored_result(out, request)
    if stored is not None:
        logger.info("adaptation to %s already done in %s: %s", system, out, stored.status)
        return stored
    started = time.perf_counter()
    base_path = resolve_checkpoint(base)
    base_model = load_score_model(base_path, device="cpu")
    kept, excluded = related_structures(system, sources, settings)
    known = set(base_model.elements)
    unknown = [e for e in kept if not e.elements <= known]
    kept = [e for e in kept if e.elements <= known]
    # a base file that does not record its noise range was trained on the defaults
    fields = TrainConfig.model_fields
    low, high = base_model.noise_range or (fields["sigma_min"].default, fields["sigma_max"].default)
    common = {
        "system": system,
        "base_checkpoint": _name(base),
        "n_related": len(kept),
        "n_excluded": len(excluded),
        "n_unknown_elements": len(unknown),
        "excluded_ids": sorted(e.material_id for e in excluded),
        "sigma_min": low,
        "sigma_max": high,
        "request": request,
    }
    logger.info(
        "%s: %d related structures (%d excluded, %d with elements the base model lacks)",
        system, len(kept), len(excluded), len(unknown),
    )  # fmt: skip
    if len(kept) < settings.min_related:
        return _write(
            out,
            AdaptResult(
                status="fallback",
                checkpoint=_base_name(base),
                message=f"only {len(kept)} known structure(s) related to {system} in the "
                f"source (fewer than {settings.min_related}): the base model is used",
                wall_s=round(time.perf_counter() - started, 1),
                **common,
            ),
        )
    dataset = CrystalDataset.from_structures((e.material_id, e.structure) for e in kept)
    out.mkdir(parents=True, exist_ok=True)
    dataset.save(out / RELATED)
    # the split train() makes from the same settings (the salt is training's default)
    train_idx, val_idx = split_by_id(dataset, settings.val_fraction, min_val=settings.min_val)
    if settings.steps_per_epoch is None:
        repeat = 1
        steps_per_epoch = math.ceil(len(train_idx) / settings.batch_size)
        epochs = max(1, math.ceil(settings.max_steps / steps_per_epoch))
    else:
        per_epoch = min(settings.steps_per_epoch, settings.max_steps)
        repeat = max(1, round(per_epoch * settings.batch_size / len(train_idx)))
        steps_per_epoch = math.ceil(len(train_idx) * repeat / settings.batch_size)
        epochs = max(1, settings.max_steps // steps_per_epoch)
    config = TrainConfig(
        data=[out / RELATED],
        output_dir=out / RUN,
        init_from=base_path,
        max_atoms=None,
        val_fraction=settings.val_fraction,
        min_val_structures=settings.min_val,
        epoch_repeat=repeat,
        max_val_structures=max(len(val_idx), 1),
        epochs=epochs,
        batch_size=settings.batch_size,
        lr=settings.lr,
        weight_decay=settings.weight_decay,
        warmup_steps=(
            min(50, settings.max_steps // 10)
            if settings.warmup_steps is None
            else settings.warmup_steps
        ),
        ema_decay=settings.ema_decay,
        stop_patience=settings.patience,
        sigma_min=low,
        sigma_max=high,
        seed=settings.seed,
        device=settings.device,
        threads=settings.threads,
        checkpoint_every_steps=settings.checkpoint_every_steps,
    )
    device = resolve_device(settings.device)
    val_set = dataset.subset(val_idx)
    base_losses = validation_loss(
        base_model.to(device), val_set, low, high, settings.batch_size, device
    )
    base_val = _mean(base_losses)
    resume = (out / RUN / LAST).exists()
    (out / REQUEST).write_text(json.dumps(request))
    # training sets torch's process-wide thread count; a campaign worker runs other jobs
    # in the same process afterwards, so leave it as it was found
    threads = torch.get_num_threads()
    try:
        run = train(
            config,
            resume=resume,
            time_limit_s=settings.max_minutes * 60 if settings.max_minutes else None,
            progress=progress,
            dataset=dataset,
        )
    finally:
        torch.set_num_threads(threads)
    losses = [h["val_loss"] for h in run.history if math.isfinite(h["val_loss"])]
    best = min(losses) if losses else math.nan
    last = run.history[-1] if run.history else {}
    done = {
        **common,
        "n_train": len(train_idx),
        "n_val": len(val_idx),
        "base_val_loss": base_val,
        "best_val_loss": best if math.isfinite(best) else None,
        "steps": int(last.get("global_step", 0)),
        "epochs": int(last.get("epoch", 0)),
        "wall_s": round(time.perf_counter() - started, 1),
        "early_stopped": run.early_stopped,
    }
    if run.best_model is not None and math.isfinite(best) and best < base_val:
        result = AdaptResult(
            status="adapted",
            checkpoint=str(run.best_model),
            message=f"fine-tuned on {len(train_idx)} structures related to {system}: held-out "
            f"loss {base_val:.4f} -> {best:.4f}",
            **done,
        )
    else:
        result = AdaptResult(
            status="fallback",
            checkpoint=_base_name(base),
            message=f"the fine-tune did not lower the held-out loss of the {len(val_idx)} "
            f"held-out structures (base {base_val:.4f}, best {best:.4f}): the base model is used",
            **done,
        )
    if not run.finished:
        # out of time before the budget's last epoch: usable, and said
        result.message += " (stopped at the time budget)"
    return _write(out, result)


def _stored_result(out: Path, request: dict[str, Any]) -> AdaptResult | None:
    """The result of an earlier call with the same request; an error for another one."""
    path = out / RESULT
    if not path.exists():
        if (out / RUN / LAST).exists():
            _check_same_run(out, request)
        return None
    stored = AdaptResult.model_validate_json(path.read_text())
    if stored.request != request:
        raise ConfigError(
            f"{out} holds an adaptation made for another request",
            hint="choose another output folder, or remove it to adapt again",
        )
    return stored


def _check_same_run(out: Path, request: dict[str, Any]) -> None:
    """An interrupted run may be resumed only for the request that started it."""
    marker = out / REQUEST
    if marker.exists() and json.loads(marker.read_text()) != request:
        raise ConfigError(
            f"{out} holds an interrupted adaptation made for another request",
            hint="choose another output folder, or remove it to adapt again",
        )


def _write(out: Path, result: AdaptResult) -> AdaptResult:
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{RESULT}.tmp"
    tmp.write_text(result.model_dump_json(indent=1))
    tmp.replace(out / RESULT)
    logger.info("%s", result.message)
    return result


def read_adapt_result(output_dir: str | Path) -> AdaptResult:
    """The :class:`AdaptResult` stored in an adaptation's output folder."""
    path = Path(output_dir) / RESULT
    try:
        return AdaptResult.model_validate_json(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} holds no adaptation result: {exc}") from exc
