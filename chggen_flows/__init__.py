"""chggen-flows: crystal host-guided generation (CHGGen) as jobflow/FireWorks workflows."""

from __future__ import annotations

__version__ = "0.1.0"
