"""Per-campaign adaptation of the score model to the campaign's chemical system (GPU job).

The job runs :func:`chggen_flows.core.model.adapt.adapt_model` and returns an
:class:`AdaptDocument`: the result (small, in MongoDB) and, when the model was adapted,
the checkpoint file itself (``checkpoint``, routed to the data store, GridFS in a
campaign, by ``@job(data=["checkpoint"])``). Every generate and inpaint job of the
campaign is given ``adapt_job.output.checkpoint`` and turns it back into a file with
:func:`materialize_checkpoint` (once per worker: the file is named by its sha256).
A fallback (too few related structures, or no lower held-out loss) stores no file:
the consumers then use ``AdaptDocument.base_checkpoint``, as ``checkpoint_setting``
says.
"""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobflow import Maker, job
from pydantic import BaseModel, Field

from chggen_flows.makers.provenance import Provenance, finish_provenance, start_provenance


class CheckpointBlob(BaseModel):
    """A checkpoint file carried in a job's output (base64, so every store keeps it)."""

    name: str = Field(description="File name it was written under, e.g. best_model.pt.")
    sha256: str
    size: int
    content_b64: str

    @classmethod
    def from_file(cls, path: str | Path) -> CheckpointBlob:
        """The file's bytes and digest."""
        raw = Path(path).read_bytes()
        return cls(
            name=Path(path).name,
            sha256=hashlib.sha256(raw).hexdigest(),
            size=len(raw),
            content_b64=base64.b64encode(raw).decode("ascii"),
        )


class AdaptDocument(BaseModel):
    """Output of :class:`AdaptMaker`."""

    campaign: str
    system: str
    status: str = Field(description="adapted or fallback (see AdaptResult.status).")
    message: str
    base_checkpoint: str | None
    checkpoint_sha256: str | None = None
    checkpoint: CheckpointBlob | None = Field(
        None, description="The adapted model's file (data store); None on a fallback."
    )
    result: dict[str, Any] = Field(default_factory=dict, description="The AdaptResult.")
    provenance: Provenance | None = None


def materialize_checkpoint(
    blob: CheckpointBlob | dict[str, Any], cache_dir: str | Path | None = None
) -> Path:
    """The checkpoint of an :class:`AdaptDocument` as a local file (written once).

    Parameters
    ----------
    blob
        ``AdaptDocument.checkpoint`` (a model or its dict, as a resolved reference
        gives it).
    cache_dir
        Where the file goes, named by its sha256 (default: ``$CHGGEN_CACHE`` or
        ``~/.cache/chggen/checkpoints``).

    Raises
    ------
    ValueError
        The content does not match its sha256.
    """
    blob = blob if isinstance(blob, CheckpointBlob) else CheckpointBlob.model_validate(blob)
    root = Path(cache_dir or os.environ.get("CHGGEN_CACHE") or "~/.cache/chggen/checkpoints")
    root = root.expanduser()
    path = root / f"{blob.sha256}.pt"
    if path.is_file():
        return path
    raw = base64.b64decode(blob.content_b64)
    if hashlib.sha256(raw).hexdigest() != blob.sha256:
        raise ValueError(f"checkpoint {blob.name} does not match its sha256 {blob.sha256}")
    root.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".ckpt.", dir=root)
    with os.fdopen(fd, "wb") as handle:
        handle.write(raw)
    os.replace(tmp, path)
    return path


def checkpoint_setting(
    document: AdaptDocument | dict[str, Any], cache_dir: str | Path | None = None
) -> str | None:
    """The checkpoint a generate or inpaint job should load after this adaptation: the
    adapted file (materialised) or, on a fallback, the base model's setting."""
    document = (
        document if isinstance(document, AdaptDocument) else AdaptDocument.model_validate(document)
    )
    if document.checkpoint is None:
        return document.base_checkpoint
    return str(materialize_checkpoint(document.checkpoint, cache_dir))


def adaptation_inputs(
    checkpoint: str | None, adapted: AdaptDocument | dict[str, Any] | None
) -> tuple[str | None, dict[str, Any]]:
    """The checkpoint a generate or inpaint job loads, and what its provenance records.

    Parameters
    ----------
    checkpoint
        The job's own ``checkpoint`` setting (the campaign's base model).
    adapted
        The campaign's adapt job output, or None in a campaign without ``model.adapt``
        (then ``checkpoint`` is used and nothing is added to the provenance, so such
        jobs are exactly as before).

    Returns
    -------
    tuple
        The checkpoint setting to load, and ``{"adaptation": {...}}`` (status, message,
        the adapted checkpoint's sha256) for the provenance's inputs, or ``{}``.
    """
    if adapted is None:
        return checkpoint, {}
    document = (
        adapted if isinstance(adapted, AdaptDocument) else AdaptDocument.model_validate(adapted)
    )
    info = {
        "status": document.status,
        "message": document.message,
        "system": document.system,
        "checkpoint_sha256": document.checkpoint_sha256,
        "base_checkpoint": document.base_checkpoint,
    }
    return checkpoint_setting(document), {"adaptation": info}


def default_workdir(campaign: str, system: str) -> Path:
    """Where a campaign's adaptation runs when its Maker names no folder: under the data
    directory (``CHGGEN_DATA_DIR``), by campaign and system, so a rerun of a failed or
    interrupted adapt job on the same machine resumes from its last checkpoint
    (``adapt_model`` resumes a run it finds there) instead of starting over."""
    from chggen_flows.settings import default_data_dir

    root = os.environ.get("CHGGEN_DATA_DIR") or default_data_dir()
    return Path(root).expanduser() / "adapt" / campaign / system


@dataclass
class AdaptMaker(Maker):
    """Fine-tune the campaign's score model on the known structures of its system.

    Parameters
    ----------
    name
        Job name.
    sources
        Structure sources (CSV tables, CIF folders, JSON files, ``materials_project``;
        see :mod:`chggen_flows.core.sources`).
    base
        The model to adapt (a checkpoint path or ``shipped:SYSTEM``; None: the shipped
        general model).
    settings
        Keyword arguments of :class:`chggen_flows.core.model.adapt.AdaptSettings`
        (budget, exclusions, learning rate...).
    device
        ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
    workdir
        Folder for the run (None: :func:`default_workdir`). A folder that already holds
        this request's result is reused, not retrained; an interrupted run is resumed.
    """

    name: str = "adapt"
    sources: list[str] = field(default_factory=list)
    base: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    device: str = "auto"
    workdir: str | None = None

    @job(data=["checkpoint"], output_schema=AdaptDocument)
    def make(self, campaign: str, system: str) -> AdaptDocument:
        """Adapt ``base`` to ``system``; the adapted checkpoint goes to the data store."""
        from chggen_flows.core.device import resolve_device
        from chggen_flows.core.model.adapt import AdaptSettings, adapt_model

        device = str(resolve_device(self.device))
        settings = AdaptSettings(**{**self.settings, "device": device})
        provenance = start_provenance(
            "adapted",
            {"sources": list(self.sources), "base": self.base, "settings": self.settings},
            seeds=[settings.seed],
            device=device,
        )
        out = Path(self.workdir) if self.workdir else default_workdir(campaign, system)
        result = adapt_model(system, list(self.sources), out, base=self.base, settings=settings)
        blob = CheckpointBlob.from_file(result.checkpoint) if result.adapted else None
        return AdaptDocument(
            campaign=campaign,
            system=result.system,
            status=result.status,
            message=result.message,
            base_checkpoint=self.base,
            checkpoint_sha256=blob.sha256 if blob else None,
            checkpoint=blob,
            result=result.model_dump(mode="json"),
            provenance=finish_provenance(provenance),
        )
