"""The framework-failure benchmark's independent inversion check on known answers."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from tests.benchmarks.helpers import load_script


def test_inversion_tolerance_is_zero_on_centrosymmetric_crystals():
    script = load_script("framework_failures")
    rocksalt = Structure(Lattice.cubic(5.6), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    rocksalt.make_supercell([2, 1, 1])
    assert script.inversion_tolerance(rocksalt) == pytest.approx(0.0, abs=1e-9)


def test_inversion_tolerance_is_the_displacement_that_breaks_it():
    script = load_script("framework_failures")
    # N at the origin between two O related by inversion through it; one O moved
    # 0.3 Å along x: the best centre moves 0.075 Å, so N and the O pair each miss 0.15 Å
    # (the O-O midpoint alone would give 0.3 Å: the refinement finds the minimum)
    coords = [[0.0, 0.0, 0.0], [0.1, 0.1, 0.1], [-0.1, -0.1, -0.1]]
    trio = Structure(Lattice.cubic(6.0), ["N", "O", "O"], coords)
    assert script.inversion_tolerance(trio) == pytest.approx(0.0, abs=1e-9)
    trio.translate_sites([2], [0.3, 0.0, 0.0], frac_coords=False)
    assert script.inversion_tolerance(trio) == pytest.approx(0.15, abs=1e-4)
    # every atom of a centrosymmetric crystal moved 0.1 Å: an inversion still maps each
    # image within 0.2 Å of an atom
    rocksalt = Structure(Lattice.cubic(5.6), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    rocksalt.make_supercell([2, 2, 1])
    rng = np.random.default_rng(1)
    steps = rng.normal(size=(len(rocksalt), 3))
    steps *= 0.1 / np.linalg.norm(steps, axis=1, keepdims=True)
    for index, step in enumerate(steps):
        rocksalt.translate_sites([index], step, frac_coords=False)
    assert 0.0 < script.inversion_tolerance(rocksalt) <= 0.2 + 1e-9
