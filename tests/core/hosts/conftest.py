"""Known structures for the host tests (real MP rows, see tests/test_data/hosts/README.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from chggen_flows.core.sources import SourceFilter, load_structures

DATA = Path(__file__).parents[2] / "test_data" / "hosts"
TEMPLATE_FILES = [DATA / "mp20_templates.csv", DATA / "mpts52_templates.csv"]
DISORDERED_CIF = DATA / "Li0.5CoO2_from_mp-22526.cif"


@pytest.fixture(scope="session")
def templates_without_zn():
    """Every test template except the Zn compounds (the honest-benchmark filter)."""
    return load_structures(TEMPLATE_FILES, SourceFilter.build(exclude_elements=["Zn"]))


@pytest.fixture(scope="session")
def licoo2():
    (entry,) = load_structures(TEMPLATE_FILES[0], SourceFilter.build(material_ids="mp-22526"))
    return entry.structure
