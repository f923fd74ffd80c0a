"""DSM loss, minimum image, overfitting and exact resume of the training loop."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from chggen_flows.core.model import ScoreModel, load_score_model
from chggen_flows.core.model.data import CrystalDataset, read_structures
from chggen_flows.core.model.training import (
    TrainConfig,
    dsm_loss,
    minimum_image,
    train,
    validation_loss,
)
from chggen_flows.errors import CheckpointError, ConfigError

DATA = Path(__file__).parents[2] / "test_data" / "model" / "tiny_structures.csv"


@pytest.fixture(scope="module")
def tiny_dataset() -> CrystalDataset:
    return read_structures([DATA])


def _config(tmp_path: Path, **overrides) -> TrainConfig:
    settings = {
        "data": [DATA],
        "output_dir": tmp_path / "run",
        "preset": "tiny",
        "batch_size": 2,
        "epochs": 2,
        "val_fraction": 0.3,
        "warmup_steps": 2,
        "threads": 1,
        "device": "cpu",
        "checkpoint_every_steps": 2,
    }
    return TrainConfig(**{**settings, **overrides})


def test_minimum_image_matches_brute_force_in_a_skewed_cell():
    lattice = torch.tensor(
        Lattice.from_parameters(3.0, 4.0, 6.0, 65.0, 110.0, 70.0).matrix, dtype=torch.float64
    )
    disp = torch.randn(200, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 5
    ours = minimum_image(disp, lattice.expand(200, 3, 3))
    shifts = torch.tensor(list(itertools.product(range(-9, 10), repeat=3)), dtype=torch.float64)
    candidates = disp[:, None, :] + shifts @ lattice  # every image within +-9 cells
    brute = candidates.norm(dim=-1).min(dim=1).values
    torch.testing.assert_close(ours.norm(dim=-1), brute)
    # the image differs from the displacement by a lattice vector
    frac = torch.linalg.solve(lattice.T, (ours - disp).T).T
    torch.testing.assert_close(frac, frac.round(), atol=1e-9, rtol=0)


def test_dsm_loss_is_minimised_by_the_analytic_score():
    """Atoms drawn from N(mu, s0^2): the sigma-smoothed density has score -(x-mu)/(s0^2+sigma^2)."""
    rng = np.random.default_rng(0)
    n, s0, mu = 4000, 0.4, np.array([15.0, 15.0, 15.0])
    lattice = Lattice.cubic(30.0)  # large enough that periodic images do not matter
    dataset = CrystalDataset.from_structures(
        (str(k), Structure(lattice, ["Li"], [x], coords_are_cartesian=True))
        for k, x in enumerate(mu + s0 * rng.standard_normal((n, 3)))
    )
    batch = dataset.batch(range(n), torch.float64)
    generator = torch.Generator().manual_seed(1)
    sigma = torch.exp(torch.empty(n, dtype=torch.float64).uniform_(-3.0, 0.0, generator=generator))
    noise = torch.randn(n, 3, generator=generator, dtype=torch.float64)
    centre = torch.tensor(mu)

    def gaussian_score(scale: float, shift: float):
        def score(species, pos, lat, index, sig, counts=None):
            var = s0**2 + sig[index, None] ** 2
            return -scale * (pos - centre - shift) / var

        return score

    best = dsm_loss(gaussian_score(1.0, 0.0), batch, sigma, noise)
    for scale, shift in [(0.8, 0.0), (1.25, 0.0), (1.0, 0.1), (0.0, 0.0)]:
        assert best < dsm_loss(gaussian_score(scale, shift), batch, sigma, noise)
    # the loss-optimal rescaling of the analytic score is 1 (least squares, sigma^2-weighted)
    pos, target_sigma = batch.pos + sigma[:, None] * noise, -noise / sigma[:, None]
    analytic = gaussian_score(1.0, 0.0)(None, pos, None, torch.arange(n), sigma)
    w = sigma[:, None] ** 2
    alpha = (w * analytic * target_sigma).sum() / (w * analytic**2).sum()
    assert abs(float(alpha) - 1.0) < 0.05


def test_tiny_model_overfits_a_handful_of_structures(tmp_path, tiny_dataset):
    config = _config(
        tmp_path,
        batch_size=6,
        epochs=250,
        val_fraction=0.0,
        lr=5e-3,
        warmup_steps=10,
        sigma_min=0.01,
        sigma_max=0.3,
        checkpoint_every_steps=1000,
    )
    torch.manual_seed(config.seed)
    initial = ScoreModel(config.model_config_for(tiny_dataset))  # the run's initial weights
    result = train(config, dataset=tiny_dataset)
    assert result.finished
    trained = load_score_model(result.last_checkpoint, device="cpu")
    device = torch.device("cpu")
    before = validation_loss(initial, tiny_dataset, 0.01, 0.3, 6, device)
    after = validation_loss(trained, tiny_dataset, 0.01, 0.3, 6, device)
    # A translation-invariant model cannot predict the mean of the noise over a cell,
    # so the loss floor is about 3/n per atom (~0.8 here), not 0: halving is the signal.
    assert sum(after.values()) < 0.6 * sum(before.values())


def test_resume_reproduces_an_uninterrupted_run(tmp_path, tiny_dataset):
    straight = train(_config(tmp_path / "a", batch_size=1), dataset=tiny_dataset)
    interrupted = _config(tmp_path / "b", batch_size=1)
    steps_per_epoch = straight.history[0]["global_step"]
    assert steps_per_epoch >= 2
    # stop one step into epoch 2, after a checkpoint that is not at an epoch boundary
    first = train(interrupted, dataset=tiny_dataset, max_steps=steps_per_epoch + 1)
    assert not first.finished and len(first.history) == 1
    resumed = train(interrupted, dataset=tiny_dataset, resume=True)
    assert resumed.finished
    a = torch.load(straight.last_checkpoint, weights_only=True)
    b = torch.load(resumed.last_checkpoint, weights_only=True)
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key  # EMA weights
        assert torch.equal(a["resume"]["model"][key], b["resume"]["model"][key]), key
    assert [h["val_loss"] for h in straight.history] == [h["val_loss"] for h in resumed.history]
    assert (tmp_path / "b" / "run" / "best_model.pt").exists()


def test_existing_run_needs_resume_and_missing_run_cannot_resume(tmp_path, tiny_dataset):
    config = _config(tmp_path, epochs=1)
    with pytest.raises(CheckpointError):
        train(config, dataset=tiny_dataset, resume=True)
    train(config, dataset=tiny_dataset, max_steps=1)
    with pytest.raises(ConfigError, match="--resume"):
        train(config, dataset=tiny_dataset)
