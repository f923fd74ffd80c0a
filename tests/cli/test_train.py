"""``chggen train``: a tiny real run, resume, and user errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from chggen_flows.core.model import load_score_model
from chggen_flows.core.model.training import TrainConfig

DATA = Path(__file__).parents[1] / "test_data" / "model" / "tiny_structures.csv"
TINY = ["--preset", "tiny", "--batch-size", "3", "--threads", "1", "--device", "cpu"]


def test_help(cli):
    res = cli("train", "--help")
    assert res.exit_code == 0
    assert "--resume" in res.stdout and "denoising score matching" in res.stdout


def test_train_then_resume(cli, tmp_path):
    out = tmp_path / "run"
    res = cli("train", "--data", DATA, "--output", out, "--epochs", "1", *TINY)
    assert res.exit_code == 0, res.stderr
    assert "finished" in res.stdout
    model = load_score_model(out / "best_model.pt", device="cpu")
    assert set(model.elements) <= {"Li", "O", "P", "S", "Si", "Zn"}

    res = cli("train", "--output", out, "--resume", "--epochs", "2")
    assert res.exit_code == 0, res.stderr
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]

    res = cli("train", "--output", out, "--resume", "--preset", "cpu")
    assert res.exit_code == 2 and "cannot change preset" in res.stderr


def test_yaml_config_and_errors(cli, tmp_path):
    spec = tmp_path / "train.yaml"
    spec.write_text(f"data: [{DATA}]\noutput_dir: {tmp_path / 'y'}\nepochs: 1\npreset: tiny\n")
    res = cli("train", "--yaml", spec, "--threads", "1", "--device", "cpu", "--batch-size", "6")
    assert res.exit_code == 0, res.stderr
    assert (tmp_path / "y" / "last.pt").exists()

    res = cli("train", "--yaml", spec)  # the run exists: refuse to start over
    assert res.exit_code == 2 and "--resume" in res.stderr
    res = cli("train", "--output", tmp_path / "empty", "--resume")
    assert res.exit_code == 2
    res = cli("train", "--output", tmp_path / "nodata")
    assert res.exit_code == 2 and "data" in res.stderr


def test_dataset_file_trains_like_its_sources(cli, tmp_path):
    dataset = tmp_path / "tiny.dataset.pt"
    res = cli("train", "--data", DATA, "--save-dataset", dataset)
    assert res.exit_code == 0, res.stderr
    assert dataset.exists() and "Wrote 6 structures" in res.stdout
    for name, source in (("csv", DATA), ("file", dataset)):
        res = cli("train", "--data", source, "--output", tmp_path / name, "--epochs", "1", *TINY)
        assert res.exit_code == 0, res.stderr
    a = torch.load(tmp_path / "csv" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "file" / "last.pt", weights_only=True)
    for key, value in a["state_dict"].items():
        assert torch.equal(b["state_dict"][key], value), key
    res = cli("train", "--data", DATA, "--save-dataset", tmp_path / "wrong.pt")
    assert res.exit_code == 2 and ".dataset.pt" in res.stderr


def test_init_from_and_focus(cli, tmp_path):
    base = tmp_path / "base"
    res = cli("train", "--data", DATA, "--output", base, "--epochs", "1", *TINY)
    assert res.exit_code == 0, res.stderr
    start = load_score_model(base / "best_model.pt", device="cpu")

    tuned = tmp_path / "tuned"
    args = ["--output", tuned, "--init-from", base / "best_model.pt", "--focus", "Zn-P-S"]
    res = cli("train", "--data", DATA, *args, "--focus-repeat", "4", "--epochs", "1", *TINY)
    assert res.exit_code == 0, res.stderr
    history = json.loads((tuned / "history.json").read_text())
    # 2 of the 2 validation structures share two elements with Zn-P-S
    assert set(history[0]["val_focus_by_decade"]) == set(history[0]["val_loss_by_decade"])
    assert history[0]["val_focus_loss"] > 0
    saved = torch.load(tuned / "last.pt", weights_only=True)
    assert saved["training"]["init_from"] == str(base / "best_model.pt")
    assert saved["resume"]["train_config"]["focus"] == ["Zn-P-S"]
    model = load_score_model(tuned / "last.pt", device="cpu")
    assert model.elements == start.elements  # the vocabulary of the start model is kept
    assert model.config.max_neighbors is None and model.config.radial_envelope == "output"
    # the one related training structure (ZnS) is shown 4 times: 4 + 3 items, 3 steps
    plain = json.loads((base / "history.json").read_text())
    assert (plain[0]["global_step"], history[0]["global_step"]) == (2, 3)

    res = cli("train", "--data", DATA, "--output", tmp_path / "bad", "--focus", "Xx-Q", *TINY)
    assert res.exit_code == 2 and "chemical system" in res.stderr


# the shipped run's resumable checkpoint, written by an earlier loop (frozen, unlike the
# run's own last.pt, which may have trained on since)
V2_RUN = Path(__file__).parents[2] / "chggen_flows" / "data" / "score_model" / "training_last.pt"
V2_DATA = Path("/work/main/runs/mp_train.dataset.pt")


@pytest.mark.skipif(
    not (V2_RUN.exists() and V2_DATA.exists()), reason="no run of the previous loop here"
)
def test_resume_accepts_a_checkpoint_of_the_previous_loop(cli, tmp_path, monkeypatch):
    """`chggen train --output runs/score_model_v2 --resume`, as its owner would type it."""
    runs = tmp_path / "runs"
    (runs / "score_model_v2").mkdir(parents=True)
    shutil.copy(V2_RUN, runs / "score_model_v2" / "last.pt")
    (runs / V2_DATA.name).symlink_to(V2_DATA)  # the run's data path is relative
    before = torch.load(runs / "score_model_v2" / "last.pt", weights_only=True)
    monkeypatch.chdir(tmp_path)
    # a time limit of 0.001 min stops after the first step
    res = cli("train", "--output", "runs/score_model_v2", "--resume", "--time-limit", "0.001")
    assert res.exit_code == 0, res.stderr
    assert "stopped (continue with --resume)" in res.stdout
    after = torch.load(runs / "score_model_v2" / "last.pt", weights_only=True)
    steps = after["resume"]["state"]["global_step"] - before["resume"]["state"]["global_step"]
    assert steps == 1
    # the same settings; fields added since then are saved at their defaults
    saved, old = after["resume"]["train_config"], before["resume"]["train_config"]
    assert {k: saved[k] for k in old} == old
    new_fields = set(saved) - set(old)
    defaults = TrainConfig(data=[Path("x")]).model_dump()
    assert all(saved[k] == defaults[k] for k in new_fields), new_fields


HOSTS = Path(__file__).parents[1] / "test_data" / "hosts"


def test_adapt_writes_a_checkpoint_a_spec_can_name(cli, tmp_path):
    from chggen_flows.core.model import ScoreModel, ScoreModelConfig
    from chggen_flows.core.model.adapt import read_adapt_result
    from chggen_flows.core.model.checkpoint import save_score_model

    torch.manual_seed(0)
    elements = (
        "Li",
        "Na",
        "K",
        "Cs",
        "V",
        "Cr",
        "Co",
        "Ni",
        "Cu",
        "Zn",
        "Cd",
        "In",
        "Sn",
        "P",
        "S",
    )
    base = save_score_model(
        ScoreModel(ScoreModelConfig.preset("tiny", elements=elements)), tmp_path / "base.pt"
    )
    out = tmp_path / "znps"
    sources = ["--source", HOSTS / "mp20_templates.csv", "--source", HOSTS / "mpts52_templates.csv"]
    args = ["--init-from", base, "--output", out, "--threads", "1", "--device", "cpu"]
    res = cli(
        "train", "--adapt", "Zn-P-S", *sources, *args, "--adapt-steps", "6",
        "--adapt-steps-per-epoch", "3", "--batch-size", "4", "--lr", "0.002", "--min-related", "10",
        "--exclude-formula", "ZnPS3",
    )  # fmt: skip
    assert res.exit_code == 0, res.stderr
    result = read_adapt_result(out)
    assert 0 < result.steps <= 6  # trained; whether it beats the base is the core tests' part
    assert result.epochs == 2  # epochs of 3 steps (the default, 100, would give one of 6)
    assert f"Adaptation to Zn-P-S: {result.status}" in res.stdout
    assert f"checkpoint: {result.checkpoint}" in res.stdout.replace("\n", "")
    assert "1 excluded" in res.stdout
    load_score_model(result.checkpoint, device="cpu")

    res = cli("train", "--adapt", "Zn-P-S", *sources, *args)  # default min_related: 20
    assert res.exit_code == 2 and "another request" in res.stderr
    res = cli("train", "--adapt", "Zn-P-S", *sources, *args[:1], base, "--output", tmp_path / "b")
    assert res.exit_code == 0, res.stderr
    assert "fallback" in res.stdout and "fewer than 20" in res.stdout.replace("\n", " ")


def test_adapt_user_errors(cli, tmp_path):
    res = cli("train", "--adapt", "Zn-P-S", "--data", DATA)
    assert res.exit_code == 2 and "--data cannot be used with --adapt" in res.stderr
    res = cli("train", "--adapt", "Zn-P-S", "--output", tmp_path / "x")
    assert res.exit_code == 2 and "--source" in res.stderr
    res = cli("train", "--data", DATA, "--source", DATA)
    assert res.exit_code == 2 and "need --adapt" in res.stderr
