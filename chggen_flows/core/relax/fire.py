"""FIRE with ASE's Fréchet cell filter, vectorised over a batch of structures.

This mirrors what CHGNet's ``StructOptimizer.relax`` runs (chgnet 0.4,
``chgnet/model/dynamics.py``): ``ase.optimize.FIRE`` with its default parameters on
``ase.filters.FrechetCellFilter(atoms)`` (ASE 3.23+, ``ase/_4/optimize/cellutil.py``).
Each structure keeps its own FIRE state (velocity, time step, mixing ``a``, count of
downhill steps); one call of :func:`fire_step` advances every structure in the batch.

Degrees of freedom per structure (ASE's layout, so the step sizes match):
``x[:n]`` are positions in the undeformed cell (``positions @ F^-T``) and
``x[n:]`` is ``n * log(F)``, with ``F`` the deformation gradient from the initial cell
(``cell = cell0 @ F^T``). ASE stores ``n * log(n F)``, a constant offset that changes
neither the forces nor the steps. The generalised forces are ``forces @ F`` and the Fréchet
derivative of the matrix exponential applied to the virial, divided by ``n``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

# ase.optimize.FIRE defaults (dt, maxstep, dtmax, Nmin, finc, fdec, astart, fa).
DT0 = 0.1
MAXSTEP = 0.2
DTMAX = 1.0
NMIN = 5
FINC = 1.1
FDEC = 0.5
ASTART = 0.1
FA = 0.99

# 1 GPa in eV/Å^3 (ase.units.GPa), CHGNetCalculator's default stress_weight.
GPA = 1.0 / 160.21766208


def _expm(a: np.ndarray) -> np.ndarray:
    """Batched matrix exponential (float64) through torch."""
    return torch.linalg.matrix_exp(torch.from_numpy(np.ascontiguousarray(a))).numpy()


def deformation(log_deformation: np.ndarray) -> np.ndarray:
    """``F = expm(L)`` for a batch ``(B, 3, 3)`` of logarithmic deformations."""
    return _expm(log_deformation)


def cell_generalised_forces(
    log_deformation: np.ndarray, stress: np.ndarray, cells: np.ndarray, n_atoms: np.ndarray
) -> np.ndarray:
    """Forces on the cell degrees of freedom of ``FrechetCellFilter`` (B, 3, 3).

    ASE evaluates ``G[mu, nu] = <D_L(E_mu_nu), U>`` with nine ``expm_frechet`` calls,
    where ``U = virial @ F^-T`` and ``D_L`` is the Fréchet derivative of ``expm`` at
    ``L``. Since the adjoint of ``D_L`` is ``D_{L^T}``, ``G = D_{L^T}(U)``: one 6x6
    block exponential ``expm([[L^T, U], [0, L^T]])`` (upper-right block) per structure.

    Parameters
    ----------
    log_deformation
        ``L = log(F)``, shape (B, 3, 3).
    stress
        Symmetric stress in eV/Å^3 (ASE sign convention), shape (B, 3, 3).
    cells
        Current lattice matrices (rows are vectors), shape (B, 3, 3).
    n_atoms
        Atoms per structure (ASE's ``exp_cell_factor``), shape (B,).
    """
    volume = np.abs(np.linalg.det(cells))
    virial = -volume[:, None, None] * stress
    f = deformation(log_deformation)
    u = virial @ np.linalg.inv(np.swapaxes(f, 1, 2))
    lt = np.swapaxes(log_deformation, 1, 2)
    block = np.zeros((len(f), 6, 6))
    block[:, :3, :3] = lt
    block[:, 3:, 3:] = lt
    block[:, :3, 3:] = u
    return _expm(block)[:, :3, 3:] / n_atoms[:, None, None]


@dataclass
class FireState:
    """FIRE state of one structure (ASE's ``vel``, ``dt``, ``a``, ``Nsteps``)."""

    velocity: np.ndarray | None = None
    dt: float = DT0
    a: float = ASTART
    n_downhill: int = 0


def _segment_sum(values: np.ndarray, segments: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(segments, weights=values, minlength=n)


def fire_step(
    x: list[np.ndarray], forces: list[np.ndarray], states: list[FireState]
) -> list[np.ndarray]:
    """One ``ase.optimize.FIRE.step`` for every structure of a batch.

    Parameters
    ----------
    x
        Degrees of freedom per structure, each ``(n_dof_rows, 3)``.
    forces
        Generalised forces (minus the gradient) at ``x``, same shapes.
    states
        Per-structure FIRE state, updated in place.

    Returns
    -------
    list of numpy.ndarray
        The new degrees of freedom.
    """
    n = len(x)
    sizes = np.array([len(xi) for xi in x])
    seg = np.repeat(np.arange(n), sizes)
    f = np.concatenate(forces)
    fresh = np.array([s.velocity is None for s in states])
    vel = np.concatenate(
        [
            np.zeros_like(xi) if s.velocity is None else s.velocity
            for xi, s in zip(x, states, strict=True)
        ]
    )
    dt = np.array([s.dt for s in states])
    a = np.array([s.a for s in states])
    n_down = np.array([s.n_downhill for s in states])

    vf = _segment_sum((f * vel).sum(1), seg, n)
    ff = _segment_sum((f * f).sum(1), seg, n)
    vv = _segment_sum((vel * vel).sum(1), seg, n)
    downhill = (vf > 0.0) & ~fresh
    uphill = ~(vf > 0.0) & ~fresh
    # Downhill: mix the velocity towards the force direction (FIRE's key update).
    scale = np.where(ff > 0, np.sqrt(vv) / np.sqrt(np.where(ff > 0, ff, 1.0)), 0.0)
    mix = downhill[seg][:, None]
    vel = np.where(mix, (1.0 - a[seg, None]) * vel + a[seg, None] * f * scale[seg, None], vel)
    accelerate = downhill & (n_down > NMIN)
    dt = np.where(accelerate, np.minimum(dt * FINC, DTMAX), dt)
    a = np.where(accelerate, a * FA, a)
    n_down = np.where(downhill, n_down + 1, n_down)
    # Uphill: stop, restart the mixing and halve the time step.
    vel = np.where(uphill[seg][:, None], 0.0, vel)
    a = np.where(uphill, ASTART, a)
    dt = np.where(uphill, dt * FDEC, dt)
    n_down = np.where(uphill, 0, n_down)

    vel = vel + dt[seg, None] * f
    dr = dt[seg, None] * vel
    norm = np.sqrt(_segment_sum((dr * dr).sum(1), seg, n))
    # ASE caps the norm of the whole step vector (atoms and cell together) at maxstep.
    cap = np.where(norm > MAXSTEP, MAXSTEP / np.where(norm > 0, norm, 1.0), 1.0)
    new_x = np.concatenate(x) + dr * cap[seg, None]

    bounds = np.cumsum(sizes)[:-1]
    for s, v, d, al, nd in zip(states, np.split(vel, bounds), dt, a, n_down, strict=True):
        s.velocity, s.dt, s.a, s.n_downhill = v, float(d), float(al), int(nd)
    return np.split(new_x, bounds)
