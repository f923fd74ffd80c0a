"""The score is continuous when edges cross the cutoff and exact on symmetric crystals.

Both properties failed on the format-1 architecture (the cutoff envelope multiplied only
the radial MLP's input, and a 24-neighbour cap cut through coordination shells with an
arbitrary tie-break); the tests check the current default architecture, randomly
initialised, and every shipped model (the general one and the system fine-tunes), and
show that the format-1 architecture fails them.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from chggen_flows.core.model import ScoreModel, ScoreModelConfig, load_score_model
from chggen_flows.core.model.checkpoint import SHIPPED_SYSTEM_MODELS
from chggen_flows.core.model.neighbors import batched_neighbor_list
from tests.core.model.inputs import as_inputs

ELEMENTS = ("Li", "Si", "Zn", "S")


def _random_model(**overrides) -> ScoreModel:
    torch.manual_seed(0)
    config = ScoreModelConfig.preset("cpu", elements=ELEMENTS, **overrides)
    return ScoreModel(config).double().eval()


FORMAT_1 = {"max_neighbors": 24, "radial_envelope": "basis"}


# every model the package ships: the general one and each system fine-tune
SHIPPED = ["shipped", *(f"shipped:{system}" for system in SHIPPED_SYSTEM_MODELS)]
WHICH = ["random", *SHIPPED]


@pytest.fixture(scope="module")
def shipped() -> dict[str, ScoreModel]:
    return {
        name: load_score_model(
            None if name == "shipped" else name, device="cpu", dtype=torch.float64
        )
        for name in SHIPPED
    }


def _bcc_li() -> Structure:
    return Structure(Lattice.cubic(3.44), ["Li", "Li"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def _diamond_si() -> Structure:
    return Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.43), ["Si"], [[0, 0, 0]])


def _wurtzite_zns() -> Structure:
    return Structure.from_spacegroup(
        "P6_3mc",
        Lattice.hexagonal(3.82, 6.26),
        ["Zn", "S"],
        [[1 / 3, 2 / 3, 0.0], [1 / 3, 2 / 3, 0.375]],
    )


def _scores(model: ScoreModel, structure: Structure, sigma: float) -> torch.Tensor:
    with torch.no_grad():
        return model(*as_inputs([structure], [sigma]))


# ------------------------------------------------------------------- continuity


def _path_scores(model: ScoreModel, steps: int = 300) -> tuple[np.ndarray, list[int]]:
    """Scores along a straight 0.3 Å move of one atom in a rattled Li-Si cell (bcc Li
    has a shell at 4.86 Å, so edges cross the 5 Å cutoff on the way)."""
    base = _bcc_li()
    base.make_supercell([2, 2, 2])
    base.replace(3, "Si")
    base.replace(12, "Si")
    base.perturb(0.15, min_distance=0.05, seed=0)  # unseeded, a path at times crossed no edge
    direction = np.array([0.6, -0.3, 0.74]) / np.linalg.norm([0.6, -0.3, 0.74])
    species, pos, lattice, batch, sigma = as_inputs([base], [0.05])
    out, edges = [], []
    with torch.no_grad():
        for t in np.linspace(0.0, 0.3, steps):
            moved = pos.clone()
            moved[0] += torch.tensor(direction * t)
            out.append(model(species, moved, lattice, batch, sigma).numpy())
            graph = batched_neighbor_list(moved, lattice, batch, model.config.cutoff)
            edges.append(len(graph.center))
    return np.stack(out), edges


def _jump_ratio(scores: np.ndarray) -> float:
    change = np.linalg.norm(np.diff(scores, axis=0), axis=-1).max(axis=1)
    return float(change.max() / np.median(change))


@pytest.mark.parametrize("which", WHICH)
def test_score_is_continuous_when_edges_cross_the_cutoff(which, shipped):
    model = shipped[which] if which in shipped else _random_model()
    scores, edges = _path_scores(model)
    assert len(set(edges)) >= 3, "the path must move edges across the cutoff"
    assert _jump_ratio(scores) < 8.0


def test_format_1_architecture_jumps_at_the_cutoff():
    scores, _ = _path_scores(_random_model(**FORMAT_1))
    assert _jump_ratio(scores) > 20.0


# ------------------------------------------------------------------- exact symmetry


def _scale(model: ScoreModel, structure: Structure, sigma: float) -> float:
    """Typical score magnitude near the structure (the yardstick of 'zero')."""
    rattled = structure.copy()
    rattled.perturb(0.1, min_distance=0.05)
    return float(np.median(np.linalg.norm(_scores(model, rattled, sigma).numpy(), axis=1)))


def _shuffled(structure: Structure, seed: int) -> Structure:
    order = np.random.default_rng(seed).permutation(len(structure))
    return Structure.from_sites([structure[int(i)] for i in order])


@pytest.mark.parametrize("which", WHICH)
@pytest.mark.parametrize("make", [_bcc_li, _diamond_si], ids=["bcc-Li", "diamond-Si"])
@pytest.mark.parametrize("sigma", [0.01, 0.3])
def test_sites_without_a_polar_direction_get_zero_score(which, make, sigma, shipped):
    model = shipped[which] if which in shipped else _random_model()
    structure = make()
    structure.make_supercell([2, 2, 2])
    scale = _scale(model, structure, sigma)
    assert scale > 1e-3
    for seed in range(3):  # any neighbour order
        score = _scores(model, _shuffled(structure, seed), sigma).numpy()
        assert np.abs(score).max() < 1e-5 * scale


def test_format_1_architecture_breaks_symmetry():
    model = _random_model(**FORMAT_1)
    structure = _bcc_li()
    structure.make_supercell([2, 2, 2])
    score = _scores(model, structure, 0.01).numpy()
    assert np.abs(score).max() > 1e-2 * _scale(model, structure, 0.01)


@pytest.mark.parametrize("which", WHICH)
def test_symmetry_operations_rotate_the_score_exactly(which, shipped):
    """Wurtzite sites have a polar axis: scores need not vanish but must follow every
    operation of the space group (score of the image atom = rotated score)."""
    model = shipped[which] if which in shipped else _random_model()
    structure = _wurtzite_zns()
    structure.make_supercell([2, 2, 1])
    score = _scores(model, structure, 0.05).numpy()
    assert np.linalg.norm(score, axis=1).min() > 1e-3  # polar sites: a non-trivial test
    frac = structure.frac_coords
    ops = SpacegroupAnalyzer(structure, symprec=1e-4).get_symmetry_operations(cartesian=False)
    matrix = structure.lattice.matrix
    for op in ops:
        image = op.operate_multi(frac)
        # atom i goes to the site `target[i]`
        delta = image[:, None, :] - frac[None, :, :]
        delta -= np.round(delta)
        target = np.linalg.norm(delta @ matrix, axis=-1).argmin(axis=1)
        rotation = matrix.T @ op.rotation_matrix @ np.linalg.inv(matrix.T)
        np.testing.assert_allclose(
            score[target], score @ rotation.T, atol=1e-5 * np.abs(score).max()
        )
