"""The built-in structure sources, one module each; every module here is imported, so a
new source is one new file whose class is decorated with
:func:`~chggen_flows.core.sources.base.register_source`."""

from __future__ import annotations

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
