"""SevenNet (from the ``sevenn`` wheel, weights included) as a batched potential.

Optional: ``pip install 'chggen-flows[sevennet]'``. The wheel (sevenn 0.13, MIT) ships
four checkpoints; the registry offers the two universal MPtrj models, SevenNet-0
(11Jul2024, 10 MB) and SevenNet-l3i5 (14 MB). The larger models that SevenNet
documents (7net-mf-ompa, 7net-omat, 7net-omni) are downloaded at run time and are not
offered: campaigns run offline.

Each structure's graph is SevenNet's own ``AtomGraphData`` (the neighbour list its ASE
calculator builds, ``sevenn.train.dataload.unlabeled_atoms_to_graph``); a batch is
collated with torch_geometric's ``Collater`` and evaluated in one call of the model in
batch mode, as SevenNet's TorchSim interface does. Graphs are built in-process: they
cost 0.2 s of a 50-137 s SevenNet run on the CPU (docs/performance.md, "Potentials side
by side"), so a worker pool would not pay.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from chggen_flows.core.relax.fire import GPA
from chggen_flows.core.relax.graphs import Frame, PendingGraphs
from chggen_flows.core.relax.potentials import file_checksum, potential_info
from chggen_flows.errors import CheckpointError, InputError


class SevenNetGraphs:
    """SevenNet graphs of frames, built in the calling process (``workers`` is 0)."""

    workers = 0

    def __init__(self, cutoff: float) -> None:
        self.cutoff = cutoff

    def build_one(self, frame: Frame) -> Any:
        """The ``AtomGraphData`` of one frame (what SevenNet's ASE calculator builds)."""
        from ase import Atoms
        from sevenn.atom_graph_data import AtomGraphData
        from sevenn.train.dataload import unlabeled_atoms_to_graph

        cell, numbers, positions = frame
        atoms = Atoms(numbers=numbers, positions=positions, cell=cell, pbc=True)
        return AtomGraphData.from_numpy_dict(unlabeled_atoms_to_graph(atoms, self.cutoff))

    def submit(self, frames: Sequence[Frame]) -> PendingGraphs:
        """The graphs of ``frames``, built now."""
        return PendingGraphs(graphs=[self.build_one(f) for f in frames])

    def close(self) -> None:
        """Nothing to stop."""


def _stress_gpa(voigt: np.ndarray) -> np.ndarray:
    """SevenNet's stress rows (xx, yy, zz, xy, yz, zx; eV/Å^3, compressive positive) as
    (B, 3, 3) GPa with ASE's sign (what CHGNet returns and the relaxer expects)."""
    s = -voigt / GPA
    xx, yy, zz, xy, yz, zx = (s[:, k] for k in range(6))
    return np.stack(
        [np.stack([xx, xy, zx], -1), np.stack([xy, yy, yz], -1), np.stack([zx, yz, zz], -1)],
        axis=1,
    )


class SevenNetPotential:
    """A SevenNet model behind the :class:`~chggen_flows.core.relax.potentials.Potential` seam.

    Parameters
    ----------
    checkpoint
        A loaded ``sevenn.checkpoint.SevenNetCheckpoint``.
    device
        Where to evaluate.
    name
        Registry name.
    weights
        The checkpoint file (for the checksum).
    """

    def __init__(self, checkpoint: Any, device: torch.device, name: str, weights: Path) -> None:
        import sevenn
        import sevenn._keys as KEY

        self._keys = KEY
        model = checkpoint.build_model()
        model.set_is_batch_data(True)
        self.model = model.to(device).eval()
        self.cutoff = float(checkpoint.config[KEY.CUTOFF])
        self.type_map = checkpoint.config[KEY.TYPE_MAP]
        self.device = device
        self.name = name
        self.functional = potential_info(name).functional
        self.version = f"sevenn {sevenn.__version__}, weights {Path(weights).parent.name}"
        self.weights_checksum = file_checksum(weights)

    def graph_builder(self, workers: int) -> SevenNetGraphs:
        """SevenNet graphs (in-process whatever ``workers`` says: see the module notes)."""
        return SevenNetGraphs(self.cutoff)

    def _call(self, graphs: list[Any]) -> list[dict[str, Any]]:
        from torch_geometric.loader.dataloader import Collater

        key = self._keys
        batch = Collater([], follow_batch=None, exclude_keys=None)(graphs)
        batch.to(self.device)
        out = self.model(batch)
        energy = out[key.PRED_TOTAL_ENERGY].detach().cpu().numpy().astype(float)
        forces = out[key.PRED_FORCE].detach().cpu().numpy().astype(float)
        stress = _stress_gpa(out[key.PRED_STRESS].detach().cpu().numpy().astype(float))
        sizes = [int(g[key.NUM_ATOMS]) for g in graphs]
        bounds = np.cumsum(sizes)[:-1]
        return [
            {"e": e / n, "f": f, "s": s}
            for e, n, f, s in zip(energy, sizes, np.split(forces, bounds), stress, strict=True)
        ]

    def evaluate(self, graphs: list[Any], task: str, batch_size: int) -> list[dict[str, Any]]:
        """Energies, forces and stresses of ``graphs``, ``batch_size`` structures per call.

        SevenNet computes forces and stress from the same backward pass whatever
        ``task`` asks for.
        """
        unknown = {int(z) for g in graphs for z in g[self._keys.ATOMIC_NUMBERS].tolist()} - set(
            self.type_map
        )
        if unknown:
            raise InputError(
                f"potential {self.name} has no parameters for atomic numbers {sorted(unknown)}",
                hint="relax these structures with another potential (e.g. chgnet)",
            )
        out: list[dict[str, Any]] = []
        for start in range(0, len(graphs), max(1, batch_size)):
            out += self._call(graphs[start : start + batch_size])
        return out


def weights_file(model_name: str = "7net-0") -> Path:
    """The wheel's checkpoint of ``model_name`` (never downloaded)."""
    from sevenn import _const

    shipped = {"7net-0": _const.SEVENNET_0_11Jul2024, "7net-l3i5": _const.SEVENNET_l3i5}
    path = Path(shipped[model_name])
    if not path.is_file():
        raise CheckpointError(
            f"the sevenn wheel lacks {model_name} ({path})",
            hint="reinstall sevenn from the package index (its wheel ships the weights)",
        )
    return path


def load(
    device: torch.device,
    model_path: str | Path | None = None,
    name: str = "sevennet-0",
    model_name: str = "7net-0",
) -> SevenNetPotential:
    """The registry's loader: the wheel's ``model_name`` checkpoint, or ``model_path``.

    Never downloads: only the checkpoints inside the wheel are used.
    """
    from sevenn.util import load_checkpoint

    path = weights_file(model_name) if model_path is None else Path(model_path)
    if not path.is_file():
        raise CheckpointError(f"SevenNet checkpoint {path} does not exist")
    try:
        checkpoint = load_checkpoint(str(path))
    except Exception as exc:  # torch/pickle raise many types for foreign files
        raise CheckpointError(
            f"{path} is not a readable SevenNet checkpoint ({type(exc).__name__}: {exc})"
        ) from exc
    return SevenNetPotential(checkpoint, device, name, path)
