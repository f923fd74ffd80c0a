"""Checkpoints: round trip, the shipped model, and clear errors for bad files."""

from __future__ import annotations

import pickle

import pytest
import torch

from chggen_flows.core.model import (
    ScoreModel,
    ScoreModelConfig,
    default_checkpoint_path,
    load_score_model,
    save_score_model,
)
from chggen_flows.core.model.checkpoint import FORMAT_VERSION
from chggen_flows.errors import CheckpointError
from tests.core.model.inputs import as_inputs


@pytest.fixture
def saved(tmp_path, tiny_model):
    path = save_score_model(tiny_model, tmp_path / "model.pt", training={"epochs_completed": 3})
    return path, tiny_model


def test_round_trip_gives_the_same_scores(saved, skewed_structure):
    path, model = saved
    loaded = load_score_model(path, device="cpu", dtype=torch.float64)
    assert not loaded.training  # eval mode
    assert loaded.config == model.config
    assert loaded.training_metadata == {"epochs_completed": 3}
    inputs = as_inputs([skewed_structure], [0.1])
    with torch.no_grad():
        torch.testing.assert_close(loaded(*inputs), model(*inputs))


def test_shipped_model_loads_and_covers_the_target_systems():
    assert default_checkpoint_path().stat().st_size < 15 * 2**20
    model = load_score_model(device="cpu")
    assert {"Li", "Si", "Zn", "P", "S"} <= set(model.elements)
    assert model.training_metadata["epochs_completed"] >= 1


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_score_model(tmp_path / "nope.pt")


def test_truncated_file(saved, tmp_path):
    path, _ = saved
    cut = tmp_path / "cut.pt"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="not a readable"):
        load_score_model(cut)


@pytest.mark.parametrize(
    "content",
    [
        b"model weights, honestly\n",  # a text file
        pickle.dumps({"format": "chggen-score-model"}),  # a bare pickle, not a torch file
    ],
)
def test_foreign_bytes(tmp_path, content):
    path = tmp_path / "foreign.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError):
        load_score_model(path)


def test_foreign_torch_file(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"model": torch.zeros(3)}, path)  # e.g. someone else's state dict
    with pytest.raises(CheckpointError, match="not a chggen score-model checkpoint"):
        load_score_model(path)


def test_unsafe_pickle_is_refused(tmp_path):
    path = tmp_path / "unsafe.pt"
    torch.save({"format": "chggen-score-model", "obj": ScoreModelConfig()}, path)
    with pytest.raises(CheckpointError, match="not a readable"):
        load_score_model(path)


def test_newer_format_version(saved, tmp_path):
    path, _ = saved
    payload = torch.load(path, weights_only=True)
    payload["format_version"] = FORMAT_VERSION + 1
    torch.save(payload, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="upgrade"):
        load_score_model(tmp_path / "future.pt")


def test_weights_that_do_not_fit_the_config(saved, tmp_path):
    path, _ = saved
    payload = torch.load(path, weights_only=True)
    other = ScoreModel(ScoreModelConfig.preset("tiny", elements=("Li", "O", "Si"), num_blocks=3))
    payload["config"] = other.config.model_dump(mode="json")
    torch.save(payload, tmp_path / "mismatch.pt")
    with pytest.raises(CheckpointError, match="does not match"):
        load_score_model(tmp_path / "mismatch.pt")


def test_format_1_files_load_with_their_own_architecture(tmp_path, skewed_structure):
    """A file written before format 2 (no ``radial_envelope`` in its config, a 24-neighbour
    cap) loads as the architecture it was trained with, so its scores do not change."""
    torch.manual_seed(1)
    config = ScoreModelConfig.preset(
        "tiny", elements=("Li", "O", "Si"), max_neighbors=24, radial_envelope="basis"
    )
    old = ScoreModel(config).double().eval()
    path = save_score_model(old, tmp_path / "v1.pt")
    payload = torch.load(path, weights_only=True)
    payload["format_version"] = 1
    del payload["config"]["radial_envelope"]  # format 1 did not write it
    torch.save(payload, path)
    loaded = load_score_model(path, device="cpu", dtype=torch.float64)
    assert loaded.config.radial_envelope == "basis"
    assert loaded.config.max_neighbors == 24
    inputs = as_inputs([skewed_structure], [0.1])
    with torch.no_grad():
        torch.testing.assert_close(loaded(*inputs), old(*inputs))
    # the current architecture with the same weights gives different scores
    current = ScoreModel(config.model_copy(update={"radial_envelope": "output"})).double()
    current.load_state_dict(old.state_dict())
    with torch.no_grad():
        assert not torch.allclose(current(*inputs), old(*inputs))
