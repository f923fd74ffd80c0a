"""Per-system adaptation of a score model from a structure source (tiny, CPU, seconds)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from chggen_flows.core.model import ScoreModel, ScoreModelConfig, load_score_model
from chggen_flows.core.model.adapt import (
    RELATED,
    AdaptSettings,
    adapt_model,
    read_adapt_result,
    related_structures,
)
from chggen_flows.core.model.checkpoint import save_score_model
from chggen_flows.core.model.data import CrystalDataset
from chggen_flows.errors import ConfigError, InputError

HOSTS = Path(__file__).parents[2] / "test_data" / "hosts"
# 16 real MP structures related to Zn-P-S (ZnPS3, Zn3(PS4)2, CdPS3, Cu3PS4, P2S7, ...)
SOURCES = [HOSTS / "mp20_templates.csv", HOSTS / "mpts52_templates.csv"]
# every element of those structures but Hg: HgPS3 cannot be trained on
ELEMENTS = ("Li", "Na", "K", "Cs", "V", "Cr", "Co", "Ni", "Cu", "Zn", "Cd", "In", "Sn", "P", "S")


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A tiny untrained base model that records a non-default noise range."""
    torch.manual_seed(0)
    model = ScoreModel(ScoreModelConfig.preset("tiny", elements=ELEMENTS))
    path = tmp_path_factory.mktemp("base") / "base.pt"
    return save_score_model(model, path, training={"sigma_min": 0.005, "sigma_max": 8.0})


def _settings(**overrides) -> AdaptSettings:
    values = {
        "max_steps": 6, "batch_size": 4, "min_related": 10, "min_val": 3, "lr": 2e-3,
        "warmup_steps": 1, "device": "cpu", "threads": 1, "exclude_formulas": ["ZnPS3"],
        "steps_per_epoch": 3,
    }  # fmt: skip
    return AdaptSettings(**{**values, **overrides})


@pytest.fixture(scope="module")
def adapted(base, tmp_path_factory):
    out = tmp_path_factory.mktemp("adapt") / "Zn-P-S"
    return out, adapt_model("Zn-P-S", SOURCES, out, base=base, settings=_settings(), progress=False)


def test_tiny_adaptation_fine_tunes_on_the_related_set_minus_exclusions(adapted, base):
    out, result = adapted
    assert result.status == "adapted", result.message
    assert (result.n_related, result.n_excluded, result.n_unknown_elements) == (14, 1, 1)
    assert result.excluded_ids == ["mp-3342"]  # ZnPS3
    assert result.n_train + result.n_val == 14 and result.n_val >= 3
    assert result.steps == 6 and result.epochs == 2  # 11 training structures, batch 4
    assert result.best_val_loss < result.base_val_loss
    assert Path(result.checkpoint) == out / "run" / "best_model.pt"
    model = load_score_model(result.checkpoint, device="cpu")
    assert model.noise_range == (0.005, 8.0)  # the base model's range, kept
    assert model.training_metadata["init_from"] == str(base)
    assert read_adapt_result(out) == result


def test_the_exclusion_filter_holds(adapted):
    out, _ = adapted
    trained = CrystalDataset.load(out / RELATED)
    assert "mp-3342" not in trained.material_ids
    assert "mp-27178" not in trained.material_ids  # HgPS3: Hg unknown to the base model
    assert len(trained) == 14
    kept, excluded = related_structures(
        "Zn-P-S", SOURCES, _settings(exclude_formulas=["Zn3(PS4)2", "CdPS3"])
    )
    assert {e.formula for e in excluded} == {"Zn3(PS4)2", "CdPS3"}
    assert not {"Zn3(PS4)2", "CdPS3"} & {e.formula for e in kept}
    kept, excluded = related_structures(
        "Zn-P-S", SOURCES, _settings(exclude_ids=["mp-3934"], exclude_formulas=[])
    )
    assert [e.formula for e in excluded] == ["Cu3PS4"]


def test_a_finished_adaptation_is_not_trained_again(adapted, base, monkeypatch):
    out, result = adapted
    import chggen_flows.core.model.adapt as adapt

    def no_training(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(adapt, "train", no_training)
    again = adapt_model("Zn-P-S", SOURCES, out, base=base, settings=_settings(), progress=False)
    assert again == result
    # the device it runs on is not part of the request
    moved = _settings(threads=2)
    assert adapt_model("Zn-P-S", SOURCES, out, base=base, settings=moved) == result
    with pytest.raises(ConfigError, match="another request"):
        adapt_model("Zn-P-S", SOURCES, out, base=base, settings=_settings(max_steps=7))


def test_too_small_a_related_set_falls_back_to_the_base_model(base, tmp_path):
    result = adapt_model(
        "Zn-P-S", SOURCES, tmp_path / "small", base=base, settings=_settings(min_related=20)
    )
    assert result.status == "fallback" and not result.adapted
    assert result.checkpoint == str(base)
    assert "only 14 known structure(s) related to Zn-P-S" in result.message
    assert "fewer than 20" in result.message
    assert not (tmp_path / "small" / "run").exists()
    stored = json.loads((tmp_path / "small" / "adaptation.json").read_text())
    assert stored["status"] == "fallback"
    # the shipped general model as base is named as a spec names it
    none = adapt_model("Li-Si", SOURCES, tmp_path / "none", settings=_settings())
    assert none.checkpoint == "shipped" and none.n_related == 0


def test_settings_are_checked():
    with pytest.raises(ValueError):
        AdaptSettings(max_step=10)  # a typo is not ignored
    with pytest.raises(ValueError, match="bad formula"):
        AdaptSettings(exclude_formulas=["Zn(("])
    with pytest.raises(InputError):
        adapt_model("Zn-Xx", SOURCES, "unused")


def test_small_related_sets_are_repeated_to_fill_an_epoch(base, tmp_path):
    """An epoch of ~steps_per_epoch steps, so that the held-out loss, the plateau counter
    and the patience do not act every couple of steps."""
    result = adapt_model(
        "Zn-P-S", SOURCES, tmp_path / "rep", base=base,
        settings=_settings(max_steps=8, steps_per_epoch=8),
    )  # fmt: skip
    assert result.steps == 9 and result.epochs == 1  # 11 structures x 3 = 33: 9 steps of 4
    config = torch.load(tmp_path / "rep" / "run" / "last.pt", weights_only=True)
    assert config["resume"]["train_config"]["epoch_repeat"] == 3


def test_adaptation_leaves_the_thread_count_as_it_found_it(base, tmp_path):
    """A campaign worker runs other jobs in the same process after the adapt job."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        result = adapt_model(
            "Zn-P-S", SOURCES, tmp_path / "t", base=base, settings=_settings(threads=1)
        )
        assert result.steps > 0  # it trained, with one thread
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
