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
