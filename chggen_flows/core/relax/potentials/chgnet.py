"""CHGNet (0.3.0, r2SCAN transfer-learned, or a user's checkpoint) as a batched potential.

Graphs are CHGNet's own ``CrystalGraph`` objects, built in-process or by the worker
processes of :class:`~chggen_flows.core.relax.graphs.GraphBuilder`; one
``CHGNet.predict_graph`` call evaluates a batch. CHGNet's outputs are already in the
relaxer's units (eV/atom, eV/Å, GPa with ASE's sign), so this module is a thin wrapper
and the default path gives the same numbers as before the potential seam.
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
    """

    def __init__(
        self,
        model: Any,
        device: torch.device,
        name: str = "chgnet",
        weights: Path | None = None,
    ) -> None:
        import chgnet

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
        """``CHGNet.predict_graph`` on ``graphs`` (one dict of numpy arrays per graph)."""
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
