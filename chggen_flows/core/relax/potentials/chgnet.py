"""CHGNet (0.3.0, r2SCAN transfer-learned, or a user's checkpoint) as a batched potential.

Graphs are CHGNet's own ``CrystalGraph`` objects, built in-process or by the worker
processes of :class:`~chggen_flows.core.relax.graphs.GraphBuilder`; one model call
evaluates a batch. CHGNet's outputs are already in the relaxer's units (eV/atom, eV/Å,
GPa with ASE's sign).

Forces and stress in one backward pass. ``CHGNet.forward`` takes two
``torch.autograd.grad`` calls, forces then stress, each walking the whole backward
graph. :func:`fused_forward` runs CHGNet's own ``_compute`` for the energy and one
``autograd.grad`` of it with respect to the positions and the strains together. With
the same ``create_graph=True`` as CHGNet the backward kernels are the same, and the
energies, forces and stresses are bit-identical to ``CHGNet.predict_graph``'s
(``tests/core/relax/test_potentials.py``); the model call costs about 0.6x as much on
the CPU (docs/performance.md). Without ``create_graph`` it would be cheaper still, but
forces then move by float32 rounding (up to 2e-5 eV/Å), which three FIRE steps on the
golden campaign's unphysical cells amplify to 2.7 meV/atom in dE: not taken.
``fused=False`` calls ``CHGNet.predict_graph``.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch

from chggen_flows.core.relax.graphs import GraphBuilder
from chggen_flows.core.relax.potentials import file_checksum, potential_info
from chggen_flows.errors import CheckpointError

# The wheel's pretrained weights, by CHGNet.load's model_name (chgnet 0.4.x layout).
PRETRAINED_FILES = {
    "0.3.0": "pretrained/0.3.0/chgnet_0.3.0_e29f68s314m37.pth.tar",
    "0.2.0": "pretrained/0.2.0/chgnet_0.2.0_e30f77s348m32.pth.tar",
    "r2scan": "pretrained/r2scan/chgnet_r2scan_transfer_learning_e15f36s161m23.pth.tar",
}


def pretrained_path(model_name: str) -> Path:
    """The weights file of a pretrained CHGNet model inside the installed wheel."""
    import chgnet

    return Path(chgnet.__file__).parent / PRETRAINED_FILES[model_name]


def weights_file(model_name: str = "0.3.0") -> Path:
    """The registry's weights locator (for checksums without loading the model)."""
    return pretrained_path(model_name)


def load_chgnet(
    model_path: str | Path | None, device: torch.device, model_name: str = "0.3.0"
) -> Any:
    """Load a CHGNet model: pretrained weights from the wheel, or a user's checkpoint."""
    from chgnet.model import CHGNet

    if model_path is None:
        model = CHGNet.load(model_name=model_name, verbose=False, use_device=str(device))
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


def fused_forward(model: Any, graphs: list[Any], stress: bool = True) -> list[dict[str, Any]]:
    """CHGNet energies, forces and (with ``stress``) stresses of a batch, one backward pass.

    The same computation as ``CHGNet.forward`` with ``task="efs"`` (or ``"ef"``):
    CHGNet's ``BatchedGraph`` and ``_compute`` give the total energy of each structure
    (the model's ``is_intensive`` switched off for the call, so the per-atom division
    happens after the gradient, as in CHGNet), and one ``autograd.grad`` gives its
    derivatives with respect to the atom positions and the strains. Outputs as
    ``predict_graph``'s: ``e`` eV/atom, ``f`` eV/Å, ``s`` GPa, numpy arrays.
    """
    from chgnet.model.model import BatchedGraph

    comp_energy = 0 if model.composition_model is None else model.composition_model(graphs)
    batched = BatchedGraph.from_graphs(
        graphs,
        bond_basis_expansion=model.bond_basis_expansion,
        angle_basis_expansion=model.angle_basis_expansion,
        compute_stress=stress,
    )
    intensive = model.is_intensive
    model.is_intensive = False
    try:
        prediction = model._compute(batched)
    finally:
        model.is_intensive = intensive
    energy = prediction["e"]
    k = len(graphs)
    inputs = [*batched.atom_positions, *(batched.strains if stress else [])]
    grads = [
        torch.zeros_like(x) if g is None else g
        for x, g in zip(
            inputs,
            # create_graph as CHGNet's forward: the same kernels, bit-identical values
            torch.autograd.grad(energy.sum(), inputs, create_graph=True, allow_unused=True),
            strict=True,
        )
    ]
    if intensive:
        energy = energy / prediction["atoms_per_graph"]
    energy = (energy + comp_energy).detach().cpu().numpy()
    out = [{"e": energy[i], "f": (-grads[i]).detach().cpu().numpy()} for i in range(k)]
    if stress:
        # eV/Å^3 per unit strain to GPa, as CHGNet converts it
        scale = 1 / batched.volumes * 160.21766208
        for i in range(k):
            out[i]["s"] = (grads[k + i] * scale[i]).detach().cpu().numpy()
    return out


class CHGNetPotential:
    """A CHGNet model behind the :class:`~chggen_flows.core.relax.potentials.Potential` seam.

    Parameters
    ----------
    model
        A loaded ``chgnet.model.CHGNet``.
    device
        Its device.
    name
        Registry name (``chgnet`` or ``chgnet-r2scan``).
    weights
        The weights file (for the checksum), when known.
    fused
        Forces and stress from one backward pass (:func:`fused_forward`); False calls
        ``CHGNet.predict_graph`` as CHGNet's own calculator does.
    """

    def __init__(
        self,
        model: Any,
        device: torch.device,
        name: str = "chgnet",
        weights: Path | None = None,
        fused: bool = True,
    ) -> None:
        import chgnet

        self.fused = fused
        model.graph_converter.set_isolated_atom_response("ignore")
        self.model = model.to(device).eval()
        self.device = device
        self.name = name
        self.functional = potential_info(name).functional
        model_version = getattr(model, "version", None) or "unknown"
        self.version = f"chgnet {chgnet.__version__}, weights {model_version}"
        self.weights_checksum = file_checksum(weights) if weights is not None else "unknown"

    def graph_builder(self, workers: int) -> GraphBuilder:
        """CHGNet graphs, in ``workers`` processes (0: in-process)."""
        return GraphBuilder(self.model.graph_converter, workers)

    def evaluate(self, graphs: list[Any], task: str, batch_size: int) -> list[dict[str, Any]]:
        """Energies (and forces, stress) of ``graphs``: one dict of numpy arrays per graph.

        ``"ef"`` and ``"efs"`` go through :func:`fused_forward` unless ``fused`` is off;
        other tasks through ``CHGNet.predict_graph``.
        """
        if self.fused and task in ("ef", "efs"):
            out: list[dict[str, Any]] = []
            for start in range(0, len(graphs), max(1, batch_size)):
                chunk = [g.to(self.device) for g in graphs[start : start + batch_size]]
                out += fused_forward(self.model, chunk, stress=task == "efs")
            return out
        with warnings.catch_warnings():
            # CHGNet 0.3 converts a grad-tracking volume tensor on every call.
            warnings.filterwarnings("ignore", "Converting a tensor with requires_grad")
            out = self.model.predict_graph(graphs, task=task, batch_size=batch_size)
        return [out] if isinstance(out, dict) else out


def load(
    device: torch.device,
    model_path: str | Path | None = None,
    name: str = "chgnet",
    model_name: str = "0.3.0",
) -> CHGNetPotential:
    """The registry's loader: pretrained ``model_name`` weights, or ``model_path``."""
    model = load_chgnet(model_path, device, model_name)
    weights = Path(model_path) if model_path is not None else pretrained_path(model_name)
    return CHGNetPotential(model, device, name, weights)
