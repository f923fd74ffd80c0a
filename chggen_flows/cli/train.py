"""``chggen train``: train (or resume training of) the score model."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import typer

from chggen_flows.cli.common import console
from chggen_flows.errors import ConfigError

# what may change when a run is resumed; everything else must stay as it was saved
RESUMABLE_OVERRIDES = {
    "epochs",
    "device",
    "threads",
    "checkpoint_every_steps",
    "decay_from_epoch",
    "min_lr",
}


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read training config {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of TrainConfig fields")
    return data


def _build_config(yaml_path: Path | None, flags: dict[str, Any], resume: bool, output: Path):
    from pydantic import ValidationError

    from chggen_flows.core.model.training import TrainConfig, read_train_config

    settings = _read_yaml(yaml_path) if yaml_path else {}
    settings.update({k: v for k, v in flags.items() if v is not None})
    try:
        if not resume:
            return TrainConfig(**settings)
        saved = read_train_config(settings.get("output_dir", output))
        changed = {
            k for k, v in settings.items() if k != "output_dir" and getattr(saved, k, None) != v
        }
        if changed - RESUMABLE_OVERRIDES:
            raise ConfigError(
                f"cannot change {', '.join(sorted(changed - RESUMABLE_OVERRIDES))} of a run "
                "being resumed",
                hint=f"only {', '.join(sorted(RESUMABLE_OVERRIDES))} may change on --resume",
            )
        return saved.model_copy(update={k: settings[k] for k in changed})
    except ValidationError as exc:
        raise ConfigError(f"invalid training config: {exc}") from exc


def train_command(
    data: list[Path] = typer.Option(
        None,
        "--data",
        "-d",
        help="Structure table (CSV with material_id,cif), file or folder; repeatable.",
    ),
    output: Path = typer.Option(
        Path("runs/score_model"),
        "--output",
        "-o",
        help="Run folder (last.pt, best_model.pt, history.json).",
    ),
    yaml_path: Path | None = typer.Option(
        None, "--yaml", help="YAML file of TrainConfig fields; flags given here win."
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Continue the run in --output exactly where it stopped."
    ),
    preset: str | None = typer.Option(
        None, "--preset", help="Architecture: cpu (default), paper or tiny."
    ),
    epochs: int | None = typer.Option(None, "--epochs", help="Total epochs of the run."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Structures per step."),
    lr: float | None = typer.Option(None, "--lr", help="Peak AdamW learning rate."),
    max_atoms: int | None = typer.Option(None, "--max-atoms", help="Skip larger cells."),
    val_fraction: float | None = typer.Option(None, "--val-fraction", help="Validation share."),
    seed: int | None = typer.Option(None, "--seed", help="Random seed."),
    device: str | None = typer.Option(
        None, "--device", help="cpu, cuda, cuda:N or auto (torchrun: cuda is cuda:LOCAL_RANK)."
    ),
    threads: int | None = typer.Option(None, "--threads", help="CPU threads for torch."),
    time_limit: float | None = typer.Option(
        None, "--time-limit", help="Minutes; save a checkpoint and stop after this long."
    ),
    init_from: Path | None = typer.Option(
        None,
        "--init-from",
        help="Fine-tune: start from this model file's weights (e.g. the shipped model).",
    ),
    focus: list[str] = typer.Option(
        None,
        "--focus",
        help="Chemical system (Zn-P-S) whose related structures are oversampled; repeatable.",
    ),
    focus_repeat: int | None = typer.Option(
        None, "--focus-repeat", help="Times a focus-related structure is shown per epoch (4)."
    ),
    focus_only: bool | None = typer.Option(
        None,
        "--focus-only/--no-focus-only",
        help="Fine-tune on the --focus structures only; best model by their validation loss.",
    ),
    decay_from_epoch: int | None = typer.Option(
        None,
        "--decay-from-epoch",
        help="Cosine-anneal the learning rate from this epoch to --epochs (may be set on --resume).",
    ),
    min_lr: float | None = typer.Option(None, "--min-lr", help="Floor of the learning rate."),
    holdout: list[str] = typer.Option(
        None,
        "--holdout",
        help="Chemical system (Zn-P-S) whose structures are left out of training; repeatable.",
    ),
    save_dataset: Path | None = typer.Option(
        None,
        "--save-dataset",
        help="Parse --data into one tensor file (NAME.dataset.pt) and stop, e.g. for a GPU node.",
    ),
    adapt: str | None = typer.Option(
        None,
        "--adapt",
        help="Adapt --init-from (default: the shipped model) to this chemical system (Li-P-S) "
        "on the related structures of --source; writes OUTPUT/adaptation.json.",
    ),
    source: list[str] = typer.Option(
        None,
        "--source",
        help="With --adapt: structure source (CSV table, CIF folder, JSON, materials_project); "
        "repeatable.",
    ),
    adapt_steps: int | None = typer.Option(
        None, "--adapt-steps", help="With --adapt: budget in optimiser steps (1500)."
    ),
    adapt_steps_per_epoch: int | None = typer.Option(
        None,
        "--adapt-steps-per-epoch",
        help="With --adapt: steps between two held-out evaluations (100; the related set "
        "is repeated to fill them).",
    ),
    exclude_formula: list[str] = typer.Option(
        None,
        "--exclude-formula",
        help="With --adapt: leave this formula's structures out (any Z); repeatable.",
    ),
    exclude_id: list[str] = typer.Option(
        None, "--exclude-id", help="With --adapt: leave this material id out; repeatable."
    ),
    min_related: int | None = typer.Option(
        None,
        "--min-related",
        help="With --adapt: fewer related structures and the base model is used (20).",
    ),
) -> None:
    """Train the score model by denoising score matching (resumable; see docs/model.md).

    Under torchrun each process is one data-parallel rank (see docs/model.md). With
    --adapt, fine-tune a model on one chemical system's known structures instead.
    """
    from chggen_flows.core.model.distributed import Ranks
    from chggen_flows.core.model.training import train

    if adapt is not None:
        used = {
            "--data": data, "--yaml": yaml_path, "--resume": resume, "--preset": preset,
            "--epochs": epochs, "--val-fraction": val_fraction, "--focus": focus,
            "--focus-repeat": focus_repeat, "--focus-only": focus_only, "--holdout": holdout,
            "--decay-from-epoch": decay_from_epoch, "--min-lr": min_lr,
            "--save-dataset": save_dataset,
        }  # fmt: skip
        given = [name for name, value in used.items() if value]
        if given:
            raise ConfigError(
                f"{', '.join(given)} cannot be used with --adapt",
                hint="--adapt reads --source; an interrupted adaptation resumes by itself",
            )
        settings = {
            "max_steps": adapt_steps, "steps_per_epoch": adapt_steps_per_epoch,
            "max_minutes": time_limit, "lr": lr,
            "batch_size": batch_size, "max_atoms": max_atoms, "seed": seed, "device": device,
            "threads": threads, "min_related": min_related,
            "exclude_formulas": exclude_formula or None, "exclude_ids": exclude_id or None,
        }  # fmt: skip
        out = output if output != Path("runs/score_model") else Path("runs/adapt") / adapt
        _adapt(adapt, source or [], out, init_from, settings)
        return
    if (
        source
        or adapt_steps
        or adapt_steps_per_epoch
        or exclude_formula
        or exclude_id
        or min_related
    ):
        raise ConfigError(
            "--source, --adapt-steps, --adapt-steps-per-epoch, --exclude-formula, "
            "--exclude-id and --min-related need --adapt SYSTEM"
        )

    main_rank = Ranks.from_environment().is_main

    flags = {
        "data": data or None,
        "output_dir": output,
        "preset": preset,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "decay_from_epoch": decay_from_epoch,
        "min_lr": min_lr,
        "max_atoms": max_atoms,
        "val_fraction": val_fraction,
        "seed": seed,
        "device": device,
        "threads": threads,
        "init_from": init_from,
        "focus": focus or None,
        "focus_repeat": focus_repeat,
        "focus_only": focus_only,
        "holdout": holdout or None,
    }
    if yaml_path and output == Path("runs/score_model"):
        flags.pop("output_dir")  # let the YAML choose unless --output was given
    config = _build_config(yaml_path, flags, resume, output)
    if not config.data:
        raise ConfigError("no training data given", hint="pass --data PATH (or `data:` in --yaml)")
    if save_dataset is not None:
        from chggen_flows.core.model.data import read_structures

        if not main_rank:
            return  # one writer
        dataset = read_structures(config.data, max_atoms=config.max_atoms, progress=None)
        dataset.save(save_dataset)
        console.print(
            f"Wrote {len(dataset)} structures ({int(dataset.counts.sum())} atoms) to {save_dataset}"
        )
        return
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO if main_rank else logging.WARNING,
            format="%(asctime)s %(message)s",
        )
    result = train(
        config,
        resume=resume,
        time_limit_s=time_limit * 60 if time_limit else None,
        progress=None,
    )
    if not main_rank:
        return
    last = result.history[-1] if result.history else None
    state = "finished" if result.finished else "stopped (continue with --resume)"
    console.print(f"Training {state}: {len(result.history)} epoch(s) in {result.output_dir}")
    if last:
        console.print(f"  last validation loss {last['val_loss']:.4f} at epoch {last['epoch']}")
    if result.best_model:
        console.print(f"  best model: {result.best_model}")


def _adapt(
    system: str, sources: list[str], out: Path, base: Path | None, flags: dict[str, Any]
) -> None:
    """``chggen train --adapt``: the core adaptation, its result printed."""
    from pydantic import ValidationError

    from chggen_flows.core.model.adapt import AdaptSettings, adapt_model

    if not sources:
        raise ConfigError(
            "--adapt needs the known structures to adapt on",
            hint="pass --source PATH (a CSV table, a folder of CIFs, a JSON file) "
            "or --source materials_project",
        )
    try:
        settings = AdaptSettings(**{k: v for k, v in flags.items() if v is not None})
    except ValidationError as exc:
        raise ConfigError(f"invalid adaptation settings: {exc}") from exc
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    result = adapt_model(system, sources, out, base=base, settings=settings, progress=None)
    console.print(f"Adaptation to {result.system}: {result.status}. {result.message}")
    console.print(
        f"  related structures: {result.n_related} used, {result.n_excluded} excluded, "
        f"{result.n_unknown_elements} with elements the base model lacks"
    )
    if result.adapted:
        console.print(
            f"  {result.steps} steps, {result.epochs} epoch(s), {result.wall_s:.0f} s"
            + (", stopped early" if result.early_stopped else "")
        )
    console.print(f"  checkpoint: {result.checkpoint}  (spec: model: {{checkpoint: ...}})")


def register(app: typer.Typer) -> None:
    """Add ``chggen train`` to the root app."""
    app.command("train")(train_command)
