"""What every stage job records so that any candidate can be reproduced.

A job's :class:`Provenance` holds its settings (inputs), its random seeds, the sha256 of
the model checkpoint it used, the chggen-flows version and the versions of the libraries
that decide the numbers (torch, chgnet, pymatgen, spglib), the device and the host.
"""

from __future__ import annotations

import hashlib
import platform
import socket
from datetime import UTC, datetime
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

#: Libraries whose version changes a candidate's numbers.
_TRACKED_PACKAGES = ("chggen-flows", "torch", "chgnet", "sevenn", "pymatgen", "spglib", "e3nn")


class Provenance(BaseModel):
    """Inputs and environment of one job run."""

    stage: str
    inputs: dict[str, Any] = Field(default_factory=dict)
    seeds: list[int] = Field(default_factory=list)
    checkpoint: str | None = None
    checkpoint_sha256: str | None = None
    versions: dict[str, str] = Field(default_factory=dict)
    device: str = "cpu"
    hostname: str = ""
    python: str = ""
    started: datetime | None = None
    finished: datetime | None = None
    wall_time_s: float | None = None


def derived_seed(base: int, key: str) -> int:
    """A 31-bit seed from a base seed and a stable key (e.g. a candidate id): a candidate's
    random numbers then depend only on the spec and its id, never on batching or order."""
    digest = hashlib.sha256(f"{base}/{key}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


@lru_cache(maxsize=16)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: str | Path) -> str:
    """sha256 of a file, cached per (path, size, mtime) since checkpoints are re-used by
    every job of a worker process."""
    p = Path(path).resolve()
    stat = p.stat()
    return _sha256_cached(str(p), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    """Installed versions of the packages that decide a candidate's numbers."""
    versions: dict[str, str] = {}
    for name in _TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def start_provenance(
    stage: str,
    inputs: dict[str, Any],
    seeds: list[int] | None = None,
    checkpoint: str | Path | None = None,
    device: str = "cpu",
) -> Provenance:
    """Provenance of a job that starts now; call :func:`finish_provenance` at its end."""
    return Provenance(
        stage=stage,
        inputs=inputs,
        seeds=list(seeds or []),
        checkpoint=str(checkpoint) if checkpoint else None,
        checkpoint_sha256=file_sha256(checkpoint) if checkpoint else None,
        versions=package_versions(),
        device=str(device),
        hostname=socket.gethostname(),
        python=platform.python_version(),
        started=datetime.now(UTC),
    )


def finish_provenance(provenance: Provenance) -> Provenance:
    """A copy with the finish time and wall time filled in."""
    finished = datetime.now(UTC)
    wall = (finished - provenance.started).total_seconds() if provenance.started else None
    return provenance.model_copy(update={"finished": finished, "wall_time_s": wall})
