"""A tiny shipped Li-Si reference set, for tests that build other potentials' hulls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from monty.serialization import dumpfn, loadfn

import chggen_flows.core.stability.references as references
from chggen_flows.core.stability.references import shipped_reference_files

#: Small cells of the shipped Li-Si set: another potential's hull is built from these
#: in seconds.
TINY_IDS = ("prototype-Li", "prototype-Si", "mp-1056579", "mp-570363")


def tiny_lisi_data() -> dict[str, Any]:
    """The shipped Li-Si reference set with only the :data:`TINY_IDS` entries."""
    data = loadfn(next(p for p in shipped_reference_files() if p.name == "Li-Si.json.gz"))
    data["entries"] = [e for e in data["entries"] if e.entry_id in TINY_IDS]
    return data


def ship_tiny_lisi(tmp_path: Path, monkeypatch) -> dict[str, Any]:
    """Make the tiny Li-Si set the only shipped one and give built hulls a private cache
    under ``tmp_path``; returns the set (its file is ``tmp_path/shipped/Li-Si.json.gz``)."""
    data = tiny_lisi_data()
    path = tmp_path / "shipped" / "Li-Si.json.gz"
    path.parent.mkdir()
    dumpfn(data, path)
    monkeypatch.setattr(references, "shipped_reference_files", lambda: [path])
    monkeypatch.setenv("CHGGEN_CACHE_DIR", str(tmp_path / "cache"))
    return data
