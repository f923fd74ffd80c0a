"""Device selection and CPU thread settings shared by the torch-based stages."""

from __future__ import annotations

import os
from typing import Literal

import torch

from chggen_flows.errors import InputError

DeviceName = Literal["cpu", "cuda", "auto"]


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` into a :class:`torch.device`.

    ``"auto"`` picks CUDA when a GPU is visible, else the CPU. Asking for CUDA on a
    machine without a GPU is a user error, not a silent fallback.
    """
    if isinstance(device, torch.device):
        return device
    name = (device or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError(
                f"device {device!r} was requested but no CUDA GPU is visible",
                hint="use --device cpu (or auto), or install a CUDA build of torch",
            )
        return torch.device(name)
    if name == "cpu":
        return torch.device("cpu")
    raise InputError(f"unknown device {device!r}", hint="choose one of: cpu, cuda, cuda:N, auto")


def configure_threads(threads: int | None = None) -> int:
    """Apply CPU thread settings for torch (and BLAS, where not already fixed).

    CHGNet and the score model run about 2x faster on small CPUs with one BLAS thread
    and torch's intra-op pool set to the core count; over-subscription (BLAS threads x
    torch threads) is the usual cause of slow CPU runs. Returns the torch thread count.
    """
    n = threads or max(1, min(os.cpu_count() or 1, 8))
    for var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1, user_api="blas")
    except ImportError:  # threadpoolctl is optional; the env vars cover new processes
        pass
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
