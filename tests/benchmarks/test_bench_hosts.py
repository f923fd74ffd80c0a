"""The host benchmark's disordered cases are what its docstring says."""

from __future__ import annotations

import pytest

from tests.benchmarks.helpers import load_script


def test_disordered_cases():
    script = load_script("bench_hosts")
    cases = script.disordered_cases()
    li, mixed = cases.values()
    assert li.composition["Li"] == pytest.approx(1.5)  # 3 Li sites at 0.5
    assert li.composition["Co"] == 3
    assert mixed.composition["Li"] == pytest.approx(3.0)  # Li back to full occupancy
    assert mixed.composition["Co"] == pytest.approx(1.5)
    assert mixed.composition["Ni"] == pytest.approx(1.5)
    assert not mixed.is_ordered


def test_structure_files_are_the_shared_mp_sets():
    script = load_script("bench_hosts")
    files = script.structure_files()
    if not files:
        pytest.skip("the shared MP structure sets are not on this machine")
    assert len(files) == 4
    assert all("mp_20_biternary" in f or "mpts_52" in f for f in files)
