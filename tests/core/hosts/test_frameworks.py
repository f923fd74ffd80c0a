"""Random symmetric frameworks of the host species at the campaign volume."""

from __future__ import annotations

import pytest

from chggen_flows.core.hosts import AnalogueTarget, random_frameworks
from chggen_flows.core.symmetry import NOT_SYMMETRIC


def test_si_frameworks_for_li5si2():
    target = AnalogueTarget.build("Li5Si2", 2)
    seeds = random_frameworks(target, 3, v0=20.0, seed=4)
    assert len(seeds) == 3
    for seed in seeds:
        assert seed.host.composition.formula == "Si4"
        assert seed.guests == {"Li": 10}
        assert seed.host.volume == pytest.approx(14 * 20.0)  # guests' volume included
        assert seed.kind == "random_framework"
        assert seed.info["framework_spacegroup_requested"] not in NOT_SYMMETRIC
    assert len({s.info["seed"] for s in seeds}) == 3
    again = random_frameworks(target, 3, v0=20.0, seed=4)
    assert [s.host for s in again] == [s.host for s in seeds]  # reproducible


def test_frameworks_whose_guests_start_at_pyxtal_sites():
    from chggen_flows.core.generation.inpaint import GuestStart
    from chggen_flows.core.symmetry import classify_symmetry

    target = AnalogueTarget.build("Li5Si2", 1)
    seeds = random_frameworks(target, 3, v0=20.0, seed=4, guest_start_sigma=0.3)
    for seed in seeds:
        start = GuestStart.of(seed.host)
        assert seed.host.composition.formula == "Si2" and seed.guests == {"Li": 5}
        assert start.species == ("Li",) * 5 and start.sigma == 0.3
        assert seed.info["guest_start_sigma"] == 0.3
        # host + started guests is PyXtal's whole symmetric structure
        full = seed.host.copy()
        for coords in start.frac_coords:
            full.append("Li", coords)
        assert classify_symmetry(full, 0.1, 5.0).number not in NOT_SYMMETRIC
        assert full.volume == pytest.approx(7 * 20.0)
