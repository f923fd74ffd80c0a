"""chggen-flows: crystal host-guided generation (CHGGen) as jobflow/FireWorks workflows."""

from __future__ import annotations

import importlib
import sys
from importlib.abc import Loader, MetaPathFinder
from importlib.machinery import ModuleSpec
from importlib.util import spec_from_loader

__version__ = "0.1.0"


class _Alias(Loader):
    """Loads ``name`` as the already importable module ``target`` (the same object)."""

    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: ModuleSpec):
        return importlib.import_module(self.target)

    def exec_module(self, module) -> None:  # the target module has run already
        pass


class _LegacyMakers(MetaPathFinder):
    """The makers install as ``chggen_flows.makers`` (``chggen_flows/makers`` links to the
    repository's ``makers/`` folder). Campaigns submitted before name their jobs
    ``makers.<stage>``: those names resolve to the same modules, so old campaigns can
    still be resumed and read."""

    def find_spec(self, name, path=None, target=None):
        if name == "makers" or name.startswith("makers."):
            return spec_from_loader(name, _Alias(f"chggen_flows.{name}"))
        return None


if not any(isinstance(finder, _LegacyMakers) for finder in sys.meta_path):
    sys.meta_path.insert(0, _LegacyMakers())
