"""``chggen train``: a tiny real run, resume, and user errors."""

from __future__ import annotations

import json
from pathlib import Path

from chggen_flows.core.model import load_score_model

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
