"""Device selection and CPU thread settings shared by the torch-based stages.

torch is imported inside the functions: the settings and campaign specs validate
device names with :func:`check_device_name` without paying for importing torch.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Literal

from chggen_flows.errors import InputError

if TYPE_CHECKING:
    import torch

DeviceName = Literal["cpu", "cuda", "auto"]
# every spelling a device setting accepts (case-insensitive)
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?", re.IGNORECASE)
DEVICE_HINT = "choose one of: cpu, cuda, cuda:N (N = GPU index, from 0), auto"


def check_device_name(value: str) -> str:
    """``value`` if it is a device name (``auto``, ``cpu``, ``cuda``, ``cuda:N``).

    Only the spelling: whether the machine that runs the job has that GPU is checked
    there, by :func:`resolve_device`. Raises :class:`InputError` (a ``ValueError``, so
    pydantic validators can call it) otherwise.
    """
    if not isinstance(value, str) or not DEVICE_PATTERN.fullmatch(value.strip()):
        raise InputError(f"unknown device {value!r}", hint=DEVICE_HINT)
    return value.strip()


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` into a :class:`torch.device`.

    ``"auto"`` picks CUDA when a GPU is visible, else the CPU. Asking for CUDA on a
    machine without a GPU, or for a GPU index the machine does not have, is a user
    error, not a silent fallback.
    """
    import torch

    if isinstance(device, torch.device):
        if device.type == "cuda":
            _check_cuda(str(device), device.index)
        return device
    name = check_device_name(device or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    index = int(name.split(":")[1]) if ":" in name else None
    _check_cuda(name, index)
    return torch.device("cuda", index) if index is not None else torch.device("cuda")


def _check_cuda(name: str, index: int | None) -> None:
    """InputError unless a CUDA GPU (with ``index``, if given) is visible."""
    import torch

    if not torch.cuda.is_available():
        raise InputError(
            f"device {name!r} was requested but no CUDA GPU is visible",
            hint="use --device cpu (or auto), or install a CUDA build of torch",
        )
    count = torch.cuda.device_count()
    if index is not None and index >= count:
        visible = "cuda:0" if count == 1 else f"cuda:0 to cuda:{count - 1}"
        raise InputError(
            f"device {name!r} was requested but this machine has {count} visible GPU(s)",
            hint=f"use {visible} (or cuda, or auto); CUDA_VISIBLE_DEVICES renumbers GPUs from 0",
        )


def configure_threads(threads: int | None = None) -> int:
    """Apply CPU thread settings for torch (and BLAS, where not already fixed).

    CHGNet and the score model run about 2x faster on small CPUs with one BLAS thread
    and torch's intra-op pool set to the core count; over-subscription (BLAS threads x
    torch threads) is the usual cause of slow CPU runs. Returns the torch thread count.
    """
    import torch

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
