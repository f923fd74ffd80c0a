"""Count the calls that force a device-to-host synchronisation.

On a GPU every one of these stalls the host until the device has finished all queued
work, so a sampling loop that makes them on every model call cannot keep the GPU busy.
On the CPU nothing stalls, but the same Python-level calls are made: counting them
on the CPU is what lets a test without a GPU pin the number of syncs a GPU would see.
A call made from inside another counted call is counted once.
"""

from __future__ import annotations

import contextlib
import functools
from collections import Counter
from collections.abc import Iterator

import torch
from torch.overrides import TorchFunctionMode

# Tensor methods whose result lives on the host (or whose size depends on the data)
_TENSOR_METHODS = (
    "item", "tolist", "cpu", "numpy", "__bool__", "__int__", "__float__", "__index__",
    "nonzero", "masked_select", "unique",
)  # fmt: skip
# torch functions of the same kind
_TORCH_FUNCTIONS = ("nonzero", "argwhere", "masked_select", "unique")


def _holds_tensor(data: object) -> bool:
    if isinstance(data, torch.Tensor):
        return True
    if isinstance(data, (list, tuple)):
        return any(_holds_tensor(x) for x in data)
    return False


def _is_bool_mask(index: object) -> bool:
    if isinstance(index, torch.Tensor):
        return index.dtype == torch.bool
    if isinstance(index, tuple):
        return any(_is_bool_mask(i) for i in index)
    return False


class SyncCounter:
    """Counts host syncs by kind while active (see :func:`count_host_syncs`)."""

    def __init__(self) -> None:
        self.by_kind: Counter[str] = Counter()
        self._depth = 0

    @property
    def total(self) -> int:
        """Syncs counted so far."""
        return sum(self.by_kind.values())

    def wrap(self, kind: str, fn, counts=lambda *a, **k: True):
        """``fn`` counting one ``kind`` sync per outermost call for which ``counts`` holds."""

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            return self.call(kind if counts(*args, **kwargs) else None, fn, args, kwargs)

        return wrapper

    def call(self, kind: str | None, fn, args, kwargs):
        """Run ``fn``, counting one ``kind`` sync if it is the outermost counted call."""
        if kind is not None and self._depth == 0:
            self.by_kind[kind] += 1
        self._depth += 1
        try:
            return fn(*args, **kwargs)
        finally:
            self._depth -= 1


@contextlib.contextmanager
def count_host_syncs() -> Iterator[SyncCounter]:
    """Instrument torch (and vesin-torch) while the block runs.

    Counted: the tensor-to-host methods (``item``, ``tolist``, ``cpu``, ``numpy``,
    ``bool``/``int``/``float``/``index`` conversions), data-dependent shapes
    (``nonzero``, boolean-mask indexing, ``masked_select``, ``unique``,
    ``repeat_interleave`` without ``output_size``), ``torch.tensor`` built from tensor
    data, and every vesin-torch ``NeighborList.compute`` as one (its C++ code reads the
    number of pairs; on CUDA it syncs several times).
    """
    counter = SyncCounter()
    saved: list[tuple[object, str, object]] = []

    def patch(owner: object, name: str, replacement: object) -> None:
        # only Python-level attributes (modules, Python classes) are patched: setting and
        # restoring a dunder on torch.Tensor would change its C type slots for good
        # (0-d tensors then pass for sequences in torch.tensor)
        saved.append((owner, name, getattr(owner, name)))
        setattr(owner, name, replacement)

    patch(
        torch,
        "tensor",
        counter.wrap(
            "torch.tensor(tensor data)", torch.tensor, lambda data, *a, **k: _holds_tensor(data)
        ),
    )
    try:
        from vesin_torch import NeighborList

        patch(NeighborList, "compute", counter.wrap("vesin compute", NeighborList.compute))
    except ImportError:  # pragma: no cover - vesin-torch is a dependency
        pass
    try:
        with _CountingMode(counter):
            yield counter
    finally:
        for owner, name, original in reversed(saved):
            setattr(owner, name, original)


class _CountingMode(TorchFunctionMode):
    """Sees every torch function and Tensor method call without patching torch."""

    def __init__(self, counter: SyncCounter) -> None:
        super().__init__()
        self.counter = counter

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        kind = None
        if name in _TENSOR_METHODS or name in _TORCH_FUNCTIONS:
            kind = name
        elif name == "__getitem__" and len(args) > 1 and _is_bool_mask(args[1]):
            kind = "boolean mask index"
        elif name == "repeat_interleave":
            repeats = args[1] if len(args) > 1 else kwargs.get("repeats")
            if isinstance(repeats, torch.Tensor) and kwargs.get("output_size") is None:
                kind = "repeat_interleave"
        return self.counter.call(kind, func, args, kwargs)
