"""Known compounds of a system from the shipped reference sets."""

from __future__ import annotations

import pytest

from chggen_flows.core.analysis.references import shipped_structures
from chggen_flows.errors import ReferenceDataError


def test_compounds_of_a_system_and_its_subsystems():
    structures = shipped_structures(["Zn", "P", "S"])
    formulas = {s.composition.reduced_formula for s in structures}
    assert {"ZnPS3", "ZnS", "P2S7"} <= formulas
    assert all(len(s.composition.elements) >= 2 for s in structures)
    assert all({el.symbol for el in s.composition.elements} <= {"Zn", "P", "S"} for s in structures)
    with_elements = shipped_structures(["Li", "Si"], compounds_only=False)
    assert {"Li", "Si"} <= {s.composition.reduced_formula for s in with_elements}


def test_unknown_system_raises():
    with pytest.raises(ReferenceDataError, match="Cu-O"):
        shipped_structures(["Cu", "O"])
