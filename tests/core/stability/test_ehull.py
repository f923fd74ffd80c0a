"""E_d against the shipped CHGNet reference hulls, checked against pymatgen directly."""

from __future__ import annotations

import pytest
from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.core import Composition
from pymatgen.entries.computed_entries import ComputedEntry

from chggen_flows.core.stability import (
    EntriesReference,
    OfflineCHGNetReference,
    compute_e_d,
    get_reference,
)
from chggen_flows.errors import InputError, ReferenceDataError


@pytest.fixture(scope="module")
def offline():
    return get_reference("offline")


@pytest.mark.parametrize("system", [["Li", "Si"], ["Zn", "P", "S"], ["Li", "P", "S"]])
def test_reference_phases_match_an_independent_phase_diagram(offline, system):
    entries = offline.entries(system)
    assert {el.symbol for e in entries for el in e.composition.elements} == set(system)
    independent = PhaseDiagram(entries)  # built here, not through the provider
    records = compute_e_d([(e.composition, e.energy_per_atom) for e in entries], offline)
    stable = set(independent.stable_entries)
    metastable = 0
    for entry, record in zip(entries, records, strict=True):
        expected = independent.get_e_above_hull(entry)
        assert record.e_d == pytest.approx(expected, abs=1e-8)
        if entry in stable:
            assert record.e_d == pytest.approx(0.0, abs=1e-8)
        else:
            metastable += 1
            assert record.e_d > 0
        assert record.reference == "offline-chgnet"
        assert record.functional == "GGA_GGA+U"
    assert metastable > 0  # the sets hold polymorphs above the hull (ZnS, Si, S, P)


def test_candidate_below_the_hull_is_negative_and_decomposes(offline):
    diagram = PhaseDiagram(offline.entries(["Li", "Si"]))
    binary = next(
        e for e in diagram.stable_entries if len(e.composition.elements) == 2
    )  # a stable Li-Si compound of the CHGNet hull
    energy = binary.energy_per_atom - 0.05
    (record,) = compute_e_d([(binary.composition.reduced_composition, energy)], offline)
    assert record.e_d == pytest.approx(-0.05, abs=1e-8)
    candidate = PDEntry(binary.composition, energy * binary.composition.num_atoms)
    _, e_above = diagram.get_decomp_and_e_above_hull(candidate, allow_negative=True)
    assert record.e_d == pytest.approx(e_above, abs=1e-8)
    assert record.decomposition == {binary.composition.reduced_formula: pytest.approx(1.0)}


def test_decomposition_of_an_off_hull_composition(offline):
    diagram = PhaseDiagram(offline.entries(["Li", "Si"]))
    (record,) = compute_e_d([("Li2Si", -3.0)], offline)
    assert sum(record.decomposition.values()) == pytest.approx(1.0)
    assert record.e_hull_per_atom == pytest.approx(
        diagram.get_hull_energy_per_atom(Composition("Li2Si"))
    )
    assert len(record.decomposition) == 2  # between two hull phases


def test_phase_diagram_is_built_once_per_system(offline):
    provider = OfflineCHGNetReference()
    first = provider.phase_diagram(["Si", "Li"])
    assert provider.phase_diagram(["Li", "Si"]) is first
    assert provider.phase_diagram(["Li"]) is first  # a subsystem reuses the larger diagram


def test_missing_element_and_unknown_element_are_clear_errors(offline):
    with pytest.raises(ReferenceDataError, match="no set for the Cu-Li system"):
        compute_e_d([("Li2Cu", -2.0)], offline)
    li_si = EntriesReference(
        [ComputedEntry("Li", -1.9), ComputedEntry("Si", -5.4)], "li-si", "GGA_GGA+U"
    )
    with pytest.raises(ReferenceDataError, match="no elemental entry for Cu"):
        compute_e_d([("Li2Cu", -2.0)], li_si)
    with pytest.raises(ReferenceDataError, match="no set for the Li-Zn system"):
        compute_e_d([("LiZn", -2.0)], offline)  # Li and Zn are there, Li-Zn phases are not
    with pytest.raises(InputError):
        compute_e_d([("Xx2Si", -2.0)], offline)
    with pytest.raises(InputError, match="not finite"):
        compute_e_d([("LiSi", float("nan"))], offline)


def test_gga_and_r2scan_entries_are_never_mixed():
    entries = [
        ComputedEntry("Si", -5.4, parameters={"run_type": "GGA"}),
        ComputedEntry("Si", -23.4, parameters={"run_type": "r2SCAN"}),
    ]
    with pytest.raises(ReferenceDataError, match="never mixed"):
        EntriesReference(entries, "mixed", "GGA_GGA+U")
