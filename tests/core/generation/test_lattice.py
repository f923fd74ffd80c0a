"""Random Bravais lattices: exact volume, the right Bravais type, priors respected."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from chggen_flows.core.generation.lattice import (
    BRAVAIS_TYPES,
    LatticeSettings,
    conventional_parameters,
    sample_lattice,
)
from chggen_flows.errors import InputError

CENTRING = {"aP": "P", "mP": "P", "mC": "C", "oP": "P", "oC": "C", "oI": "I", "oF": "F",
            "tP": "P", "tI": "I", "hR": "R", "hP": "P", "cP": "P", "cI": "I", "cF": "F"}  # fmt: skip


@pytest.mark.parametrize("bravais", list(BRAVAIS_TYPES))
def test_every_type_has_exact_volume_and_its_own_symmetry(bravais):
    rng = np.random.default_rng(7)
    for volume in (37.5, 480.0, 2100.0):
        lattice, label = sample_lattice(volume, rng, bravais)
        assert label == bravais
        assert lattice.volume == pytest.approx(volume, rel=1e-12)
        assert np.linalg.det(lattice.matrix) > 0
        # a one-atom crystal has the full symmetry of its lattice (holohedry)
        sga = SpacegroupAnalyzer(Structure(lattice, ["Si"], [[0, 0, 0]]), symprec=1e-4)
        assert sga.get_crystal_system() == BRAVAIS_TYPES[bravais]
        assert sga.get_space_group_symbol()[0] == CENTRING[bravais]


def test_hexagonal_volume_is_sqrt3_over_2_a2c():
    # the authors' formula overestimated hexagonal volumes 9-34x
    lattice, _ = sample_lattice(300.0, np.random.default_rng(1), "hexagonal")
    a, b, c = lattice.abc
    assert a == pytest.approx(b)
    assert lattice.gamma == pytest.approx(120.0)
    assert np.sqrt(3) / 2 * a**2 * c == pytest.approx(300.0, rel=1e-12)


def test_conventional_parameters_stay_in_their_ranges():
    settings = LatticeSettings()
    rng = np.random.default_rng(3)
    for _ in range(200):
        a, b, c, alpha, beta, gamma = conventional_parameters("aP", rng, settings)
        assert {b / a, c / a} <= set(settings.ratios) and b != c
        assert all(75 <= x <= 105 for x in (alpha, beta, gamma))
        a, b, c, alpha, beta, gamma = conventional_parameters("mC", rng, settings)
        assert 60 <= beta <= 120 and alpha == gamma == 90
        _, b, c, *_ = conventional_parameters("oP", rng, settings)
        assert b != c  # never metrically tetragonal


def test_random_family_is_seeded_and_covers_all_systems():
    draws = [sample_lattice(100.0, np.random.default_rng(s))[1] for s in range(300)]
    again = [sample_lattice(100.0, np.random.default_rng(s))[1] for s in range(300)]
    assert draws == again
    assert {BRAVAIS_TYPES[t] for t in draws} == set(BRAVAIS_TYPES.values())
    assert set(draws) == set(BRAVAIS_TYPES)


def test_bad_family_or_volume_is_an_input_error():
    rng = np.random.default_rng(0)
    with pytest.raises(InputError):
        sample_lattice(100.0, rng, "pentagonal")
    with pytest.raises(InputError):
        sample_lattice(-1.0, rng)
    with pytest.raises(InputError):
        LatticeSettings(types=("xX",))
