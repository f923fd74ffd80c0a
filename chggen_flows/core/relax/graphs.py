"""CHGNet crystal graphs for the relaxer, built in-process or in a pool of processes.

Building a CHGNet graph (pymatgen neighbour list, then CHGNet's C graph code) costs
1.7 ms of CPU at 12 atoms and 4.4 ms at 30 atoms, one structure at a time; at a CUDA
batch of 8,192 atoms that is about 1.2 s of CPU per FIRE step against an estimated
<= 0.1 s of GPU work. :class:`GraphBuilder` spreads the building over worker processes
(each with one torch thread and its own ``CrystalGraphConverter`` with the model's
settings), so the GPU does not wait on one core.

What crosses the process boundary is plain arrays both ways: a :data:`Frame` (lattice
matrix, atomic numbers, Cartesian positions) in, the graph's tensors as numpy arrays
out. Pickling a ``Structure`` costs more than building one, and torch tensors would be
sent through shared-memory file descriptors (torch's reducers), slower for many small
tensors than copying the bytes. The graphs are the same, tensor for tensor, as those the
model's own converter builds in-process: both paths build the same ``Structure`` from
the same frame and run the same converter code (``tests/core/relax/test_graphs.py``).
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import weakref
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from pymatgen.core import Lattice, Structure

from chggen_flows.errors import ResourceError

# (lattice matrix (3, 3) Å with vectors as rows, atomic numbers (n,), Cartesian
# positions (n, 3) Å): one structure as the relaxer holds it between steps.
Frame = tuple[np.ndarray, np.ndarray, np.ndarray]
# Graphs per task sent to a worker, per worker and call: a few chunks each balance
# uneven structure sizes without paying a round trip per structure.
CHUNKS_PER_WORKER = 3

GRAPH_TENSORS = (
    "atomic_number",
    "atom_frac_coord",
    "atom_graph",
    "neighbor_image",
    "directed2undirected",
    "undirected2directed",
    "bond_graph",
    "lattice",
)
# Leaf tensors CHGNet differentiates energies by (forces, stress).
_GRAD_TENSORS = ("atom_frac_coord", "lattice")


def default_graph_workers(device: torch.device, cpu_count: int | None = None) -> int:
    """Graph worker processes for ``RelaxSettings(graph_workers=None)``.

    On the CPU none: CHGNet's own forward and backward already use the cores, so
    workers would only compete with it. On CUDA the cores are idle while the GPU
    computes: all usable cores but one (the one driving the GPU), at most 8. Eight
    bring a call's graphs (about 1.2 s of one core at 8,192 atoms) to about 0.15 s, near
    the GPU's estimated time for the call, which the pipeline overlaps; more would
    mainly add start-up time and memory (each worker imports torch, pymatgen and
    chgnet: 3 s to start and 355 MB resident, measured on the CPU). None in a daemonic
    process either (a multiprocessing pool's worker), which may not start children.
    """
    if device.type != "cuda" or multiprocessing.current_process().daemon:
        return 0
    if cpu_count is None:
        cpu_count = (
            len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        )
    return max(0, min((cpu_count or 1) - 1, 8))


@dataclass(frozen=True)
class ConverterSettings:
    """What a worker needs to build the same ``CrystalGraphConverter`` as the model's."""

    atom_graph_cutoff: float
    bond_graph_cutoff: float
    algorithm: str

    @classmethod
    def of(cls, converter: Any) -> ConverterSettings:
        """The settings of a CHGNet model's ``graph_converter``."""
        return cls(
            float(converter.atom_graph_cutoff),
            float(converter.bond_graph_cutoff),
            str(converter.algorithm),
        )

    def converter(self) -> Any:
        """A converter with these settings; isolated atoms are ignored as in the relaxer."""
        from chgnet.graph import CrystalGraphConverter

        return CrystalGraphConverter(
            atom_graph_cutoff=self.atom_graph_cutoff,
            bond_graph_cutoff=self.bond_graph_cutoff,
            algorithm=self.algorithm,  # type: ignore[arg-type]
            on_isolated_atoms="ignore",
        )


def frame_of(structure: Structure) -> Frame:
    """The :data:`Frame` of a pymatgen structure."""
    return (
        structure.lattice.matrix,
        np.array([site.specie.Z for site in structure], dtype=np.int64),
        structure.cart_coords,
    )


def structure_of(frame: Frame) -> Structure:
    """The pymatgen structure the converter reads (the same call on both paths)."""
    cell, numbers, positions = frame
    return Structure(Lattice(cell), numbers.tolist(), positions, coords_are_cartesian=True)


def graph_arrays(graph: Any) -> dict[str, Any]:
    """A CrystalGraph as numpy arrays and scalars (cheap to pickle)."""
    values: dict[str, Any] = {k: getattr(graph, k).detach().numpy() for k in GRAPH_TENSORS}
    for key in ("atom_graph_cutoff", "bond_graph_cutoff", "composition"):
        values[key] = getattr(graph, key)
    return values


def graph_from_arrays(values: dict[str, Any]) -> Any:
    """The CrystalGraph of :func:`graph_arrays` (no copy of the arrays)."""
    from chgnet.graph import CrystalGraph

    tensors = {k: torch.from_numpy(values[k]) for k in GRAPH_TENSORS}
    for key in _GRAD_TENSORS:
        tensors[key].requires_grad_(True)
    return CrystalGraph(
        **tensors,
        atom_graph_cutoff=values["atom_graph_cutoff"],
        bond_graph_cutoff=values["bond_graph_cutoff"],
        composition=values["composition"],
    )


# -- worker side ------------------------------------------------------------------
_WORKER_CONVERTER: Any = None


def _init_worker(settings: ConverterSettings) -> None:
    global _WORKER_CONVERTER
    # Many workers share the node's cores: one torch thread each (the converter's
    # tensor work is tiny; OpenMP pools would only contend).
    torch.set_num_threads(1)
    _WORKER_CONVERTER = settings.converter()


def _build_chunk(frames: list[Frame]) -> list[dict[str, Any]]:
    return [graph_arrays(_WORKER_CONVERTER(structure_of(f))) for f in frames]


# -- parent side ------------------------------------------------------------------
def _worker_died(exc: BrokenProcessPool) -> ResourceError:
    return ResourceError(
        f"a CHGNet graph worker process died ({exc})",
        hint="a script that starts workers needs the 'if __name__ == \"__main__\":' guard; "
        "a worker killed for memory: use fewer graph_workers (0 builds the graphs "
        "in-process)",
    )


class PendingGraphs:
    """Graphs being built; :meth:`result` waits for them, in input order."""

    def __init__(
        self,
        futures: list[Future] | None = None,
        graphs: list[Any] | None = None,
        builder: GraphBuilder | None = None,
    ) -> None:
        self._futures = futures
        self._graphs = graphs
        self._builder = builder

    def result(self) -> list[Any]:
        """The graphs; a worker's exception is raised here, as it would be in-process.

        Raises
        ------
        ResourceError
            When a worker process died (killed, or it could not start); the pool is
            then closed, and the next build starts a new one.
        """
        if self._graphs is None:
            try:
                chunks = [f.result() for f in self._futures or []]
            except BrokenProcessPool as exc:
                if self._builder is not None:
                    self._builder.close()
                raise _worker_died(exc) from exc
            self._graphs = [graph_from_arrays(v) for chunk in chunks for v in chunk]
            self._futures = self._builder = None
        return self._graphs


class GraphBuilder:
    """Build CHGNet crystal graphs in-process (``workers=0``) or in worker processes.

    Parameters
    ----------
    converter
        The model's ``graph_converter``; used as is in-process, and its settings
        (:class:`ConverterSettings`) are given to every worker.
    workers
        Worker processes; 0 builds in the calling process. The pool starts on first
        use (``spawn``: a forked child of a process with torch's thread pools can
        deadlock) and is reused until :meth:`close`, the end of a ``with`` block, or
        interpreter exit.

    Examples
    --------
    >>> with GraphBuilder(model.graph_converter, workers=4) as builder:
    ...     graphs = builder.build(structures)  # same order as the input
    """

    def __init__(self, converter: Any, workers: int = 0) -> None:
        if workers < 0:
            raise ValueError(f"workers must be >= 0, got {workers}")
        self.converter = converter
        self.settings = ConverterSettings.of(converter)
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._finalizer: weakref.finalize | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(self.settings,),
            )
            # Shut the workers down when the builder is collected or Python exits.
            self._finalizer = weakref.finalize(self, self._pool.shutdown, cancel_futures=True)
        return self._pool

    def submit(self, frames: Sequence[Frame]) -> PendingGraphs:
        """Start building the graphs of ``frames``; in-process builds them right away."""
        if self.workers == 0 or not frames:
            return PendingGraphs(graphs=[self.converter(structure_of(f)) for f in frames])
        pool = self._executor()
        n_chunks = min(len(frames), self.workers * CHUNKS_PER_WORKER)
        bounds = np.linspace(0, len(frames), n_chunks + 1).round().astype(int)
        try:
            futures = [
                pool.submit(_build_chunk, list(frames[a:b]))
                for a, b in itertools.pairwise(bounds)
                if b > a
            ]
        except BrokenProcessPool as exc:  # a worker died since the last build
            self.close()
            raise _worker_died(exc) from exc
        return PendingGraphs(futures=futures, builder=self)

    def build_frames(self, frames: Sequence[Frame]) -> list[Any]:
        """The graphs of ``frames``, in order."""
        return self.submit(frames).result()

    def build(self, structures: Sequence[Structure]) -> list[Any]:
        """The graphs of ``structures``, in order (as ``model.graph_converter`` builds them)."""
        return self.build_frames([frame_of(s) for s in structures])

    def close(self) -> None:
        """Stop the worker processes (a later build starts new ones)."""
        if self._finalizer is not None:
            self._finalizer()
        self._pool = self._finalizer = None

    def __enter__(self) -> GraphBuilder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
