"""Batched CHGNet relaxation: many structures per model call, each with its own FIRE.

CHGNet's own ``StructOptimizer`` relaxes one structure at a time through ASE, one
model call per step. Here the structures of a batch are advanced together: every
step builds their crystal graphs, makes a single ``CHGNet.predict_graph`` call for
energies, forces and stresses, and takes one FIRE step per structure
(:mod:`chggen_flows.core.relax.fire`, which mirrors ASE's FIRE + FrechetCellFilter).
A structure leaves the batch as soon as it converges or runs out of steps, and the
next waiting structure takes its place, so the batch stays full until the queue ends.
"""

from __future__ import annotations

import time
import warnings
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pymatgen.core import Lattice, Structure

from chggen_flows.core.device import configure_threads, resolve_device
from chggen_flows.core.guest_symmetry import (
    operation_map,
    operations_hold,
    spacegroup_number,
    symmetrize_forces,
    symmetrize_stress,
    symmetry_operations,
)
from chggen_flows.core.relax.fire import (
    GPA,
    FireState,
    cell_generalised_forces,
    deformation,
    fire_step,
)
from chggen_flows.core.relax.metrics import displacement_rmsd, energy_drop
from chggen_flows.core.relax.records import RelaxRecord, RelaxSettings
from chggen_flows.errors import CheckpointError, InputError
from chggen_flows.progress import make_progress, progress_enabled

# Atoms per model call that keep a device busy without wasting memory. CPU, measured on
# 2 cores (one energy+forces+stress pass, docs/performance.md): cells of ~9 atoms run
# 1.3-1.4x faster in batches of 2-8, cells of ~18 atoms 1.1-1.26x, cells of ~34 atoms
# gain nothing at 2 and lose 6-34% at 4-16; about 48 atoms per call is the sweet spot.
# CUDA: a conservative guess (unmeasured).
CPU_ATOMS_PER_CALL = 48
CUDA_ATOMS_PER_CALL = 8192
MAX_CPU_BATCH = 16
# A kept operation still holds after a constrained relaxation if it maps the structure
# onto itself this closely (Å): FIRE steps are symmetric, only rounding accumulates.
HELD_TOLERANCE = 0.01


def auto_batch_size(n_atoms: Sequence[int], device: torch.device) -> int:
    """Structures per CHGNet call for structures of the given sizes on ``device``."""
    if not n_atoms:
        return 1
    mean = max(1.0, float(np.mean(n_atoms)))
    if device.type == "cuda":
        return max(1, min(len(n_atoms), int(CUDA_ATOMS_PER_CALL // mean)))
    return max(1, min(len(n_atoms), MAX_CPU_BATCH, round(CPU_ATOMS_PER_CALL / mean)))


def load_chgnet(model_path: str | Path | None, device: torch.device):
    """Load a CHGNet model: the pretrained one from the wheel, or a user's checkpoint."""
    from chgnet.model import CHGNet

    if model_path is None:
        model = CHGNet.load(verbose=False, use_device=str(device))
    else:
        path = Path(model_path)
        if not path.is_file():
            raise CheckpointError(
                f"CHGNet checkpoint {path} does not exist",
                hint="pass a file written by CHGNet (e.g. a fine-tuned model), or none "
                "for the pretrained model",
            )
        try:
            model = CHGNet.from_file(str(path))
        except Exception as exc:  # torch/pickle raise many types for foreign files
            raise CheckpointError(
                f"{path} is not a readable CHGNet checkpoint ({type(exc).__name__}: {exc})",
                hint="check the file is a complete CHGNet .pth.tar checkpoint",
            ) from exc
    model.graph_converter.set_isolated_atom_response("ignore")
    return model.to(device).eval()


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
        return "disordered structure (partial occupancies): CHGNet needs ordered sites"
    return close_contact(structure, min_distance)


@dataclass
class _Job:
    """One structure in flight: its degrees of freedom, FIRE state and history."""

    index: int
    initial: Structure
    x: np.ndarray
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
    """Relax many structures with CHGNet, batched, on CPU or CUDA.

    Parameters
    ----------
    settings
        :class:`RelaxSettings`; defaults are the authors' criterion (FIRE with cell
        filter, fmax 0.1 eV/Å, 500 steps).
    model
        An already loaded ``chgnet.model.CHGNet`` to share between relaxers; by
        default the one named by ``settings.model_path`` is loaded.

    Examples
    --------
    >>> relaxer = BatchRelaxer(RelaxSettings(fmax=0.1, max_steps=500))
    >>> records = relaxer.relax(structures)          # same order as the input
    >>> [(r.de, r.rmsd, r.converged) for r in records]
    """

    def __init__(self, settings: RelaxSettings | None = None, model: Any = None) -> None:
        self.settings = settings or RelaxSettings()
        self.device = resolve_device(self.settings.device)
        if self.device.type == "cpu":
            configure_threads(self.settings.threads)
        if model is None:
            self.model = load_chgnet(self.settings.model_path, self.device)
        else:
            model.graph_converter.set_isolated_atom_response("ignore")
            self.model = model.to(self.device).eval()
        # Seconds spent building crystal graphs and in CHGNet's forward/backward, so
        # the optimiser's own overhead can be measured (benchmarks/bench_relax.py).
        self.graph_time = 0.0
        self.forward_time = 0.0

    # -- model calls -------------------------------------------------------------
    def _predict(self, structures: Sequence[Structure], task: str) -> list[dict[str, Any]]:
        start = time.perf_counter()
        graphs = [self.model.graph_converter(s) for s in structures]
        built = time.perf_counter()
        with warnings.catch_warnings():
            # CHGNet 0.3 converts a grad-tracking volume tensor on every call; harmless.
            warnings.filterwarnings("ignore", "Converting a tensor with requires_grad")
            out = self.model.predict_graph(graphs, task=task, batch_size=len(graphs))
        self.graph_time += built - start
        self.forward_time += time.perf_counter() - built
        return [out] if isinstance(out, dict) else out

    def predict_energies(
        self, structures: Sequence[Structure], batch_size: int | None = None
    ) -> list[float]:
        """CHGNet energies (eV/atom) of ``structures`` without relaxing them.

        Parameters
        ----------
        structures
            Ordered pymatgen structures.
        batch_size
            Structures per call; default from the settings or chosen automatically.
        """
        size = batch_size or self.settings.batch_size
        size = size or auto_batch_size([len(s) for s in structures], self.device)
        energies: list[float] = []
        for start in range(0, len(structures), size):
            chunk = structures[start : start + size]
            energies += [float(p["e"]) for p in self._predict(chunk, task="e")]
        return energies

    # -- relaxation --------------------------------------------------------------
    def _deformations(self, jobs: list[_Job]) -> tuple[np.ndarray, np.ndarray]:
        """Log-deformations ``L = x_cell / n`` and ``F = expm(L)`` of a batch (B, 3, 3)."""
        n = np.array([j.n for j in jobs], dtype=float)
        log_def = np.stack([j.x[j.n :] for j in jobs]) / n[:, None, None]
        return log_def, deformation(log_def)

    def _structures(self, jobs: list[_Job], f: np.ndarray | None) -> list[Structure]:
        """Structures at the jobs' degrees of freedom (ASE's filter ``set_positions``)."""
        structures = []
        for k, job in enumerate(jobs):
            cell, positions = job.initial.lattice.matrix, job.x[: job.n]
            if f is not None:
                cell, positions = cell @ f[k].T, positions @ f[k].T
            structures.append(
                Structure(Lattice(cell), job.initial.species, positions, coords_are_cartesian=True)
            )
        return structures

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
            trajectory=[] if self.settings.save_trajectory else None,
            symmetry=symmetry,
        )

    def _generalised_forces(
        self,
        jobs: list[_Job],
        current: list[Structure],
        preds: list[dict[str, Any]],
        deform: tuple[np.ndarray, np.ndarray] | None,
    ) -> list[np.ndarray]:
        """Forces on the FIRE degrees of freedom (ASE ``FrechetCellFilter.get_forces``)."""
        forces = [np.asarray(p["f"], dtype=float) for p in preds]
        # FixSymmetry: project forces (and below the stress) onto the kept group, so
        # every FIRE step stays in its symmetric subspace.
        for k, (job, structure) in enumerate(zip(jobs, current, strict=True)):
            if job.symmetry is not None:
                rot, trans, mapping, _ = job.symmetry
                forces[k] = symmetrize_forces(
                    structure.lattice.matrix, forces[k], rot, trans, mapping
                )
        if deform is None:
            return forces
        log_def, f = deform
        stress = np.stack([np.asarray(p["s"], dtype=float) for p in preds]) * GPA
        # ASE stores stress in Voigt form, i.e. symmetrised.
        stress = 0.5 * (stress + np.swapaxes(stress, 1, 2))
        for k, (job, structure) in enumerate(zip(jobs, current, strict=True)):
            if job.symmetry is not None:
                stress[k] = symmetrize_stress(structure.lattice.matrix, stress[k], job.symmetry[0])
        cells = np.stack([s.lattice.matrix for s in current])
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
            :data:`~chggen_flows.core.guest_symmetry.EXACT_SYMPREC`) through the
            relaxation, as ASE's ``FixSymmetry`` does; the record then names the group
            and whether it held. Default: no constraint.

        Returns
        -------
        list of RelaxRecord
            One per input, in input order. Rejected structures (close atoms,
            disorder, non-finite CHGNet output) carry ``rejected_reason``.
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
        batch = s.batch_size or auto_batch_size([len(st) for _, st, _ in queue], self.device)
        task = "efs" if s.relax_cell else "ef"

        show = progress_enabled(None if progress is None else not progress)
        with make_progress(transient=True) if show else _NoProgress() as bar:
            bar_task = bar.add_task("CHGNet relax", total=len(structures), status="")
            bar.advance(bar_task, len(structures) - len(queue))
            active: list[_Job] = []
            while queue or active:
                while queue and len(active) < batch:
                    active.append(self._start(*queue.popleft()))
                deform = self._deformations(active) if s.relax_cell else None
                current = self._structures(active, None if deform is None else deform[1])
                preds = self._predict(current, task=task)
                forces = self._generalised_forces(active, current, preds, deform)
                still: list[tuple[_Job, np.ndarray]] = []
                for job, structure, pred, gf in zip(active, current, preds, forces, strict=True):
                    record = self._observe(job, structure, pred, gf)
                    if record is None:
                        still.append((job, gf))
                    else:
                        records[job.index] = record
                        bar.advance(bar_task)
                active = [job for job, _ in still]
                if active:
                    new_x = fire_step(
                        [j.x for j in active], [gf for _, gf in still], [j.fire for j in active]
                    )
                    for job, x in zip(active, new_x, strict=True):
                        job.x, job.steps = x, job.steps + 1
        return records  # type: ignore[return-value]

    def _observe(
        self, job: _Job, structure: Structure, pred: dict[str, Any], gforces: np.ndarray
    ) -> RelaxRecord | None:
        """Book-keep one evaluation; a record when the job is done, else ``None``."""
        energy = float(pred["e"])
        if job.steps == 0:
            job.initial_energy = energy
        fmax = float(np.linalg.norm(gforces, axis=1).max())
        if job.trajectory is not None:
            job.trajectory.append(
                {"structure": structure, "energy_per_atom": energy, "max_force": fmax}
            )
        if not (np.isfinite(energy) and np.isfinite(fmax)):
            return self._finish(
                job, structure, pred, False, f"non-finite CHGNet output at step {job.steps}"
            )
        if fmax < self.settings.fmax:
            return self._finish(job, structure, pred, True)
        if job.steps >= self.settings.max_steps:
            return self._finish(job, structure, pred, False)
        return None


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
