"""Settings of a relaxation run and the per-structure record it returns."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import field_validator
from pymatgen.core import Structure

from chggen_flows.core.relax.potentials import check_potential
from chggen_flows.core.settings_model import CoreSettings, bounded
from chggen_flows.errors import InputError


class RelaxSettings(CoreSettings):
    """How CHGNet relaxes a batch of structures.

    The defaults are the authors' convergence criterion (CHGNet ``StructOptimizer``:
    FIRE, ``fmax`` 0.1 eV/Å, at most 500 steps, cell relaxed through ASE's
    ``FrechetCellFilter``).

    Parameters
    ----------
    fmax
        Convergence threshold (eV/Å) on the largest row norm of the filter's
        generalised forces: atomic forces and, with ``relax_cell``, the cell forces
        (virial scaled by the number of atoms), as ASE's optimisers test it.
    max_steps
        FIRE steps at most; a structure still above ``fmax`` then leaves the batch
        with ``converged=False``.
    relax_cell
        Relax the lattice as well as the positions.
    batch_size
        Structures per CHGNet call; ``None`` chooses from the device and the mean
        number of atoms (:func:`chggen_flows.core.relax.batch.auto_batch_size`).
    min_distance
        The relaxation's refusal cutoff (Å): a structure with two atoms closer than
        this is rejected with a reason before relaxing, since CHGNet's forces there
        are meaningless and FIRE blows up. Stricter than the sampler's validity cutoff
        :attr:`chggen_flows.core.generation.SamplerSettings.min_distance` (0.5 Å).
    device
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    model_path
        A checkpoint of the potential's own format (``CHGNet.from_file`` for the CHGNet
        potentials); ``None`` loads the weights shipped in its wheel (offline).
    save_trajectory
        Keep every step's structure, energy and largest force in the record.
    threads
        torch CPU threads; ``None`` applies :func:`chggen_flows.core.device.configure_threads`'s
        default (all cores). On a machine shared with other busy processes one thread
        can be many times faster (OpenMP threads wait on each other).
    graph_workers
        Processes that build CHGNet's crystal graphs (pymatgen neighbour lists, on the
        CPU) while the model evaluates: 0 builds them in the relaxing process, one
        structure at a time. ``None`` chooses from the device
        (:func:`chggen_flows.core.relax.graphs.default_graph_workers`): 0 on the CPU,
        whose cores CHGNet itself keeps busy; on CUDA the usable cores but one, at most
        8, since there the graphs (~1.7 ms per 12-atom structure on one core) would
        otherwise leave the GPU waiting. With workers the structures are relaxed in
        two groups of ``batch_size`` each, one group's graphs built while CHGNet
        evaluates the other (structures per call, automatic or not). Workers start
        on the first relaxation (a few seconds, spawned) and live until the relaxer
        is closed; a script that uses them needs the ``if __name__ == "__main__":``
        guard of all multiprocessing code.
    potential
        The interatomic potential, by registry name
        (:data:`chggen_flows.core.relax.potentials.POTENTIALS`): ``"chgnet"`` (CHGNet
        0.3.0, the paper's), ``"chgnet-r2scan"``, ``"sevennet-0"``,
        ``"sevennet-l3i5"``. E_d needs a hull made by the same potential.
    """

    fmax: float = 0.1
    max_steps: int = 500
    relax_cell: bool = True
    batch_size: int | None = None
    min_distance: float = 0.7
    device: str = "auto"
    model_path: str | Path | None = None
    save_trajectory: bool = False
    threads: int | None = None
    graph_workers: int | None = None
    potential: str = "chgnet"

    _fmax = bounded("fmax", low=0, inclusive=False, unit=" eV/Å", hint="e.g. fmax=0.1")
    _max_steps = bounded("max_steps", low=0)
    _batch_size = bounded("batch_size", low=1, hint="leave it unset to choose it automatically")
    _threads = bounded("threads", low=1)
    _min_distance = bounded("min_distance", low=0, unit=" Å")

    @field_validator("graph_workers", mode="before")
    @classmethod
    def _check_graph_workers(cls, value: object) -> object:
        # before conversion: True, 1.5 or "2" must not pass for a count
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 0
        ):
            raise InputError(
                f"graph_workers must be an integer >= 0, got {value!r}",
                hint="0 builds graphs in-process; leave it unset to choose from the device",
            )
        return value

    @field_validator("potential")
    @classmethod
    def _check_potential(cls, value: str) -> str:
        check_potential(value)
        return value


@dataclass
class RelaxRecord:
    """Outcome of relaxing one structure.

    Attributes
    ----------
    structure
        Relaxed structure, or the input when it was rejected.
    initial_energy_per_atom, final_energy_per_atom
        CHGNet energies (eV/atom) of the input and of ``structure``; NaN when rejected.
    de
        ``initial - final`` (eV/atom): the energy drop on relaxation (paper Fig. 4a).
    rmsd
        Root-mean-square displacement of the atoms between input and output (Å),
        see :func:`chggen_flows.core.relax.metrics.displacement_rmsd`.
    max_displacement
        Largest single-atom displacement (Å), same frame as ``rmsd``.
    n_steps
        FIRE steps taken (CHGNet was called ``n_steps + 1`` times).
    converged
        Whether the largest generalised force fell below ``fmax``.
    max_force
        Largest atomic force norm (eV/Å) at the final structure.
    max_stress
        Largest absolute stress component (GPa) at the final structure.
    wall_time
        Seconds the structure spent in the batch (shared with its batch mates).
    rejected_reason
        Why the structure was not relaxed (or stopped early), else ``None``.
    trajectory
        With ``save_trajectory``: one dict per CHGNet call with ``structure``,
        ``energy_per_atom`` and ``max_force``.
    imposed_spacegroup
        With a symmetry-constrained relaxation: the space group kept (found in the input
        at :data:`chggen_flows.core.symmetry.guests.EXACT_SYMPREC`), else ``None``.
    symmetry_held
        With a constrained relaxation: whether every imposed operation still maps the
        relaxed structure onto itself within 0.01 Å.
    potential
        Registry name of the potential that relaxed it (None when rejected before).
    """

    structure: Structure
    initial_energy_per_atom: float = float("nan")
    final_energy_per_atom: float = float("nan")
    de: float = float("nan")
    rmsd: float = float("nan")
    max_displacement: float = float("nan")
    n_steps: int = 0
    converged: bool = False
    max_force: float = float("nan")
    max_stress: float = float("nan")
    wall_time: float = 0.0
    rejected_reason: str | None = None
    trajectory: list[dict[str, Any]] | None = field(default=None, repr=False)
    imposed_spacegroup: int | None = None
    symmetry_held: bool | None = None
    potential: str | None = None

    @property
    def ok(self) -> bool:
        """True when the structure was relaxed (converged or not) and not rejected."""
        return self.rejected_reason is None

    def summary(self) -> dict[str, Any]:
        """JSON-ready scalars of the record (no structure, no trajectory; NaN -> None)."""
        values = {
            "formula": self.structure.composition.reduced_formula,
            "n_atoms": len(self.structure),
            "initial_energy_per_atom": self.initial_energy_per_atom,
            "final_energy_per_atom": self.final_energy_per_atom,
            "de": self.de,
            "rmsd": self.rmsd,
            "max_displacement": self.max_displacement,
            "n_steps": self.n_steps,
            "converged": self.converged,
            "max_force": self.max_force,
            "max_stress": self.max_stress,
            "wall_time": self.wall_time,
            "rejected_reason": self.rejected_reason,
            "imposed_spacegroup": self.imposed_spacegroup,
            "symmetry_held": self.symmetry_held,
            "potential": self.potential,
        }
        return {
            k: None if isinstance(v, float) and not math.isfinite(v) else v
            for k, v in values.items()
        }
