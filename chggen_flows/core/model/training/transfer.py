"""Moving batches from the host to the training device without reading anything back.

Every function here works from host copies of the data, so that a training step on a
GPU makes no host sync (tests/core/model/test_training.py counts them). Callers use
these through the module (``transfer.to_device``), so one patch reaches every caller.
"""

from __future__ import annotations

import torch

from chggen_flows.core.model.data import Batch, CrystalDataset
from chggen_flows.core.model.network import ScoreModel
from chggen_flows.core.model.training.loss import ScoreFn, image_reach
from chggen_flows.errors import ConfigError

# devices on which the minimum image's search bound comes from the host (the data's
# lattices) instead of from the displacements: a host read costs nothing on the CPU,
# and the data-derived bound, being the one earlier versions used, keeps CPU runs
# bit-identical to them (the image search's float rounding depends on its size)
HOST_IMAGE_BOUND = {"cuda"}


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Host tensor to ``device``; to a GPU through pinned memory, without blocking the
    host, so the next batch is prepared while the GPU works on this one."""
    if device.type != "cuda":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


def batch_on(batch: Batch, device: torch.device) -> Batch:
    """A batch collated on the host, copied to ``device`` (see :func:`to_device`)."""
    return Batch(
        species=to_device(batch.species, device),
        pos=to_device(batch.pos, device),
        lattice=to_device(batch.lattice, device),
        batch=to_device(batch.batch, device),
        counts=batch.counts,
    )


def host_reach(
    host: Batch, lattice: torch.Tensor, sigma: torch.Tensor, noise: torch.Tensor, device
) -> int | None:
    """The minimum image's bound from the host copies where the device is one of
    HOST_IMAGE_BOUND, else None (the device computes it)."""
    if device.type not in HOST_IMAGE_BOUND:
        return None
    return image_reach(sigma.double()[host.batch, None] * noise.double(), lattice, host.batch)


@torch.no_grad()
def check_elements(model: ScoreModel, dataset: CrystalDataset) -> None:
    """The data's elements are checked here, once: the forward's own check reads the
    device (a host sync) at every call."""
    unknown = sorted(set(dataset.elements) - set(model.elements))
    if unknown:
        raise ConfigError(
            f"the model does not know element(s) {', '.join(unknown)} of the data",
            hint="train from scratch, or fine-tune on structures of the model's elements",
        )


def bound_score_fn(model: ScoreModel, host: Batch, device: torch.device) -> ScoreFn:
    """The model as the loss calls it for one batch, with nothing read from the device:
    the data's elements are checked once per run, and on a GPU the neighbour candidates
    are planned from the batch's host cells."""
    return model.prepare(
        host.species, host.lattice, host.batch, host.counts, device=device, check_species=False
    )
