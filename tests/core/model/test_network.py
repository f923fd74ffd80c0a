"""Symmetries of the score network: rotation, translation, permutation, unit cell."""

from __future__ import annotations

import pytest
import torch
from e3nn import o3

from chggen_flows.core.model import ScoreModel, ScoreModelConfig
from chggen_flows.core.model.network import deepened
from chggen_flows.errors import InputError
from tests.core.model.inputs import as_inputs


@torch.no_grad()
def test_rotation_rotates_the_score(tiny_model, skewed_structure):
    species, pos, lattice, batch, sigma = as_inputs([skewed_structure], [0.2])
    score = tiny_model(species, pos, lattice, batch, sigma)
    assert score.abs().max() > 1e-3  # a non-trivial output, or the test means nothing
    torch.manual_seed(3)
    for _ in range(3):
        rot = o3.rand_matrix(dtype=torch.float64)
        rotated = tiny_model(species, pos @ rot.T, lattice @ rot.T, batch, sigma)
        torch.testing.assert_close(rotated, score @ rot.T, atol=1e-4, rtol=0)


@torch.no_grad()
def test_reflection_reflects_the_score(tiny_model, skewed_structure):
    species, pos, lattice, batch, sigma = as_inputs([skewed_structure], [0.2])
    mirror = torch.diag(torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64))
    score = tiny_model(species, pos, lattice, batch, sigma)
    torch.testing.assert_close(
        tiny_model(species, pos @ mirror, lattice @ mirror, batch, sigma),
        score @ mirror,
        atol=1e-4,
        rtol=0,
    )


@torch.no_grad()
def test_translation_and_wrapping_invariance(tiny_model, skewed_structure):
    species, pos, lattice, batch, sigma = as_inputs([skewed_structure], [0.5])
    score = tiny_model(species, pos, lattice, batch, sigma)
    shifted = pos + torch.tensor([1.7, -0.4, 2.9], dtype=torch.float64)
    torch.testing.assert_close(tiny_model(species, shifted, lattice, batch, sigma), score)
    # moving one atom by a lattice vector is the same crystal
    moved = pos.clone()
    moved[2] += lattice[0, 1] - 2 * lattice[0, 2]
    torch.testing.assert_close(tiny_model(species, moved, lattice, batch, sigma), score)


@torch.no_grad()
def test_permutation_equivariance(tiny_model, skewed_structure):
    species, pos, lattice, batch, sigma = as_inputs([skewed_structure], [0.05])
    score = tiny_model(species, pos, lattice, batch, sigma)
    perm = torch.tensor([3, 0, 4, 2, 1])
    torch.testing.assert_close(
        tiny_model(species[perm], pos[perm], lattice, batch, sigma), score[perm]
    )


@torch.no_grad()
def test_supercell_gives_the_same_per_atom_scores(tiny_model, skewed_structure):
    species, pos, lattice, batch, sigma = as_inputs([skewed_structure], [0.3])
    score = tiny_model(species, pos, lattice, batch, sigma)
    supercell = skewed_structure * (2, 1, 2)
    # pymatgen's supercell lists each original site's images consecutively
    s_species, s_pos, s_lattice, s_batch, s_sigma = as_inputs([supercell], [0.3])
    s_score = tiny_model(s_species, s_pos, s_lattice, s_batch, s_sigma)
    torch.testing.assert_close(s_score, score.repeat_interleave(4, dim=0), atol=1e-8, rtol=1e-6)


@torch.no_grad()
def test_batch_of_different_cells_equals_separate_calls(tiny_model, skewed_structure):
    other = skewed_structure.copy()
    other.scale_lattice(skewed_structure.volume * 1.3)
    other.remove_sites([0])
    together = tiny_model(*as_inputs([skewed_structure, other], [0.1, 2.0]))
    apart = torch.cat(
        [tiny_model(*as_inputs([skewed_structure], [0.1])), tiny_model(*as_inputs([other], [2.0]))]
    )
    torch.testing.assert_close(together, apart)
    counts = [len(skewed_structure), len(other)]  # known on the host: no bincount needed
    with_counts = tiny_model(*as_inputs([skewed_structure, other], [0.1, 2.0]), counts=counts)
    torch.testing.assert_close(with_counts, together)


@torch.no_grad()
def test_output_depends_on_sigma_and_scales_as_one_over_sigma(tiny_model, skewed_structure):
    species, pos, lattice, batch, _ = as_inputs([skewed_structure], [1.0])
    small = tiny_model(species, pos, lattice, batch, torch.tensor([0.01], dtype=torch.float64))
    large = tiny_model(species, pos, lattice, batch, torch.tensor([1.0], dtype=torch.float64))
    # conditioning on log(sigma) changes the direction, not only the 1/sigma scale
    assert not torch.allclose(small * 0.01, large, atol=1e-6)


def test_unsupported_element_is_an_input_error(tiny_model, skewed_structure):
    species, pos, lattice, batch, sigma = as_inputs([skewed_structure], [0.1])
    species[0] = 30  # Zn is not in the tiny model's vocabulary
    with pytest.raises(InputError, match="Zn"):
        tiny_model(species, pos, lattice, batch, sigma)


def test_dtype_follows_the_parameters(skewed_structure):
    model = ScoreModel(ScoreModelConfig.preset("tiny", elements=("Li", "O", "Si")))
    species, pos, lattice, batch, sigma = as_inputs([skewed_structure], [0.1])
    with torch.no_grad():
        assert model(species, pos, lattice, batch, sigma).dtype == torch.float32
    assert model.elements == ("Li", "O", "Si")


@torch.no_grad()
def test_coincident_atoms_give_finite_scores(tiny_model, skewed_structure):
    species, pos, lattice, batch, sigma = as_inputs([skewed_structure], [5.0])
    pos[1] = pos[0]  # high-noise sampling can put two atoms on top of each other
    assert torch.isfinite(tiny_model(species, pos, lattice, batch, sigma)).all()


@torch.no_grad()
def test_shipped_model_scores_do_not_depend_on_the_neighbour_search(monkeypatch):
    """Issue 16 replaced vesin's per-structure search by one batched search: the
    shipped checkpoint's scores must not change beyond float32 summation order."""
    from pymatgen.core import Lattice, Structure

    from chggen_flows.core.model import load_score_model, neighbors, network
    from chggen_flows.core.model.neighbors import reference_neighbor_list

    monkeypatch.setattr(neighbors, "BATCHED_SEARCH_DEVICES", ("cpu", "cuda"))  # the GPU path
    model = load_score_model(device="cpu")
    assert model.config.max_neighbors is None  # every neighbour within the cutoff
    structures = [
        Structure(Lattice.cubic(2.1), ["Li"], [[0.1, 0.2, 0.3]]),
        Structure(
            Lattice.from_parameters(3.0, 3.5, 9.0, 60.0, 115.0, 65.0),
            ["Si", "Li", "Li"],
            [[0.1, 0.5, 0.7], [0.8, 0.2, 0.4], [0.3, 0.9, 0.05]],
        ),
        Structure(Lattice.hexagonal(3.2, 5.1), ["Zn", "S"], [[1.4, -0.3, 0.2], [-0.7, 0.5, 2.1]]),
    ]
    species, pos, lattice, batch, _ = as_inputs(structures, [0.0] * 3)
    pos, lattice = pos.float(), lattice.float()
    counts = [len(s) for s in structures]
    for level in (0.01, 0.3, 2.0):
        sigma = torch.full((3,), level)
        batched = model(species, pos, lattice, batch, sigma)
        with monkeypatch.context() as patched:
            patched.setattr(
                network,
                "batched_neighbor_list",
                lambda p, la, b, cutoff, *_: reference_neighbor_list(p, la, counts, cutoff),
            )
            reference = model(species, pos, lattice, batch, sigma)
        scale = reference.abs().max()
        torch.testing.assert_close(batched / scale, reference / scale, atol=1e-6, rtol=0)


def test_deepened_model_starts_as_the_original_and_its_new_blocks_train(
    tiny_model, skewed_structure
):
    inputs = as_inputs([skewed_structure], [0.3])
    grown = deepened(tiny_model, 4)
    assert grown.config.num_blocks == 4 and len(grown.blocks) == 4
    torch.testing.assert_close(grown(*inputs), tiny_model(*inputs), rtol=0, atol=1e-12)
    # the zero-initialised last map gets a gradient, so the added blocks do learn
    grown(*inputs).pow(2).sum().backward()
    assert grown.blocks[3].linear_out.weight.grad.abs().sum() > 0
    assert deepened(tiny_model, 2).state_dict().keys() == tiny_model.state_dict().keys()
    with pytest.raises(ValueError, match="cannot deepen"):
        deepened(tiny_model, 1)
