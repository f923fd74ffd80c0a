"""Versioned, safe-to-load checkpoint files for the score model.

A checkpoint is a ``torch.save`` dictionary of plain types and tensors only, read
with ``torch.load(weights_only=True)``, so a file cannot execute code when loaded.
Model files hold the format tag, the format version, the model config (with the
element vocabulary), the weights and training metadata. Format 1 (before the cutoff
envelope moved onto the radial MLP's output) still loads, with its own architecture.
Training checkpoints add the optimiser, scheduler, EMA and random-number-generator
states needed to resume.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError

from chggen_flows.core.device import resolve_device
from chggen_flows.core.model.config import ScoreModelConfig
from chggen_flows.core.model.network import ScoreModel
from chggen_flows.errors import CheckpointError

FORMAT = "chggen-score-model"
FORMAT_VERSION = 2
# what a format-1 file's architecture implied without saying it: the cutoff envelope
# multiplied only the radial basis (format 2 records ``radial_envelope``)
_FORMAT_1_DEFAULTS = {"radial_envelope": "basis"}
SHIPPED_NAME = "score_model.pt"


#: Shipped fine-tunes for one chemical system (``chggen train --focus-only``, see
#: docs/model_card.md), named ``shipped:SYSTEM`` where a checkpoint path is expected.
SHIPPED_SYSTEM_MODELS = {"Zn-P-S": "zn-p-s.pt"}
SHIPPED_PREFIX = "shipped:"


def default_checkpoint_path() -> Path:
    """Path of the pretrained checkpoint shipped in the package."""
    return _shipped_file(SHIPPED_NAME)


def _shipped_file(name: str) -> Path:
    return Path(str(resources.files("chggen_flows") / "data" / "score_model" / name))


def resolve_checkpoint(path: str | Path | None) -> Path:
    """The file a checkpoint setting names: a path, ``shipped:SYSTEM`` (a shipped
    fine-tune, e.g. ``shipped:Zn-P-S``), ``shipped`` or None (the general model)."""
    if path is None or str(path) in ("shipped", SHIPPED_PREFIX):
        return default_checkpoint_path()
    text = str(path)
    if not text.startswith(SHIPPED_PREFIX):
        return Path(text).expanduser()
    system = text[len(SHIPPED_PREFIX) :]
    by_key = {"-".join(sorted(k.split("-"))): v for k, v in SHIPPED_SYSTEM_MODELS.items()}
    name = by_key.get("-".join(sorted(system.replace(",", "-").split("-"))))
    if name is None:
        raise CheckpointError(
            f"no shipped score model for {system!r}",
            hint="shipped fine-tunes: "
            + ", ".join(SHIPPED_PREFIX + k for k in SHIPPED_SYSTEM_MODELS)
            + "; or fine-tune one with `chggen train --focus SYSTEM --focus-only`",
        )
    return _shipped_file(name)


def atomic_save(payload: dict[str, Any], path: str | Path) -> Path:
    """``torch.save`` to a temporary file in the target folder, then rename into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def model_payload(
    model: ScoreModel,
    state_dict: dict[str, torch.Tensor] | None = None,
    training: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The dictionary stored in a model file (``state_dict`` defaults to the model's)."""
    weights = state_dict if state_dict is not None else model.state_dict()
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": model.config.model_dump(mode="json"),
        "state_dict": {k: v.detach().cpu() for k, v in weights.items()},
        "training": training or {},
    }


def save_score_model(
    model: ScoreModel, path: str | Path, training: dict[str, Any] | None = None
) -> Path:
    """Write a model file (weights, config, element vocabulary, training metadata)."""
    return atomic_save(model_payload(model, training=training), path)


def read_checkpoint(path: str | Path, kind: str = "score model") -> dict[str, Any]:
    """Load and validate the dictionary of a chggen checkpoint file.

    Raises
    ------
    CheckpointError
        The file is missing, truncated, not a chggen checkpoint, or of a newer format.
    """
    path = Path(path)
    hint = "point to a file written by `chggen train` or use the shipped model (no path)"
    if not path.is_file():
        raise CheckpointError(f"{kind} checkpoint {path} does not exist", hint=hint)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile) as exc:
        raise CheckpointError(
            f"{path} is not a readable torch checkpoint (truncated, corrupt or foreign): "
            f"{str(exc).splitlines()[0]}",
            hint=hint,
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a chggen score-model checkpoint", hint=hint)
    version = payload.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {version!r}; this chggen-flows reads "
            f"versions up to {FORMAT_VERSION}",
            hint="upgrade chggen-flows",
        )
    return payload


def model_from_payload(payload: dict[str, Any], source: str | Path) -> ScoreModel:
    """Build a ScoreModel from a validated checkpoint dictionary."""
    try:
        config_dict = dict(payload["config"])
        if payload.get("format_version", 1) < 2:
            config_dict = {**_FORMAT_1_DEFAULTS, **config_dict}
        config = ScoreModelConfig(**config_dict)
        model = ScoreModel(config)
        model.load_state_dict(payload["state_dict"])
        model.training_metadata = dict(payload.get("training") or {})
    except (KeyError, TypeError, ValidationError, RuntimeError) as exc:
        raise CheckpointError(
            f"{source} does not match the score-model architecture: {str(exc).splitlines()[0]}",
            hint="the file may come from an incompatible chggen-flows version",
        ) from exc
    return model


def load_score_model(
    path: str | Path | None = None,
    device: str | torch.device | None = "auto",
    dtype: torch.dtype = torch.float32,
) -> ScoreModel:
    """Load a score model in eval mode.

    Parameters
    ----------
    path
        A model file or a training checkpoint written by ``chggen train``; None loads
        the pretrained model shipped with the package, ``shipped:SYSTEM`` a shipped
        fine-tune (:data:`SHIPPED_SYSTEM_MODELS`).
    device
        ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    dtype
        Parameter dtype; inputs are cast to it.

    Raises
    ------
    CheckpointError
        Missing, truncated, corrupt or foreign file.
    """
    source = resolve_checkpoint(path)
    payload = read_checkpoint(source)
    model = model_from_payload(payload, source)
    return model.to(device=resolve_device(device), dtype=dtype).eval()
