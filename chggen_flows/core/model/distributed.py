"""Data-parallel training under ``torchrun``: the rank layout, device binding and the
collectives the training loop needs.

One process per GPU (or per CPU socket with gloo). Every rank holds the whole model
and draws the noise of the whole global batch from the same generator, then keeps its
contiguous share of the batch's structures; gradients (and the step's loss, in the
same buffer) are summed over ranks with one all-reduce per step. The optimisation is
therefore the one a single process makes on the same global batches, up to the order
of floating-point sums.

Why not ``DistributedDataParallel``: it averages gradients over ranks, so each rank's
loss would need rescaling by the uneven atom counts of its share, and it cannot run a
rank whose share of the last batch of an epoch is empty. The score models are small
(0.1-3M parameters), so overlapping the all-reduce with the backward pass, DDP's main
gain, is worth little; one flat all-reduce after the backward pass is exact for any
split and any batch size.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

import torch
import torch.distributed as dist

from chggen_flows.core.device import resolve_device
from chggen_flows.errors import ConfigError

# the variables torchrun (and torch.distributed.launch) set in every worker
_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class Ranks:
    """Where this process sits in a (possibly single-process) training job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @property
    def enabled(self) -> bool:
        """More than one process: collectives are needed."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 writes checkpoints, history and logs."""
        return self.rank == 0

    @classmethod
    def from_environment(cls) -> Ranks:
        """The layout torchrun set (RANK, WORLD_SIZE, LOCAL_RANK), else one process."""
        if not all(name in os.environ for name in _ENV):
            return cls()
        try:
            rank, world, local = (int(os.environ[name]) for name in _ENV)
            local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
        except ValueError as exc:
            raise ConfigError(f"malformed torchrun environment: {exc}") from exc
        if not 0 <= rank < world or not 0 <= local < local_world:
            raise ConfigError(
                f"inconsistent torchrun environment: RANK={rank} WORLD_SIZE={world} "
                f"LOCAL_RANK={local} LOCAL_WORLD_SIZE={local_world}"
            )
        return cls(rank, world, local, local_world)

    def device(self, name: str) -> torch.device:
        """The device of this rank: ``cuda`` and ``auto`` bind rank k to cuda:LOCAL_RANK."""
        if not self.enabled:
            return resolve_device(name)
        requested = (name or "auto").lower()
        if requested == "auto":
            requested = "cuda" if torch.cuda.is_available() else "cpu"
        if requested.startswith("cuda:"):
            raise ConfigError(
                f"--device {name} would put every rank on the same GPU",
                hint="use --device cuda under torchrun: rank k uses cuda:LOCAL_RANK",
            )
        device = resolve_device(requested)
        if device.type != "cuda":
            return device
        visible = torch.cuda.device_count()
        if self.local_rank >= visible:
            raise ConfigError(
                f"local rank {self.local_rank} has no GPU: {visible} visible on this node",
                hint="start at most one process per GPU (torchrun --nproc_per_node = GPUs)",
            )
        return torch.device("cuda", self.local_rank)

    def default_threads(self) -> int:
        """CPU threads per rank when none are given: this process's cores split evenly."""
        try:
            cores = len(os.sched_getaffinity(0))  # honours srun --cpus-per-task
        except AttributeError:  # not on Linux
            cores = os.cpu_count() or 1
        return max(1, min(8, cores // self.local_world_size))


def init_process_group(ranks: Ranks, device: torch.device) -> bool:
    """Join the job's process group (nccl on CUDA, gloo on CPU); True if this call did."""
    if not ranks.enabled or dist.is_initialized():
        return False
    if device.type == "cuda":
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", rank=ranks.rank, world_size=ranks.world_size)
    else:
        dist.init_process_group("gloo", rank=ranks.rank, world_size=ranks.world_size)
    return True


def shard_bounds(counts: Sequence[int], world_size: int) -> list[int]:
    """Cut points splitting structures (atom ``counts``) into ``world_size`` contiguous
    shares of about equal atom counts: share r is ``bounds[r]:bounds[r + 1]``.

    A share may be empty (a batch with fewer structures than ranks).
    """
    n = len(counts)
    cumulative = list(accumulate(counts))
    total = cumulative[-1] if cumulative else 0
    bounds = [0]
    for k in range(1, world_size):
        target = k * total / world_size
        j = bisect_left(cumulative, target)  # structures 0..j reach the target
        before = cumulative[j - 1] if j > 0 else 0
        cut = j + 1 if j < n and cumulative[j] - target <= target - before else j
        bounds.append(min(max(cut, bounds[-1]), n))
    bounds.append(n)
    return bounds


def sum_gradients(params: Sequence[torch.nn.Parameter], extra: torch.Tensor) -> torch.Tensor:
    """Sum every rank's gradients in place, and ``extra`` (a 1-D tensor) with them.

    One all-reduce of one flat buffer. A rank whose share was empty contributes zeros.
    Returns the summed ``extra``.
    """
    grads = [
        p.grad.reshape(-1) if p.grad is not None else torch.zeros_like(p).reshape(-1)
        for p in params
    ]
    flat = torch.cat([*grads, extra.to(grads[0].dtype).reshape(-1)])
    dist.all_reduce(flat)
    offset = 0
    for p in params:
        size = p.numel()
        p.grad = flat[offset : offset + size].view_as(p)
        offset += size
    return flat[offset:]


def sum_over_ranks(values: torch.Tensor) -> torch.Tensor:
    """``values`` summed over ranks (returned; the input is left as it was)."""
    total = values.clone()
    dist.all_reduce(total)
    return total


def broadcast_from_main(module: torch.nn.Module) -> None:
    """Make every rank's weights and buffers rank 0's (they should already agree)."""
    for tensor in module.state_dict().values():
        dist.broadcast(tensor, src=0)


def main_flag(flag: bool, device: torch.device) -> bool:
    """Rank 0's value of ``flag`` on every rank (e.g. its wall-clock limit)."""
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.broadcast(value, src=0)
    return bool(value.item())
