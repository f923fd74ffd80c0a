"""Host extraction, ladder refinement and classification on real (rattled) structures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from chggen_flows.core.symmetry import (
    FrameworkSettings,
    classify_symmetry,
    extract_framework,
    scaled_guest_counts,
)
from chggen_flows.errors import InputError

DATA = Path(__file__).parents[1] / "test_data" / "structures"


def _load(name: str) -> Structure:
    return Structure.from_file(DATA / f"{name}.cif")


def _rattle(structure: Structure, amplitude: float, seed: int) -> Structure:
    """Every atom moved by exactly ``amplitude`` Å in a random direction."""
    rattled = structure.copy()
    rng = np.random.default_rng(seed)
    shifts = rng.normal(size=(len(structure), 3))
    shifts *= amplitude / np.linalg.norm(shifts, axis=1, keepdims=True)
    for i, shift in enumerate(shifts):
        rattled.translate_sites([i], shift, frac_coords=False)
    return rattled


def _host_group(structure: Structure, guest: str) -> int:
    host = structure.copy()
    host.remove_species([guest])
    return SpacegroupAnalyzer(host, symprec=0.01).get_space_group_number()


@pytest.mark.parametrize(
    ("name", "guest"),
    [
        ("LiSi_mp-570363", "Li"),
        ("Li15Si4_mp-569849", "Li"),
        ("ZnP2_mp-11025", "Zn"),
        ("ZnS2_mp-1102743", "Zn"),
    ],
)
@pytest.mark.parametrize("amplitude", [0.05, 0.15, 0.3])
def test_ladder_recovers_the_host_space_group(name: str, guest: str, amplitude: float) -> None:
    structure = _load(name)
    expected = _host_group(structure, guest)
    result = extract_framework(_rattle(structure, amplitude, seed=42), [guest])
    assert result.ok, result.reason
    assert result.spacegroup_number == expected
    # The tolerance that worked is at least of the order of the rattle.
    assert result.symprec >= amplitude
    # The host is symmetrised: tight tolerance already finds the group.
    assert classify_symmetry(result.host, symprec=1e-3, angle_tolerance=1).number == expected
    assert guest not in {el.symbol for el in result.host.composition.elements}


@pytest.mark.parametrize(
    ("name", "guest"), [("LiSi_mp-570363", "Li"), ("ZnPS3_mp-3342", "Zn"), ("Li2S_mp-1125", "Li")]
)
@pytest.mark.parametrize("supercell", [(1, 1, 1), (2, 1, 1), (1, 2, 2)])
def test_guest_counts_keep_the_stoichiometry(name: str, guest: str, supercell) -> None:
    candidate = _load(name) * supercell
    result = extract_framework(candidate, [guest])
    assert result.ok, result.reason
    # Host + guests has exactly the candidate's composition, whatever the refined cell.
    filled = result.host.composition + {guest: result.guest_counts[guest]}
    assert filled.reduced_composition == candidate.composition.reduced_composition
    ratio = len(result.host) / (len(candidate) - candidate.composition[guest])
    assert result.guest_counts[guest] == pytest.approx(candidate.composition[guest] * ratio)
    if supercell != (1, 1, 1):  # the primitive host is smaller than the candidate's host
        assert ratio < 1


def test_guests_with_oxidation_states_are_removed() -> None:
    candidate = _load("LiSi_mp-570363")
    candidate.add_oxidation_state_by_element({"Li": 1, "Si": -1})
    result = extract_framework(candidate, ["Li"])
    assert result.ok and result.host.composition.reduced_formula == "Si"
    assert result.guest_counts == {"Li": len(result.host)}


def test_conventional_cell_when_primitive_cannot_hold_the_guests() -> None:
    # Li15Si16 in a doubled LiSi cell: the primitive host (Si8) would need 7.5 Li,
    # the conventional I4_1/a cell (Si16) holds exactly 15.
    candidate = _load("LiSi_mp-570363") * (2, 1, 1)
    candidate.remove_sites([candidate.indices_from_symbol("Li")[0]])
    result = extract_framework(candidate, ["Li"])
    assert result.ok, result.reason
    assert result.cell == "conventional"
    assert result.guest_counts == {"Li": 15}
    assert result.host.composition["Si"] == 16


def test_stoichiometry_that_cannot_be_kept_is_reported() -> None:
    candidate = _load("LiSi_mp-570363") * (2, 2, 1)
    candidate.remove_sites([candidate.indices_from_symbol("Li")[0]])  # Li31 Si32
    # Without supercells (the behaviour before them) neither refined cell holds 31 Li.
    result = extract_framework(candidate, ["Li"], FrameworkSettings(max_supercell=1))
    assert not result.ok and result.host is None
    assert "cannot be kept" in result.reason
    # 31 Li need 4 primitive cells (Si32); a smaller bound reports that.
    result = extract_framework(candidate, ["Li"], FrameworkSettings(max_supercell=3))
    assert not result.ok and "4 primitive cells, more than max_supercell 3" in result.reason
    result = extract_framework(candidate, ["Li"])
    assert result.ok and result.cell == "supercell" and result.supercell == 4
    assert result.guest_counts == {"Li": 31} and result.host.composition["Si"] == 32


def test_scaled_guest_counts_detects_merged_atoms() -> None:
    from pymatgen.core import Composition

    counts, reason = scaled_guest_counts(Composition("P2S6"), Composition("P2S5"), {"Zn": 2})
    assert counts is None and "host composition" in reason
    counts, reason = scaled_guest_counts(Composition("P4S12"), Composition("P2S6"), {"Zn": 4})
    assert counts == {"Zn": 2} and reason is None


def test_failures_are_reported_not_raised() -> None:
    li2s = _load("Li2S_mp-1125")
    assert "no guest atoms" in extract_framework(li2s, ["Zn"]).reason
    lithium_only = li2s.copy()
    lithium_only.remove_species(["S"])
    assert "only guest atoms" in extract_framework(lithium_only, ["Li"]).reason
    # A strongly rattled host with a ladder that stops early stays P1: rejected.
    rattled = _rattle(_load("ZnP2_mp-11025"), 0.3, seed=1)
    result = extract_framework(rattled, ["Zn"], FrameworkSettings(ladder=((0.01, 1),)))
    assert not result.ok and "P1" in result.reason
    with pytest.raises(InputError):
        extract_framework(li2s, ["Xx"])
    with pytest.raises(InputError):
        FrameworkSettings(ladder=())


def test_reject_list_is_applied() -> None:
    structure = _load("ZnP2_mp-11025")
    expected = _host_group(structure, "Zn")
    short = FrameworkSettings(ladder=((0.1, 10), (0.2, 15)), reject_spacegroups=(expected,))
    result = extract_framework(structure, ["Zn"], short)
    assert not result.ok and f"({expected}) is rejected" in result.reason
    # With the full ladder a larger tolerance finds another (super)group instead.
    full = extract_framework(structure, ["Zn"], FrameworkSettings(reject_spacegroups=(expected,)))
    assert full.ok and full.spacegroup_number != expected and full.symprec > 0.2


def test_classify_symmetry() -> None:
    structure = _load("ZnP2_mp-11025")
    info = classify_symmetry(structure)
    assert info.number == SpacegroupAnalyzer(structure, 0.01).get_space_group_number()
    assert info.symmetric and info.crystal_system == "tetragonal"
    rattled = classify_symmetry(_rattle(structure, 0.3, seed=3))
    assert rattled.number == 1 and not rattled.symmetric


def test_settings_accept_lists_and_check_rungs_and_groups() -> None:
    """YAML gives lists: they become tuples (the settings stay hashable and equal)."""
    from_lists = FrameworkSettings(ladder=[[0.1, 10], [0.5, 15]], reject_spacegroups=[1, 2])
    assert from_lists == FrameworkSettings(ladder=((0.1, 10), (0.5, 15)), reject_spacegroups=(1, 2))
    assert hash(from_lists) == hash(
        FrameworkSettings(ladder=((0.1, 10), (0.5, 15)), reject_spacegroups=(1, 2))
    )
    with pytest.raises(InputError, match="pair"):
        FrameworkSettings(ladder=((0.1, 10, 3),))
    with pytest.raises(InputError, match="positive tolerances"):
        FrameworkSettings(ladder=((0.1, 0),))
    with pytest.raises(InputError, match="1-230"):
        FrameworkSettings(reject_spacegroups=(0,))
