"""Coordination numbers and the generated-vs-reference locality comparison."""

from __future__ import annotations

import numpy as np
import pytest

from chggen_flows.core.analysis import (
    METHODS,
    compare_locality,
    coordination_numbers,
    coordination_stats,
)
from chggen_flows.errors import InputError
from tests.core.analysis.test_rdf import rocksalt, zincblende


@pytest.mark.parametrize("method", METHODS)
def test_known_coordination(method):
    assert coordination_numbers(zincblende(), method) == [4.0] * 8
    assert coordination_numbers(rocksalt(), method) == [6.0] * 8


def test_stats_group_by_element():
    stats = coordination_stats([zincblende(), rocksalt()], "cutoff")
    assert set(stats.cn) == {"S", "Zn"}
    assert stats.mean() == {"S": 5.0, "Zn": 5.0}
    hist = stats.histogram("Zn")
    assert hist[4] == pytest.approx(0.5) and hist[6] == pytest.approx(0.5)
    assert hist.sum() == pytest.approx(1.0)


def test_supercell_vs_reference_is_identical():
    ref = zincblende().get_primitive_structure()
    result = compare_locality([ref * (2, 2, 2)], [ref])
    assert all(d == pytest.approx(0.0, abs=1e-12) for d in result.rdf_distance.values())
    assert result.cn_mean_shift == {"S": 0.0, "Zn": 0.0}
    assert result.cn_wasserstein == {"S": 0.0, "Zn": 0.0}
    for key in result.generated.g:
        np.testing.assert_allclose(result.generated.g[key], result.reference.g[key], atol=1e-9)


def test_different_structure_is_detected():
    result = compare_locality([rocksalt()], [zincblende()], method="crystalnn")
    assert result.cn_mean_shift == {"S": 2.0, "Zn": 2.0}
    assert result.cn_wasserstein["Zn"] == pytest.approx(2.0)
    assert min(result.rdf_distance.values()) > 0.3
    summary = result.to_dict()
    assert summary["rdf_distance"].keys() == {"S-S", "S-Zn", "Zn-Zn"}
    assert summary["cn_mean_generated"] == {"S": 6.0, "Zn": 6.0}
    assert summary["r_max"] == pytest.approx(6.0)


def test_errors():
    with pytest.raises(InputError):
        compare_locality([], [zincblende()])
    with pytest.raises(InputError, match="Unknown coordination method"):
        coordination_stats([zincblende()], "guess")
