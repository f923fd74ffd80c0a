"""Host extraction, ladder refinement and classification on real (rattled) structures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from chggen_flows.core.symmetry import (
    FrameworkSettings,
    classify_symmetry,
    extract_framework,
    host_candidates,
    scaled_guest_counts,
)
from chggen_flows.core.symmetry.host_search import supercell_multiple
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


# --- Host search beyond the paper (issue 13): every rung, displacement, modes ------------

NO_BOUNDS = {"max_displacement": None, "max_rms": None, "max_strain": None}


def _antifluorite() -> Structure:
    """Li2O in its conventional cell (Li8 O4): without Li the host is fcc O, Fm-3m."""
    return Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(4.61), ["Li", "O"], [[0.25, 0.25, 0.25], [0, 0, 0]]
    )


@pytest.mark.parametrize(("amplitude", "first_group"), [(0.05, 14), (0.08, 14)])
def test_highest_recovers_fcc_where_the_first_rung_stops_low(amplitude, first_group) -> None:
    candidate = _rattle(_antifluorite(), amplitude, seed=0)
    # The paper's rule stops at the first rung, a monoclinic subgroup (today's answer).
    first = extract_framework(candidate, ["Li"])
    assert first.ok and first.spacegroup_number == first_group and first.rung == 0
    assert first == extract_framework(candidate, ["Li"], FrameworkSettings(mode="first"))
    settings = FrameworkSettings(mode="highest")
    best = extract_framework(candidate, ["Li"], settings)
    assert best.ok and best.spacegroup_number == 225 and best.spacegroup_symbol == "Fm-3m"
    assert settings.ladder[best.rung] == (best.symprec, best.angle_tolerance)
    # Every O moved by about the rattle, within the bounds; the lattice was not rattled.
    assert amplitude / 2 < best.rms_displacement <= best.max_displacement
    assert best.max_displacement <= min(settings.max_displacement, 2 * amplitude)
    assert best.rms_displacement <= settings.max_rms and best.lattice_strain < 1e-6
    assert (best.point_group_order, best.ops_per_atom) == (48, 48)
    # One O per primitive cell and the stoichiometry kept: 2 Li to inpaint.
    assert best.cell == "primitive" and best.supercell == 1
    assert len(best.host) == 1 and best.guest_counts == {"Li": 2}
    assert classify_symmetry(best.host, symprec=1e-3, angle_tolerance=1).number == 225
    assert best.ops_per_atom > first.ops_per_atom
    assert first.max_displacement < best.max_displacement


def test_fan_out_returns_distinct_groups_most_symmetric_first() -> None:
    candidate = _rattle(_antifluorite(), 0.15, seed=0)
    every = host_candidates(candidate, ["Li"], FrameworkSettings(mode="fan_out", max_hosts=10))
    groups = [r.spacegroup_number for r in every]
    assert len(groups) == len(set(groups)) >= 3 and groups[0] == 225
    assert all(r.ok and r.reason is None for r in every)
    ranks = [(-r.ops_per_atom, r.max_displacement) for r in every]
    assert ranks == sorted(ranks)
    three = host_candidates(candidate, ["Li"], FrameworkSettings(mode="fan_out", max_hosts=3))
    assert [r.spacegroup_number for r in three] == groups[:3]
    # extract_framework gives the first of them; "highest" is the same host.
    fan = extract_framework(candidate, ["Li"], FrameworkSettings(mode="fan_out", max_hosts=3))
    highest = host_candidates(candidate, ["Li"], FrameworkSettings(mode="highest"))
    assert len(highest) == 1 and highest[0] == fan == three[0]
    assert host_candidates(candidate, ["Li"]) == [extract_framework(candidate, ["Li"])]


def test_displacement_bound_rejects_a_collapsed_host() -> None:
    """fcc O with one O pushed 0.8 A off its site: tetragonal (P4mm, 99). The largest
    rungs make it hexagonal (P6/mmm) by moving an O almost 1 A: beyond the bound."""
    candidate = _antifluorite()
    [pushed] = [
        i
        for i, site in enumerate(candidate)
        if site.specie.symbol == "O" and np.allclose(site.frac_coords, [0.5, 0.5, 0])
    ]
    candidate.translate_sites([pushed], [0, 0, 0.8], frac_coords=False)
    bounded = FrameworkSettings(mode="fan_out", max_hosts=5)
    hosts = host_candidates(candidate, ["Li"], bounded)
    assert [r.spacegroup_number for r in hosts] == [99]
    assert hosts[0].max_displacement < 1e-6 and hosts[0].rung == 0
    unbounded = host_candidates(
        candidate, ["Li"], FrameworkSettings(mode="fan_out", max_hosts=5, **NO_BOUNDS)
    )
    assert unbounded[0].spacegroup_number == 191 and unbounded[-1].spacegroup_number == 99
    assert unbounded[0].max_displacement > bounded.max_displacement
    # Only the bounded host counts as the highest one.
    assert extract_framework(candidate, ["Li"], FrameworkSettings(mode="highest")) == hosts[0]
    # Nothing within a bound: a failure whose reason names the bound (fallback off).
    tight = FrameworkSettings(mode="highest", ladder=((1.5, 30), (2.0, 30)), fallback=False)
    result = extract_framework(candidate, ["Li"], tight)
    assert not result.ok and "more than max_displacement 0.6" in result.reason


@pytest.mark.parametrize("mode", ["highest", "fan_out"])
def test_no_rung_within_the_bounds_falls_back_to_the_papers_host(mode) -> None:
    """The case above that failed before (issue 26 item 5): with the fallback (default)
    the bounded modes give the paper's rule's host, marked, never a rejection."""
    candidate = _antifluorite()
    [pushed] = [
        i
        for i, site in enumerate(candidate)
        if site.specie.symbol == "O" and np.allclose(site.frac_coords, [0.5, 0.5, 0])
    ]
    candidate.translate_sites([pushed], [0, 0, 0.8], frac_coords=False)
    ladder = ((1.5, 30), (2.0, 30))
    paper = extract_framework(candidate, ["Li"], FrameworkSettings(mode="first", ladder=ladder))
    assert paper.ok and not paper.fallback
    hosts = host_candidates(candidate, ["Li"], FrameworkSettings(mode=mode, ladder=ladder))
    assert len(hosts) == 1
    (host,) = hosts
    assert host.ok and host.fallback
    assert host.spacegroup_number == paper.spacegroup_number and host.rung == paper.rung
    assert host.host == paper.host and host.guest_counts == paper.guest_counts
    assert "more than max_displacement 0.6" in host.reason


def test_strain_bound_keeps_a_tetragonal_lattice_tetragonal() -> None:
    """A one-atom host has no relative displacement: only its lattice can move."""
    candidate = Structure(Lattice.tetragonal(3.0, 3.6), ["Cu", "Li"], [[0, 0, 0], [0.5] * 3])
    best = extract_framework(candidate, ["Li"], FrameworkSettings(mode="highest"))
    assert best.spacegroup_number == 123 and best.lattice_strain < 1e-6
    loose = extract_framework(candidate, ["Li"], FrameworkSettings(mode="highest", **NO_BOUNDS))
    assert loose.spacegroup_number == 221 and loose.lattice_strain > 0.1
    assert loose.max_displacement < 1e-9  # why a displacement bound alone is not enough


def _li_half_tis2() -> Structure:
    """Li0.5TiS2: one Li per two primitive cells of the P-3m1 TiS2 host (Ti2 S4 Li)."""
    tis2 = Structure.from_spacegroup(
        "P-3m1", Lattice.hexagonal(3.41, 5.70), ["Ti", "S"], [[0, 0, 0], [1 / 3, 2 / 3, 0.25]]
    )
    candidate = tis2 * (2, 1, 1)
    candidate.append("Li", [0, 0, 0.5])
    return candidate


@pytest.mark.parametrize("mode", ["first", "highest"])
@pytest.mark.parametrize("amplitude", [0.0, 0.1])
def test_dilute_guests_get_the_smallest_supercell_that_holds_them(mode, amplitude) -> None:
    candidate = _rattle(_li_half_tis2(), amplitude, seed=2)
    # The primitive and conventional cells (Ti S2) would need half a Li: rejected before.
    old = extract_framework(candidate, ["Li"], FrameworkSettings(max_supercell=1))
    assert not old.ok and "cannot be kept" in old.reason
    result = extract_framework(candidate, ["Li"], FrameworkSettings(mode=mode))
    assert result.ok, result.reason
    assert result.cell == "supercell" and result.supercell == 2
    assert result.guest_counts == {"Li": 1}
    assert result.host.composition.formula == "Ti2 S4"
    filled = result.host.composition + {"Li": 1}
    assert filled.reduced_composition == candidate.composition.reduced_composition
    # The doubled cell keeps the host's full point group: c doubled, not a.
    a, b, c = result.host.lattice.abc
    assert a == pytest.approx(3.41) and b == pytest.approx(3.41) and c == pytest.approx(11.4)
    assert classify_symmetry(result.host, symprec=1e-3, angle_tolerance=1).number == 164


def test_supercell_multiple() -> None:
    assert supercell_multiple(3, 6, {"Li": 1}) == (2, {"Li": 1})
    assert supercell_multiple(8, 32, {"Li": 31}) == (4, {"Li": 31})
    assert supercell_multiple(2, 4, {"Li": 1, "Na": 2}) == (2, {"Li": 1, "Na": 2})
    assert supercell_multiple(4, 4, {"Li": 3}) == (1, {"Li": 3})


def test_new_settings_are_checked() -> None:
    for bad, match in [
        ({"mode": "best"}, "unknown mode"),
        ({"max_hosts": 0}, "max_hosts must be >= 1"),
        ({"max_hosts": True}, "max_hosts must be >= 1"),
        ({"max_hosts": 2.0}, "max_hosts must be >= 1"),
        ({"max_supercell": 0}, "max_supercell must be >= 1"),
        ({"max_displacement": 0}, "max_displacement must be > 0"),
        ({"max_displacement": -0.5}, "max_displacement must be > 0"),
        ({"max_displacement": float("nan")}, "max_displacement must be > 0"),
        ({"max_rms": -1}, "max_rms must be > 0"),
        ({"max_strain": 0}, "max_strain must be > 0"),
        ({"max_strain": "0.1"}, "max_strain must be > 0"),
    ]:
        with pytest.raises(InputError, match=match):
            FrameworkSettings(**bad)
    unbounded = FrameworkSettings(mode="fan_out", max_hosts=1, **NO_BOUNDS)
    assert unbounded.max_displacement is None and hash(unbounded)
    assert FrameworkSettings().mode == "first"  # the paper's rule stays the default
