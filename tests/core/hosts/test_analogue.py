"""Analogue hosts on real structures: matching, skipping with reasons, ranking, substitution."""

from __future__ import annotations

import pytest
from pymatgen.core import Composition

from chggen_flows.core.hosts import (
    AnalogueTarget,
    find_analogue_hosts,
    framework_matches,
    substitute,
)
from chggen_flows.core.hosts.analogue import SkippedTemplate
from chggen_flows.errors import InputError

V0 = 24.0  # Å^3/atom, about ZnPS3's


def test_target_framework_and_default_guests():
    target = AnalogueTarget.build("ZnP2S6", 2)
    assert target.guests == ("Zn",)
    assert target.framework.formula == "P2 S6"
    assert target.guest_counts == {"Zn": 2}
    assert AnalogueTarget.build("Li5Si2").guests == ("Li",)
    with pytest.raises(InputError, match="not in"):
        AnalogueTarget.build("ZnPS3", guests=["Li"])
    with pytest.raises(InputError, match="no framework"):
        AnalogueTarget.build("ZnS", guests=["Zn", "S"])


def test_framework_rule():
    target = AnalogueTarget.build("ZnP2S6")
    assert framework_matches(target, Composition("Cd2P2S6"))[0]
    assert framework_matches(target, Composition("Na4P2S6"))[0]
    assert framework_matches(target, Composition("AgBiP2S6"))[0]
    ok, why = framework_matches(target, Composition("Zn3P2S8"))
    assert not ok and "not PS3" in why
    ok, why = framework_matches(target, Composition("P2S6Cl2"))
    assert not ok and "Cl" in why  # an anion is never exchangeable
    assert not framework_matches(target, Composition("CdS"))[0]


def test_p2s6_frameworks_found_for_znp2s6(templates_without_zn):
    search = find_analogue_hosts(AnalogueTarget.build("ZnP2S6", 1), templates_without_zn, v0=V0)
    found = {h.template["formula"] for h in search.hosts}
    # the CdPS3-type (Cd2P2S6) and other A_x P2S6 frameworks of the test data
    assert {"CdPS3", "NiPS3", "HgPS3", "KPS3"} <= found
    for host in search.hosts:
        assert host.seed.host.composition.reduced_formula == "PS3"
        assert host.seed.host.composition["P"] == 2  # Z = 1: one P2S6
        assert host.seed.guests == {"Zn": 1}
        assert host.seed.host.volume == pytest.approx(V0 * 9)
        assert host.template["material_id"].startswith("mp-")
        assert host.template["spacegroup_number"] >= 1
        assert host.seed.info["removed"]  # the exchangeable cations were stripped
    cdps3 = next(h for h in search.hosts if h.template["formula"] == "CdPS3")
    assert cdps3.template["material_id"] == "mp-5328"
    assert cdps3.seed.info["removed"] == {"Cd": 2}
    # LiCoO2, Cu3PS4 (PS4) and P2S7 never match P2S6
    used = {h.template["formula"] for h in search.hosts} | {s.formula for s in search.skipped}
    assert not {"LiCoO2", "Cu3PS4", "P2S7"} & used


def test_excluded_element_never_used(templates_without_zn):
    for composition in ("ZnP2S6", "Zn2P2S7", "ZnPS3"):
        for z in (1, 2):
            search = find_analogue_hosts(
                AnalogueTarget.build(composition, z), templates_without_zn, v0=V0
            )
            templates = [h.entry for h in search.hosts]
            assert not any("Zn" in e.elements for e in templates)
            assert not any("Zn" in s.formula for s in search.skipped)


def test_p2s7_frameworks_for_zn2p2s7(templates_without_zn):
    search = find_analogue_hosts(AnalogueTarget.build("Zn2P2S7", 1), templates_without_zn, v0=V0)
    found = {h.template["formula"] for h in search.hosts}
    assert {"CsVP2S7", "KInP2S7", "KCrP2S7"} <= found
    assert all(h.seed.guests == {"Zn": 2} for h in search.hosts)
    # P2S7 (mp-1006118) holds two P2S7 units: it cannot take Z = 1, and says so
    (p2s7,) = [s for s in search.skipped if s.formula == "P2S7"]
    assert "not a whole multiple" in p2s7.reason


def test_template_that_cannot_take_the_guest_count_is_skipped(templates_without_zn):
    # every PS3 template holds P2S6 dimers: ZnPS3 with Z = 1 (one PS3) fits none
    search = find_analogue_hosts(AnalogueTarget.build("ZnPS3", 1), templates_without_zn, v0=V0)
    assert search.hosts == []
    assert {"CdPS3", "NiPS3"} <= {s.formula for s in search.skipped}
    assert all("Z = 1 is not a whole multiple" in s.reason for s in search.skipped)
    # with Z = 2 the same templates serve
    search = find_analogue_hosts(AnalogueTarget.build("ZnPS3", 2), templates_without_zn, v0=V0)
    assert "CdPS3" in {h.template["formula"] for h in search.hosts}


def test_supercell_when_z_is_a_multiple(templates_without_zn):
    search = find_analogue_hosts(
        AnalogueTarget.build("ZnP2S6", 2), templates_without_zn, v0=V0, max_templates=None
    )
    cdps3 = next(h for h in search.hosts if h.template["formula"] == "CdPS3")
    assert cdps3.seed.host.composition["P"] == 4
    assert sorted(cdps3.seed.info["supercell"]) == [1, 1, 2]
    assert cdps3.seed.guests == {"Zn": 2}


def test_strain_limit_skips_with_reason(templates_without_zn):
    search = find_analogue_hosts(
        AnalogueTarget.build("ZnP2S6", 1), templates_without_zn, v0=40.0, max_linear_strain=0.05
    )
    assert search.hosts == []
    assert any("scaled by" in s.reason for s in search.skipped)


def test_cap_prefers_diverse_space_groups(templates_without_zn):
    target = AnalogueTarget.build("ZnPS3", 2)
    everything = find_analogue_hosts(target, templates_without_zn, v0=V0, max_templates=None)
    capped = find_analogue_hosts(target, templates_without_zn, v0=V0, max_templates=3)
    assert len(capped.hosts) == 3 < len(everything.hosts)
    groups = [h.template["spacegroup_number"] for h in capped.hosts]
    assert len(set(groups)) == 3
    assert [h.rank for h in capped.hosts] == [0, 1, 2]
    beyond = [s for s in capped.skipped if "max_templates" in s.reason]
    assert len(beyond) == len(everything.hosts) - 3
    # charge-matched templates (A2+ on P2S6 4-, as in ZnPS3) come first
    assert capped.hosts[0].seed.info["charge_match"] is True


def test_plain_substitution(templates_without_zn):
    search = find_analogue_hosts(AnalogueTarget.build("ZnPS3", 2), templates_without_zn, v0=V0)
    cdps3 = next(h for h in search.hosts if h.template["formula"] == "CdPS3")
    exchanged = substitute(cdps3)
    assert exchanged.composition.reduced_formula == "ZnPS3"
    assert exchanged.lattice == cdps3.seed.host.lattice  # same cell and volume as inpainting
    zn_sites = [s for s in exchanged if s.specie.symbol == "Zn"]
    cd_sites = [s for s in cdps3.template_cell if s.specie.symbol == "Cd"]
    assert [s.frac_coords.tolist() for s in zn_sites] == [s.frac_coords.tolist() for s in cd_sites]
    # ZnP2S6 has one Zn per P2S6, Cd2P2S6 two Cd: no one-for-one exchange
    search = find_analogue_hosts(AnalogueTarget.build("ZnP2S6", 1), templates_without_zn, v0=V0)
    cdps3 = next(h for h in search.hosts if h.template["formula"] == "CdPS3")
    skipped = substitute(cdps3)
    assert isinstance(skipped, SkippedTemplate) and "one-for-one" in skipped.reason


def test_template_guest_start_uses_the_template_cation_sites(templates_without_zn):
    from chggen_flows.core.hosts import template_guest_start

    search = find_analogue_hosts(AnalogueTarget.build("ZnPS3", 2), templates_without_zn, v0=V0)
    cdps3 = next(h for h in search.hosts if h.template["formula"] == "CdPS3")
    start = template_guest_start(cdps3, sigma=0.5, seed=0)
    cd_sites = [s.frac_coords.tolist() for s in cdps3.template_cell if s.specie.symbol == "Cd"]
    assert start.species == ("Zn", "Zn") and start.sigma == 0.5
    assert sorted(map(list, start.frac_coords)) == sorted(cd_sites)  # as many sites as guests
    # ZnP2S6 wants one Zn per P2S6, Cd2P2S6 has two Cd: a subset, which the seed picks
    search = find_analogue_hosts(AnalogueTarget.build("ZnP2S6", 1), templates_without_zn, v0=V0)
    cdps3 = next(h for h in search.hosts if h.template["formula"] == "CdPS3")
    cd_sites = [s.frac_coords.tolist() for s in cdps3.template_cell if s.specie.symbol == "Cd"]
    picks = {template_guest_start(cdps3, 0.5, seed).frac_coords for seed in range(12)}
    assert {len(p) for p in picks} == {1} and len(picks) == 2
    assert all(list(p[0]) in cd_sites for p in picks)
    # the start travels with the host structure, which inpainting reads
    host = template_guest_start(cdps3, 0.5, 0).attach(cdps3.seed.host)
    assert host.properties["guest_start"]["species"] == ["Zn"] and "guest_start" not in (
        cdps3.seed.host.properties
    )


def test_no_template_guest_start_without_enough_sites(templates_without_zn):
    from chggen_flows.core.hosts import template_guest_start

    # the binary P2S7 serves Zn2P2S7 as a framework but has no cation to start from
    search = find_analogue_hosts(AnalogueTarget.build("Zn2P2S7", 2), templates_without_zn, v0=V0)
    p2s7 = next(h for h in search.hosts if h.template["formula"] == "P2S7")
    assert template_guest_start(p2s7, 0.5, 0) == "0 template cation site(s) for 4 guest(s)"


def test_rattled_substitution_moves_only_the_exchanged_atoms(templates_without_zn):
    import numpy as np

    search = find_analogue_hosts(AnalogueTarget.build("ZnPS3", 2), templates_without_zn, v0=V0)
    cdps3 = next(h for h in search.hosts if h.template["formula"] == "CdPS3")
    plain = substitute(cdps3)
    rattled = substitute(cdps3, rattle=0.1, seed=3)
    assert rattled == substitute(cdps3, rattle=0.1, seed=3)  # seeded
    moved = np.linalg.norm(rattled.cart_coords - plain.cart_coords, axis=1)
    zn = np.array([site.specie.symbol == "Zn" for site in plain])
    assert np.all(moved[~zn] == 0) and np.all((moved[zn] > 0) & (moved[zn] < 0.8))
    assert rattled.composition == plain.composition
