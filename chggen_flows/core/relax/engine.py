"""The batched relaxer: many structures per model call, each with its own FIRE.

CHGNet's own ``StructOptimizer`` (and any ASE calculator) relaxes one structure at a
time, one model call per step. Here the structures of a batch are advanced together:
every step builds their graphs, makes a single call of the potential
(:class:`~chggen_flows.core.relax.potentials.Potential`: CHGNet, CHGNet-r2SCAN,
SevenNet) for energies, forces and stresses, and takes one FIRE step per structure
(:mod:`chggen_flows.core.relax.fire`, which mirrors ASE's FIRE + FrechetCellFilter).
A structure leaves the batch as soon as it converges or runs out of steps, and the
next waiting structure takes its place, so the batch stays full until the queue ends.

The engine is the same for every potential: FIRE, the cell filter, the symmetry
constraints, the call sizing (:mod:`chggen_flows.core.relax.memory`) and the
out-of-memory fallback live here, the potential only evaluates.

The graphs can be built in worker processes (``RelaxSettings.graph_workers``,
:mod:`chggen_flows.core.relax.graphs`); the structures are then relaxed in two groups of
one call each, so one group's graphs are built while the model evaluates the other. On
CUDA the structures per call are sized from a measured probe call and the free GPU
memory, and a call that runs out of memory is retried with half as many structures per
call.
"""

from __future__ import annotations

import itertools
import math
import time
import warnings
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pymatgen.core import Lattice, Structure

from chggen_flows.core.device import configure_threads, resolve_device
from chggen_flows.core.relax.fire import (
    GPA,
    FireState,
    cell_generalised_forces,
    deformation,
    fire_step,
)
from chggen_flows.core.relax.graphs import (
    Frame,
    PendingGraphs,
    default_graph_workers,
    frame_of,
)
from chggen_flows.core.relax.memory import (
    PROBE_ATOMS,
    CudaMemory,
    auto_batch_size,
    cuda_atoms_per_call,
    is_out_of_memory,
)
from chggen_flows.core.relax.metrics import displacement_rmsd, energy_drop
from chggen_flows.core.relax.potentials import Potential, load_potential
from chggen_flows.core.relax.records import RelaxRecord, RelaxSettings
from chggen_flows.core.symmetry.guests import (
    operation_map,
    operations_hold,
    spacegroup_number,
    symmetrize_forces,
    symmetrize_stress,
    symmetry_operations,
)
from chggen_flows.errors import InputError, ResourceError
from chggen_flows.progress import make_progress, progress_enabled

# A kept operation still holds after a constrained relaxation if it maps the structure
# onto itself this closely (Å): FIRE steps are symmetric, only rounding accumulates.
HELD_TOLERANCE = 0.01


def close_contact(structure: Structure, min_distance: float) -> str | None:
    """A reason to reject ``structure`` when two atoms are closer than ``min_distance``."""
    if min_distance <= 0 or len(structure) == 0:
        return None
    centers, neighbors, _, distances = structure.get_neighbor_list(
        r=min_distance, exclude_self=True
    )
    if len(centers) == 0:
        return None
    k = int(np.argmin(distances))
    return (
        f"atoms {centers[k]} and {neighbors[k]} are {distances[k]:.3f} Å apart "
        f"(< min_distance {min_distance} Å)"
    )


def _screen(structure: Structure, min_distance: float) -> str | None:
    if len(structure) == 0:
        return "empty structure"
    if not structure.is_ordered:
        return "disordered structure (partial occupancies): the potential needs ordered sites"
    return close_contact(structure, min_distance)


@dataclass
class _Job:
    """One structure in flight: its degrees of freedom, FIRE state and history."""

    index: int
    initial: Structure
    x: np.ndarray
    numbers: np.ndarray
    fire: FireState = field(default_factory=FireState)
    steps: int = 0
    initial_energy: float = float("nan")
    started: float = field(default_factory=time.perf_counter)
    trajectory: list[dict[str, Any]] | None = None
    # Symmetry-constrained relaxation: the kept group's fractional rotations,
    # translations, atom map (ASE's symm_map) and space-group number.
    symmetry: tuple[np.ndarray, np.ndarray, np.ndarray, int] | None = None

    @property
    def n(self) -> int:
        return len(self.initial)


class BatchRelaxer:
    """Relax many structures with a machine-learned potential, batched, on CPU or CUDA.

    Parameters
    ----------
    settings
        :class:`RelaxSettings`; defaults are the authors' criterion (FIRE with cell
        filter, fmax 0.1 eV/Å, 500 steps).
    model
        An already loaded potential to share between relaxers: a
        :class:`~chggen_flows.core.relax.potentials.Potential`, or a
        ``chgnet.model.CHGNet`` (taken as ``settings.potential``, which must then be a
        CHGNet one, and evaluated by its own ``predict_graph``). By default ``settings.potential`` is loaded (with
        ``settings.model_path`` as its weights when given).
    pipeline
        Relax two groups of structures (each up to one call's worth), one group's
        graphs built by the workers while the model evaluates the other; ``None``: when
        there are graph workers (in-process building cannot overlap the call, so a
        second group would only hold more structures in memory). The trajectories do
        not depend on it beyond float32 rounding of calls with other batch mates.

    Examples
    --------
    >>> with BatchRelaxer(RelaxSettings(fmax=0.1, max_steps=500)) as relaxer:
    ...     records = relaxer.relax(structures)  # same order as the input
    >>> [(r.de, r.rmsd, r.converged) for r in records]
    """

    def __init__(
        self,
        settings: RelaxSettings | None = None,
        model: Any = None,
        pipeline: bool | None = None,
    ) -> None:
        self.settings = settings or RelaxSettings()
        self.device = resolve_device(self.settings.device)
        if self.device.type == "cpu":
            configure_threads(self.settings.threads)
        potential_name = getattr(self.settings, "potential", "chgnet")
        if model is None:
            self.potential: Potential = load_potential(
                potential_name, self.device, self.settings.model_path
            )
        elif isinstance(model, Potential):
            self.potential = model
        else:
            from chggen_flows.core.relax.potentials.chgnet import CHGNetPotential

            if not potential_name.startswith("chgnet"):
                raise InputError(
                    f"a CHGNet model was given but the settings name potential {potential_name!r}",
                    hint="pass a Potential (chggen_flows.core.relax.potentials."
                    "load_potential) or leave the model out",
                )
            # A caller's own CHGNet object is evaluated by CHGNet's own predict_graph,
            # as before the potential seam (callers may wrap or patch it).
            self.potential = CHGNetPotential(model, self.device, potential_name, fused=False)
        # The backend's own model object (CHGNet's, for code that reads its converter).
        self.model = self.potential.model
        workers = self.settings.graph_workers
        if workers is None:
            workers = default_graph_workers(self.device)
        self.graphs = self.potential.graph_builder(workers)
        self.pipeline = self.graphs.workers > 0 if pipeline is None else pipeline
        # Seconds spent building (or waiting for) graphs and in the model's
        # forward/backward, so the optimiser's own overhead can be measured
        # (benchmarks/bench_relax.py).
        self.graph_time = 0.0
        self.forward_time = 0.0
        # CUDA sizing: the memory statistics, the atoms per call measured on the first
        # automatic batch, and the structures per call after an out-of-memory error
        # (halved at each one, kept for the relaxer's life).
        self.memory: CudaMemory | None = (
            CudaMemory(self.device) if self.device.type == "cuda" else None
        )
        self.atoms_per_call: int | None = None
        self.max_per_call: int | None = None
        self.out_of_memory_retries = 0

    def close(self) -> None:
        """Stop the graph worker processes, if any (a later relaxation restarts them)."""
        self.graphs.close()

    def __enter__(self) -> BatchRelaxer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- model calls -------------------------------------------------------------
    def _submit(self, frames: Sequence[Frame]) -> PendingGraphs:
        start = time.perf_counter()
        pending = self.graphs.submit(frames)
        self.graph_time += time.perf_counter() - start
        return pending

    def _graphs_of(self, pending: PendingGraphs) -> list[Any]:
        start = time.perf_counter()
        graphs = pending.result()
        self.graph_time += time.perf_counter() - start
        return graphs

    def _evaluate(self, graphs: list[Any], task: str) -> list[dict[str, Any]]:
        """One evaluation of ``graphs``; on running out of memory, halve and retry."""
        start = time.perf_counter()
        while True:
            size = min(len(graphs), self.max_per_call or len(graphs))
            out, failure = None, None
            try:
                out = self.potential.evaluate(graphs, task, size)
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                # Only the message: the exception's traceback holds the failed call's
                # tensors, which are freed when this block ends.
                failure = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            if failure is None:
                break
            if self.memory is not None:
                self.memory.release()
            if size <= 1:
                raise ResourceError(
                    f"{self.potential.name} ran out of device memory on a single structure "
                    f"({failure})",
                    hint="relax the largest structures on the CPU (device='cpu') or on a GPU "
                    "with more free memory; check no other process holds the GPU",
                )
            self.max_per_call = size // 2
            self.out_of_memory_retries += 1
            warnings.warn(
                f"{self.potential.name} ran out of device memory at {size} structures per call; "
                f"retrying with {self.max_per_call}",
                RuntimeWarning,
                stacklevel=2,
            )
        self.forward_time += time.perf_counter() - start
        return out

    def _predict(self, structures: Sequence[Structure], task: str) -> list[dict[str, Any]]:
        graphs = self._graphs_of(self._submit([frame_of(s) for s in structures]))
        return self._evaluate(graphs, task)

    def predict_energies(
        self, structures: Sequence[Structure], batch_size: int | None = None
    ) -> list[float]:
        """Energies (eV/atom) of ``structures`` without relaxing them.

        Parameters
        ----------
        structures
            Ordered pymatgen structures.
        batch_size
            Structures per call; default from the settings or chosen automatically.
        """
        size = batch_size or self.settings.batch_size
        size = size or auto_batch_size(
            [len(s) for s in structures], self.device, self.atoms_per_call
        )
        energies: list[float] = []
        for start in range(0, len(structures), size):
            chunk = structures[start : start + size]
            energies += [float(p["e"]) for p in self._predict(chunk, task="e")]
        return energies

    def _measure_atoms_per_call(self, structures: Sequence[Structure], task: str) -> int:
        """Atoms per call that fit the free GPU memory, from one probe call.

        The probe evaluates the first structures (about :data:`PROBE_ATOMS` atoms,
        repeated when there are fewer, at least one structure) with the peak
        statistics reset; its peak above the memory allocated before it, per atom,
        scales to :data:`MEMORY_FRACTION` of the free memory
        (:func:`cuda_atoms_per_call`). Repeating keeps a small first run (a warm-up)
        from measuring mostly the per-call overhead.
        """
        assert self.memory is not None
        probe: list[Structure] = []
        atoms = 0
        for structure in itertools.cycle(structures):
            if probe and atoms + len(structure) > PROBE_ATOMS:
                break
            probe.append(structure)
            atoms += len(structure)
        graphs = self._graphs_of(self._submit([frame_of(s) for s in probe]))
        before = self.memory.start()
        self._evaluate(graphs, task)
        peak = self.memory.peak()
        return cuda_atoms_per_call((peak - before) / atoms, self.memory.free())

    # -- relaxation --------------------------------------------------------------
    def _deformations(self, jobs: list[_Job]) -> tuple[np.ndarray, np.ndarray]:
        """Log-deformations ``L = x_cell / n`` and ``F = expm(L)`` of a batch (B, 3, 3)."""
        n = np.array([j.n for j in jobs], dtype=float)
        log_def = np.stack([j.x[j.n :] for j in jobs]) / n[:, None, None]
        return log_def, deformation(log_def)

    def _frames(self, jobs: list[_Job], f: np.ndarray | None) -> list[Frame]:
        """Cells and positions at the jobs' degrees of freedom (``set_positions``)."""
        frames = []
        for k, job in enumerate(jobs):
            cell, positions = job.initial.lattice.matrix, job.x[: job.n]
            if f is not None:
                cell, positions = cell @ f[k].T, positions @ f[k].T
            frames.append((cell, job.numbers, positions))
        return frames

    def _start(self, index: int, structure: Structure, fix_symmetry: bool = False) -> _Job:
        positions = structure.cart_coords
        x = np.vstack([positions, np.zeros((3, 3))]) if self.settings.relax_cell else positions
        symmetry = None
        if fix_symmetry:
            rotations, translations = symmetry_operations(structure)
            mapping = operation_map(structure, rotations, translations)
            symmetry = (rotations, translations, mapping, spacegroup_number(structure))
        return _Job(
            index=index,
            initial=structure,
            x=x.copy(),
            numbers=frame_of(structure)[1],
            trajectory=[] if self.settings.save_trajectory else None,
            symmetry=symmetry,
        )

    def _generalised_forces(
        self,
        jobs: list[_Job],
        frames: list[Frame],
        preds: list[dict[str, Any]],
        deform: tuple[np.ndarray, np.ndarray] | None,
    ) -> list[np.ndarray]:
        """Forces on the FIRE degrees of freedom (ASE ``FrechetCellFilter.get_forces``)."""
        forces = [np.asarray(p["f"], dtype=float) for p in preds]
        # FixSymmetry: project forces (and below the stress) onto the kept group, so
        # every FIRE step stays in its symmetric subspace.
        for k, (job, frame) in enumerate(zip(jobs, frames, strict=True)):
            if job.symmetry is not None:
                rot, trans, mapping, _ = job.symmetry
                forces[k] = symmetrize_forces(frame[0], forces[k], rot, trans, mapping)
        if deform is None:
            return forces
        log_def, f = deform
        stress = np.stack([np.asarray(p["s"], dtype=float) for p in preds]) * GPA
        # ASE stores stress in Voigt form, i.e. symmetrised.
        stress = 0.5 * (stress + np.swapaxes(stress, 1, 2))
        for k, (job, frame) in enumerate(zip(jobs, frames, strict=True)):
            if job.symmetry is not None:
                stress[k] = symmetrize_stress(frame[0], stress[k], job.symmetry[0])
        cells = np.stack([frame[0] for frame in frames])
        n = np.array([j.n for j in jobs], dtype=float)
        cell_forces = cell_generalised_forces(log_def, stress, cells, n)
        return [np.vstack([fa @ fi, fc]) for fa, fi, fc in zip(forces, f, cell_forces, strict=True)]

    def _finish(
        self,
        job: _Job,
        structure: Structure,
        pred: dict[str, Any],
        converged: bool,
        reason: str | None = None,
    ) -> RelaxRecord:
        energy = float(pred["e"])
        rmsd, max_disp = displacement_rmsd(job.initial, structure)
        # FIRE moves Cartesian positions freely; hand back atoms inside the cell.
        final = Structure(
            structure.lattice, structure.species, structure.frac_coords, to_unit_cell=True
        )
        imposed = held = None
        if job.symmetry is not None:
            rot, trans, _, imposed = job.symmetry
            held = operations_hold(final, rot, trans, tolerance=HELD_TOLERANCE)
        return RelaxRecord(
            structure=final,
            initial_energy_per_atom=job.initial_energy,
            final_energy_per_atom=energy,
            de=energy_drop(job.initial_energy, energy),
            rmsd=rmsd,
            max_displacement=max_disp,
            n_steps=job.steps,
            converged=converged,
            max_force=float(np.linalg.norm(pred["f"], axis=1).max()),
            max_stress=float(np.abs(pred["s"]).max()) if "s" in pred else float("nan"),
            wall_time=time.perf_counter() - job.started,
            rejected_reason=reason,
            trajectory=job.trajectory,
            imposed_spacegroup=imposed,
            symmetry_held=held,
            potential=self.potential.name,
        )

    def relax(
        self,
        structures: Sequence[Structure],
        progress: bool | None = None,
        fix_symmetry: Sequence[bool] | None = None,
    ) -> list[RelaxRecord]:
        """Relax ``structures`` (cell and positions unless ``relax_cell=False``).

        Parameters
        ----------
        structures
            Ordered pymatgen structures of any sizes.
        progress
            Show a progress bar; ``None`` shows one on a terminal outside CI.
        fix_symmetry
            Per structure: keep the symmetry it has (at
            :data:`~chggen_flows.core.symmetry.guests.EXACT_SYMPREC`) through the
            relaxation, as ASE's ``FixSymmetry`` does; the record then names the group
            and whether it held. Default: no constraint.

        Returns
        -------
        list of RelaxRecord
            One per input, in input order. Rejected structures (close atoms,
            disorder, non-finite model output) carry ``rejected_reason``.
        """
        s = self.settings
        records: list[RelaxRecord | None] = [None] * len(structures)
        if fix_symmetry is not None and len(fix_symmetry) != len(structures):
            raise InputError("fix_symmetry needs one flag per structure")
        constrained = list(fix_symmetry) if fix_symmetry is not None else [False] * len(structures)
        queue: deque[tuple[int, Structure, bool]] = deque()
        for i, structure in enumerate(structures):
            reason = _screen(structure, s.min_distance)
            if reason is None:
                queue.append((i, structure, bool(constrained[i])))
            else:
                records[i] = RelaxRecord(structure=structure, rejected_reason=reason)
        task = "efs" if s.relax_cell else "ef"
        if queue and s.batch_size is None and self.memory is not None and not self.atoms_per_call:
            self.atoms_per_call = self._measure_atoms_per_call([st for _, st, _ in queue], task)
        batch = s.batch_size or auto_batch_size(
            [len(st) for _, st, _ in queue], self.device, self.atoms_per_call
        )
        # Pipelined: two groups of up to `batch` structures each (one call's worth),
        # split evenly when the queue is short so both halves have work.
        n_groups = 2 if self.pipeline and len(queue) > 1 else 1
        capacity = min(batch, math.ceil(len(queue) / n_groups)) if queue else batch
        groups = [_Group() for _ in range(n_groups)]

        def launch(group: _Group) -> None:
            """Refill ``group`` from the queue and start building its graphs."""
            while queue and len(group.jobs) < capacity:
                group.jobs.append(self._start(*queue.popleft()))
            if group.jobs:
                group.deform = self._deformations(group.jobs) if s.relax_cell else None
                f = None if group.deform is None else group.deform[1]
                group.frames = self._frames(group.jobs, f)
                group.pending = self._submit(group.frames)

        show = progress_enabled(None if progress is None else not progress)
        with make_progress(transient=True) if show else _NoProgress() as bar:
            bar_task = bar.add_task(
                f"{self.potential.name} relax", total=len(structures), status=""
            )
            bar.advance(bar_task, len(structures) - len(queue))
            for group in groups:
                launch(group)
            # While the model evaluates one group, the workers build the other's graphs.
            while any(group.jobs for group in groups):
                for group in groups:
                    if not group.jobs:
                        continue
                    assert group.pending is not None
                    preds = self._evaluate(self._graphs_of(group.pending), task)
                    for index, record in self._advance(group, preds):
                        records[index] = record
                        bar.advance(bar_task)
                    launch(group)
        return records  # type: ignore[return-value]

    def _advance(self, group: _Group, preds: list[dict[str, Any]]) -> list[tuple[int, RelaxRecord]]:
        """Book-keep a group's evaluation and take its FIRE step; the finished records."""
        forces = self._generalised_forces(group.jobs, group.frames, preds, group.deform)
        finished: list[tuple[int, RelaxRecord]] = []
        still: list[tuple[_Job, np.ndarray]] = []
        for job, frame, pred, gf in zip(group.jobs, group.frames, preds, forces, strict=True):
            record = self._observe(job, frame, pred, gf)
            if record is None:
                still.append((job, gf))
            else:
                finished.append((job.index, record))
        group.jobs = [job for job, _ in still]
        if group.jobs:
            new_x = fire_step(
                [j.x for j in group.jobs], [gf for _, gf in still], [j.fire for j in group.jobs]
            )
            for job, x in zip(group.jobs, new_x, strict=True):
                job.x, job.steps = x, job.steps + 1
        return finished

    def _observe(
        self, job: _Job, frame: Frame, pred: dict[str, Any], gforces: np.ndarray
    ) -> RelaxRecord | None:
        """Book-keep one evaluation; a record when the job is done, else ``None``."""
        energy = float(pred["e"])
        if job.steps == 0:
            job.initial_energy = energy
        fmax = float(np.linalg.norm(gforces, axis=1).max())
        # pymatgen structures only where they are kept: building one per step and
        # structure would cost the parent as much as sending the graphs' work away saves.
        structure = None
        if job.trajectory is not None:
            structure = _structure(job, frame)
            job.trajectory.append(
                {"structure": structure, "energy_per_atom": energy, "max_force": fmax}
            )
        if not (np.isfinite(energy) and np.isfinite(fmax)):
            reason = f"non-finite {self.potential.name} output at step {job.steps}"
            return self._finish(job, structure or _structure(job, frame), pred, False, reason)
        if fmax < self.settings.fmax:
            return self._finish(job, structure or _structure(job, frame), pred, True)
        if job.steps >= self.settings.max_steps:
            return self._finish(job, structure or _structure(job, frame), pred, False)
        return None


def _structure(job: _Job, frame: Frame) -> Structure:
    """The structure of ``job`` at ``frame``, with the input's species (oxidation states)."""
    cell, _, positions = frame
    return Structure(Lattice(cell), job.initial.species, positions, coords_are_cartesian=True)


@dataclass
class _Group:
    """Structures relaxed together: one model call per step; the pipeline has two."""

    jobs: list[_Job] = field(default_factory=list)
    frames: list[Frame] = field(default_factory=list)
    deform: tuple[np.ndarray, np.ndarray] | None = None
    pending: PendingGraphs | None = None


class _NoProgress:
    """Stand-in for a rich Progress when bars are off."""

    def __enter__(self) -> _NoProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, *args: Any, **kwargs: Any) -> int:
        return 0

    def advance(self, *args: Any, **kwargs: Any) -> None:
        return None
