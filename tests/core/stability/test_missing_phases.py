"""Hulls that know which known phases they lack, and flag the E_d values those phases
would lower (and only those)."""

from __future__ import annotations

import pytest
from monty.serialization import dumpfn
from pymatgen.core import Composition
from pymatgen.entries.computed_entries import ComputedEntry

from chggen_flows.core.stability import (
    EntriesFileReference,
    EntriesReference,
    compute_e_d,
    describe_hull,
    get_reference,
)
from chggen_flows.errors import InputError


def _entry(formula: str, e_form: float) -> ComputedEntry:
    comp = Composition(formula)
    # elements at 0 eV/atom, so the energy per atom is the formation energy
    return ComputedEntry(comp, e_form * comp.num_atoms, entry_id=formula)


def _hull_file(tmp_path, missing):
    """A-B hull: Li (0), LiSi (-0.2), Si (0); Li3Si lies between Li and LiSi."""
    path = tmp_path / "hull.json"
    entries = [_entry("Li", 0), _entry("Si", 0), _entry("LiSi", -0.2), _entry("LiSi2", -0.1)]
    dumpfn({"functional": "GGA_GGA+U", "entries": entries, "missing_phases": missing}, path)
    return path


def test_only_candidates_on_the_stretch_of_a_missing_phase_are_flagged(tmp_path):
    provider = EntriesFileReference(_hull_file(tmp_path, ["Li3Si"]))
    items = [
        ("Li5Si", 0.0),  # Li..LiSi stretch, Li-rich side of Li3Si: flagged
        ("Li3Si", 0.0),  # the missing composition itself: flagged
        ("Li2Si", 0.0),  # between Li3Si and LiSi, still on the Li..LiSi stretch: flagged
        ("LiSi", -0.2),  # a hull phase: its hull energy is its own, not flagged
        ("Li2Si3", 0.0),  # LiSi..LiSi2 stretch: not flagged
        ("LiSi4", 0.0),  # LiSi2..Si stretch: not flagged
    ]
    records = compute_e_d(items, provider)
    flagged = {r.formula for r in records if r.warning}
    assert flagged == {"Li5Si", "Li3Si", "Li2Si"}
    assert "lacks Li3Si" in records[0].warning and "too low" in records[0].warning


def test_a_hull_without_missing_phases_flags_nothing(tmp_path):
    provider = EntriesFileReference(_hull_file(tmp_path, []))
    records = compute_e_d([("Li5Si", 0.0), ("Li2Si", 0.0)], provider)
    assert all(r.warning is None for r in records)
    assert (
        EntriesReference([_entry("Li", 0), _entry("Si", 0)], "x", "GGA_GGA+U").missing_phases(
            ["Li", "Si"]
        )
        == []
    )


def test_missing_phases_are_read_from_a_file_and_checked(tmp_path):
    provider = EntriesFileReference(_hull_file(tmp_path, [{"formula": "Li6Si2", "note": "x"}]))
    assert provider.missing_phases(["Li", "Si"]) == [{"formula": "Li3Si", "note": "x"}]
    assert provider.missing_phases(["Li"]) == []
    with pytest.raises(InputError, match="missing phase"):
        EntriesFileReference(_hull_file(tmp_path, ["Xx3Qq"]))


def test_shipped_zn_p_s_hull_flags_znp2s6_but_not_zns_or_znps3():
    provider = get_reference("offline")
    summary = describe_hull(provider, ["Zn", "P", "S"])
    assert {"Zn3P2", "P2S5"} <= {m["formula"] for m in summary.missing}
    records = compute_e_d([("ZnP2S6", -3.9), ("ZnS", -2.0)], provider)
    assert records[0].warning is not None and "P4S10" in records[0].warning
    assert records[1].warning is None  # ZnS is a hull phase
    assert "lacks" in summary.line() and summary.reference == "offline-chgnet"


def test_shipped_li_si_hull_flags_only_the_li_rich_end():
    provider = get_reference("offline")
    records = compute_e_d([("Li5Si2", -3.0), ("LiSi", -3.9), ("Li43Si10", -2.6)], provider)
    assert [r.warning is not None for r in records] == [False, False, True]
