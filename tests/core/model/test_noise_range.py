"""The checkpoint records the noise range of its training; sampling checks it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from pymatgen.core import Composition, Lattice, Structure

from chggen_flows.core.generation.generate import GenerationRequest, check_noise_range, generate
from chggen_flows.core.generation.inpaint import inpaint
from chggen_flows.core.generation.sampler import SamplerSettings
from chggen_flows.core.model import load_score_model
from chggen_flows.core.model.data import read_structures
from chggen_flows.core.model.training import TrainConfig, train
from chggen_flows.errors import InputError

DATA = Path(__file__).parents[2] / "test_data" / "model" / "tiny_structures.csv"
FAST = {"n_levels": 3, "n_corrector": 0}


@pytest.fixture(scope="module")
def narrow_model(tmp_path_factory):
    """A tiny model trained on 0.01-5 Å instead of the default 0.001-10 Å."""
    out = tmp_path_factory.mktemp("narrow")
    config = TrainConfig(
        data=[DATA], output_dir=out / "run", preset="tiny", batch_size=4, epochs=1,
        val_fraction=0.3, threads=1, device="cpu", sigma_min=0.01, sigma_max=5.0,
    )  # fmt: skip
    result = train(config, dataset=read_structures([DATA]))
    return result


def test_both_checkpoints_record_the_trained_noise_range(narrow_model):
    for path in (narrow_model.best_model, narrow_model.last_checkpoint):
        model = load_score_model(path, device="cpu")
        assert model.training_metadata["sigma_min"] == 0.01
        assert model.training_metadata["sigma_max"] == 5.0
        assert model.noise_range == (0.01, 5.0)


def test_a_schedule_outside_the_trained_range_is_refused_with_the_fix(narrow_model):
    model = load_score_model(narrow_model.best_model, device="cpu")
    request = GenerationRequest(Composition("ZnS"), 1)
    with pytest.raises(InputError) as err:  # the sampler's default 10 -> 0.001 Å
        generate([request], model, SamplerSettings(**FAST), device="cpu", progress=False)
    assert "(10 -> 0.001 Å)" in str(err.value)
    assert "(5 -> 0.01 Å)" in str(err.value)
    assert "sigma_max to 5 and sigma_min to 0.01" in err.value.hint
    only_low = SamplerSettings(**FAST, sigma_max=5.0, sigma_min=0.001)
    with pytest.raises(InputError):
        check_noise_range(model, only_low)
    host = Structure(Lattice.cubic(5.4), ["Zn", "S"], [[0, 0, 0], [0.25, 0.25, 0.25]])
    with pytest.raises(InputError, match="leaves the range"):  # inpainting checks it too
        inpaint([host], [{"Zn": 1}], model, SamplerSettings(**FAST), device="cpu", progress=False)
    # the trained range itself, and a narrower walk inside it, sample
    for settings in (
        SamplerSettings(**FAST, sigma_max=5.0, sigma_min=0.01),
        SamplerSettings(**FAST, sigma_max=2.0, sigma_min=0.05),
    ):
        out = generate([request], model, settings, device="cpu", progress=False)
        assert len(out) == 1


def test_models_that_do_not_record_the_range_sample_as_before():
    shipped = load_score_model(device="cpu")
    assert "sigma_min" not in shipped.training_metadata
    assert shipped.noise_range is None
    check_noise_range(shipped, SamplerSettings(sigma_max=50.0, sigma_min=1e-4))
    check_noise_range(lambda *a: torch.zeros(0), SamplerSettings())  # an analytic score
