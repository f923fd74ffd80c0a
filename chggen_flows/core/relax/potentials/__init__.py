"""Interatomic potentials behind the batched relaxer: one protocol, one registry.

The relaxer (:class:`chggen_flows.core.relax.engine.BatchRelaxer`) owns FIRE, the cell
filter, the symmetry constraints and the call sizing; a potential only turns structures
into energies, forces and stresses, many per call. Adding one is writing one module
with a ``load(device, model_path, **options)`` function that returns a
:class:`Potential`, and one :class:`PotentialInfo` line in :data:`POTENTIALS`.

This module imports neither torch nor a backend package: settings and specs validate
potential names (:func:`check_potential`) without paying for them.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from chggen_flows.core.functionals import GGA, R2SCAN
from chggen_flows.errors import ConfigError, InputError

if TYPE_CHECKING:
    import torch

    from chggen_flows.core.relax.graphs import Frame, PendingGraphs

DEFAULT_POTENTIAL = "chgnet"


class GraphSource(Protocol):
    """Builds a potential's model inputs from frames, possibly in other processes."""

    workers: int

    def submit(self, frames: Sequence[Frame]) -> PendingGraphs:
        """Start building the inputs of ``frames``; ``result()`` returns them in order."""

    def close(self) -> None:
        """Stop any worker processes."""


@runtime_checkable
class Potential(Protocol):
    """A machine-learned interatomic potential, evaluated in batches on one device.

    Attributes
    ----------
    name
        Registry name (``"chgnet"``, ``"chgnet-r2scan"``, ``"sevennet-0"``, ...).
    version
        Package and model version, e.g. ``"chgnet 0.4.2, weights 0.3.0"``.
    weights_checksum
        ``sha256:<hex>`` of the weights file, for provenance.
    functional
        The energy scale it was trained on (``GGA_GGA+U`` or ``r2SCAN``): the hulls it
        can be compared with.
    device
        Where it evaluates.
    model
        The backend's own model object (``chgnet.model.CHGNet``, SevenNet's
        ``AtomGraphSequential``).

    Methods
    -------
    graph_builder(workers)
        A :class:`GraphSource` for the model's inputs (``workers`` processes, or
        in-process).
    evaluate(graphs, task, batch_size)
        One dict per graph: ``"e"`` (eV/atom), ``"f"`` (eV/Å, (n, 3)) and with ``"s"``
        in ``task`` the stress (GPa, (3, 3), ASE's sign: positive is tensile), numpy
        arrays. At most ``batch_size`` structures per model call. A device running out
        of memory raises as the backend does; the relaxer catches it and retries smaller.
    """

    name: str
    version: str
    weights_checksum: str
    functional: str
    device: torch.device
    model: Any

    def graph_builder(self, workers: int) -> GraphSource: ...

    def evaluate(self, graphs: list[Any], task: str, batch_size: int) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class PotentialInfo:
    """A registry line: where a potential's loader lives and what it is.

    Attributes
    ----------
    name
        The name users write (``relax: {potential: NAME}``).
    module
        Module with a ``load(device, model_path=None, **options)`` function.
    functional
        Energy scale of the weights (the hulls it may be compared with).
    package
        The distribution that ships the code and the weights.
    extra
        chggen-flows' optional extra that installs ``package`` (None: a core dependency).
    description
        One line for documentation and error messages.
    options
        Keyword arguments of ``load`` (e.g. which weights of the package).
    mp_corrected
        Whether the energies include the Materials Project 2020 corrections (anion and
        GGA/GGA+U mixing), i.e. sit on the scale of MP's GGA_GGA+U hull. CHGNet was
        trained on corrected MPtrj energies; SevenNet's MPtrj models on uncorrected
        ones (their formation energies of sulfides are ~0.2 eV/atom above MP's,
        benchmarks/bench_potentials.py), so they are compared only with hulls of
        their own.
    """

    name: str
    module: str
    functional: str
    package: str
    extra: str | None
    description: str
    options: dict[str, Any] = field(default_factory=dict)
    mp_corrected: bool = True


_CHGNET = "chggen_flows.core.relax.potentials.chgnet"
_SEVENNET = "chggen_flows.core.relax.potentials.sevennet"

POTENTIALS: dict[str, PotentialInfo] = {
    info.name: info
    for info in (
        PotentialInfo(
            "chgnet",
            _CHGNET,
            GGA,
            "chgnet",
            None,
            "CHGNet 0.3.0 (MPtrj, GGA/GGA+U MP2020), the paper's potential",
            {"model_name": "0.3.0"},
        ),
        PotentialInfo(
            "chgnet-r2scan",
            _CHGNET,
            R2SCAN,
            "chgnet",
            None,
            "CHGNet transfer-learned on MP r2SCAN (shipped in the chgnet wheel)",
            {"model_name": "r2scan"},
        ),
        PotentialInfo(
            "sevennet-0",
            _SEVENNET,
            GGA,
            "sevenn",
            "sevennet",
            "SevenNet-0 (11Jul2024; MPtrj, uncorrected GGA/GGA+U), shipped in the sevenn wheel",
            {"model_name": "7net-0"},
            mp_corrected=False,
        ),
        PotentialInfo(
            "sevennet-l3i5",
            _SEVENNET,
            GGA,
            "sevenn",
            "sevennet",
            "SevenNet-l3i5 (MPtrj, uncorrected GGA/GGA+U, lmax 3; slower, more accurate "
            "than SevenNet-0), shipped in the sevenn wheel",
            {"model_name": "7net-l3i5"},
            mp_corrected=False,
        ),
    )
}


def potential_names() -> tuple[str, ...]:
    """Every registered potential name, the default first."""
    return (DEFAULT_POTENTIAL, *sorted(set(POTENTIALS) - {DEFAULT_POTENTIAL}))


def check_potential(name: str) -> str:
    """``name`` if it is a registered potential, else :class:`InputError` (a ValueError).

    Only the name: whether its package is installed is checked when it is loaded.
    """
    if not isinstance(name, str) or name not in POTENTIALS:
        raise InputError(
            f"unknown potential {name!r}",
            hint=f"choose one of: {', '.join(potential_names())}",
        )
    return name


def potential_info(name: str) -> PotentialInfo:
    """The registry line of ``name`` (InputError for an unknown name)."""
    return POTENTIALS[check_potential(name)]


def functional_of_potential(name: str) -> str:
    """The functional (energy scale) of a registered potential."""
    return potential_info(name).functional


def load_potential(
    name: str = DEFAULT_POTENTIAL,
    device: str | torch.device = "cpu",
    model_path: str | Path | None = None,
) -> Potential:
    """Load a registered potential on ``device``.

    Parameters
    ----------
    name
        A name of :data:`POTENTIALS`.
    device
        A torch device or its name (``"auto"`` resolves as everywhere else).
    model_path
        The backend's own checkpoint file instead of its shipped weights (e.g. a
        fine-tuned CHGNet).

    Raises
    ------
    InputError
        Unknown name.
    ConfigError
        The backend's package is not installed (the hint names the extra).
    CheckpointError
        ``model_path`` missing or unreadable.
    """
    from chggen_flows.core.device import resolve_device

    info = potential_info(name)
    _require_package(info)
    module = importlib.import_module(info.module)
    potential = module.load(resolve_device(device), model_path, name=name, **info.options)
    return potential


def _require_package(info: PotentialInfo) -> None:
    """ConfigError naming the extra when the backend's package is not installed."""
    try:
        importlib.import_module(info.package)
    except ImportError as exc:
        extra = f"pip install 'chggen-flows[{info.extra}]'" if info.extra else "reinstall"
        raise ConfigError(
            f"potential {info.name!r} needs the {info.package!r} package, which is not "
            f"installed ({exc})",
            hint=f"{extra}, or choose another potential ({', '.join(potential_names())})",
        ) from exc


@lru_cache(maxsize=16)
def weights_checksum(name: str) -> str:
    """Checksum of the shipped weights of ``name``, without loading the model.

    Cached offline reference sets are valid for these weights only.
    """
    info = potential_info(name)
    _require_package(info)
    module = importlib.import_module(info.module)
    return file_checksum(module.weights_file(**info.options))


def file_checksum(path: str | Path, chunk: int = 1 << 20) -> str:
    """``sha256:<hex>`` of a file (the weights' checksum recorded with every result)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return f"sha256:{digest.hexdigest()}"


__all__ = [
    "DEFAULT_POTENTIAL",
    "POTENTIALS",
    "GraphSource",
    "Potential",
    "PotentialInfo",
    "check_potential",
    "file_checksum",
    "functional_of_potential",
    "load_potential",
    "potential_info",
    "potential_names",
    "weights_checksum",
]
