"""The batched cell-filter forces and FIRE step against ASE's own implementation."""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.filters import FrechetCellFilter
from ase.optimize import FIRE

from chggen_flows.core.relax.fire import (
    FireState,
    cell_generalised_forces,
    deformation,
    fire_step,
)


def _filter(rng: np.random.Generator, n: int) -> tuple[FrechetCellFilter, np.ndarray, np.ndarray]:
    """An ASE Frechet filter on a strained random cell with given forces and stress."""
    cell0 = np.diag([4.0, 5.0, 6.0]) + 0.3 * rng.normal(size=(3, 3))
    atoms = Atoms("Si" * n, positions=rng.uniform(0, 4, (n, 3)), cell=cell0, pbc=True)
    filt = FrechetCellFilter(atoms)
    log_def = 0.05 * rng.normal(size=(3, 3))
    x = filt.get_positions()
    # ASE's cell coordinates are n * logm(n * F) (a constant offset of n log n on the
    # diagonal, which does not change the forces or the steps).
    x[n:] = n * (log_def + np.log(n) * np.eye(3))
    filt.set_positions(x)
    forces = rng.normal(size=(n, 3))
    stress = rng.normal(size=6) * 0.01
    atoms.calc = SinglePointCalculator(atoms, energy=0.0, forces=forces, stress=stress)
    return filt, forces, stress


def test_cell_forces_match_ase() -> None:
    rng = np.random.default_rng(3)
    filters = [_filter(rng, n) for n in (2, 5, 7)]
    log_def = np.stack(
        [
            f.get_positions()[len(f.atoms) :] / len(f.atoms) - np.log(len(f.atoms)) * np.eye(3)
            for f, _, _ in filters
        ]
    )
    voigt = np.stack([s for _, _, s in filters])
    stress = np.zeros((3, 3, 3))
    for k, (i, j) in enumerate([(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]):
        stress[:, i, j] = stress[:, j, i] = voigt[:, k]
    cells = np.stack([np.asarray(f.atoms.cell) for f, _, _ in filters])
    n = np.array([len(f.atoms) for f, _, _ in filters], dtype=float)
    ours = cell_generalised_forces(log_def, stress, cells, n)
    f_def = deformation(log_def)
    for k, (filt, forces, _) in enumerate(filters):
        expected = filt.get_forces()
        np.testing.assert_allclose(ours[k], expected[len(filt.atoms) :], rtol=1e-8, atol=1e-12)
        np.testing.assert_allclose(forces @ f_def[k], expected[: len(filt.atoms)], rtol=1e-10)


def test_fire_steps_match_ase_with_independent_states() -> None:
    # Two quadratic wells of different sizes advanced together must follow exactly
    # the trajectories ASE's FIRE gives each of them alone.
    rng = np.random.default_rng(7)
    minima = [rng.normal(size=(3, 3)), rng.normal(size=(6, 3))]
    starts = [m + rng.normal(size=m.shape) for m in minima]

    def forces_at(x: np.ndarray, m: np.ndarray) -> np.ndarray:
        return -(x - m) * np.array([1.0, 3.0, 0.5])

    reference = []
    for m, x0 in zip(minima, starts, strict=True):
        atoms = Atoms("H" * len(m), positions=x0.copy())
        opt = FIRE(atoms, logfile=None)
        path = []
        for _ in range(25):
            atoms.calc = SinglePointCalculator(
                atoms, energy=0.0, forces=forces_at(atoms.positions, m)
            )
            opt.step()
            path.append(atoms.positions.copy())
        reference.append(path)

    x = [s.copy() for s in starts]
    states = [FireState(), FireState()]
    for step in range(25):
        x = fire_step(x, [forces_at(xi, m) for xi, m in zip(x, minima, strict=True)], states)
        for k in range(2):
            np.testing.assert_allclose(x[k], reference[k][step], rtol=1e-10, atol=1e-12)
