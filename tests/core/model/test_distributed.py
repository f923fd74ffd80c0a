"""Data-parallel training: shares of a batch, and two gloo ranks under torchrun against
one process on the same batches."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from chggen_flows.core.model import ScoreModel
from chggen_flows.core.model.config import ScoreModelConfig
from chggen_flows.core.model.data import CrystalDataset, read_structures, split_by_id
from chggen_flows.core.model.distributed import Ranks, shard_bounds
from chggen_flows.core.model.training import TrainConfig, dsm_loss, train
from chggen_flows.errors import ConfigError

DATA = Path(__file__).parents[2] / "test_data" / "model" / "tiny_structures.csv"
CHGGEN = "from chggen_flows.cli import main; main()"


def test_shard_bounds_are_contiguous_balanced_and_may_be_empty():
    assert shard_bounds([4, 4, 4, 4], 2) == [0, 2, 4]
    assert shard_bounds([10, 1, 1, 1, 1], 2) == [0, 1, 5]
    few = shard_bounds([3, 5], 4)  # fewer structures than ranks: two shares are empty
    assert few[0] == 0 and few[-1] == 2 and few == sorted(few)
    assert sum(b > a for a, b in itertools.pairwise(few)) == 2
    assert shard_bounds([], 3) == [0, 0, 0, 0]
    counts = [7, 3, 12, 1, 5, 9, 2, 8]
    for world in (1, 2, 3, 4, 8):
        bounds = shard_bounds(counts, world)
        assert bounds[0] == 0 and bounds[-1] == len(counts) and bounds == sorted(bounds)
        shares = [sum(counts[a:b]) for a, b in itertools.pairwise(bounds)]
        assert max(shares) - min(shares) <= max(counts)


def test_shares_of_a_batch_add_up_to_its_loss_and_gradients():
    dataset = read_structures([DATA])
    torch.manual_seed(0)
    model = ScoreModel(ScoreModelConfig.preset("tiny", elements=dataset.elements)).double()
    batch = dataset.batch(range(len(dataset)), torch.float64)
    generator = torch.Generator().manual_seed(3)
    sigma = torch.exp(
        torch.empty(len(dataset), dtype=torch.float64).uniform_(-5, 2, generator=generator)
    )
    noise = torch.randn(batch.num_atoms, 3, generator=generator, dtype=torch.float64)
    whole = dsm_loss(model, batch, sigma, noise)
    expected = torch.autograd.grad(whole, list(model.parameters()))
    bounds = shard_bounds(list(batch.counts), 3)
    offsets = [sum(batch.counts[:b]) for b in bounds]
    total = 0.0
    grads = [torch.zeros_like(p) for p in model.parameters()]
    for r in range(3):
        share = dataset.batch(range(bounds[r], bounds[r + 1]), torch.float64)
        loss = dsm_loss(
            model,
            share,
            sigma[bounds[r] : bounds[r + 1]],
            noise[offsets[r] : offsets[r + 1]],
            atoms=batch.num_atoms,
        )
        total = total + loss
        for g, d in zip(grads, torch.autograd.grad(loss, list(model.parameters())), strict=True):
            g += d
    torch.testing.assert_close(total, whole)
    for g, e in zip(grads, expected, strict=True):
        torch.testing.assert_close(g, e)


def test_rank_layout_and_device_binding(monkeypatch):
    assert not Ranks.from_environment().enabled  # pytest runs outside torchrun
    for name, value in {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"}.items():
        monkeypatch.setenv(name, value)
    ranks = Ranks.from_environment()
    assert (ranks.rank, ranks.world_size, ranks.local_rank, ranks.is_main) == (1, 2, 1, False)
    assert ranks.device("cpu") == torch.device("cpu")
    with pytest.raises(ConfigError, match="same GPU"):
        ranks.device("cuda:0")
    monkeypatch.setenv("RANK", "5")
    with pytest.raises(ConfigError, match="inconsistent"):
        Ranks.from_environment()


def _bigger_dataset(path: Path) -> Path:
    """The tiny set three times over (jittered copies, own ids) as a dataset file."""
    base = read_structures([DATA])
    generator = torch.Generator().manual_seed(0)
    copies = [
        CrystalDataset(
            material_ids=tuple(f"{m}-{k}" for m in base.material_ids),
            species=base.species,
            frac=(
                base.frac
                + 0.02 * k * torch.randn(base.frac.shape, generator=generator, dtype=torch.float64)
            )
            % 1.0,
            lattice=base.lattice,
            counts=base.counts,
        )
        for k in range(3)
    ]
    merged = CrystalDataset(
        material_ids=sum((c.material_ids for c in copies), ()),
        species=torch.cat([c.species for c in copies]),
        frac=torch.cat([c.frac for c in copies]),
        lattice=torch.cat([c.lattice for c in copies]),
        counts=torch.cat([c.counts for c in copies]),
    )
    return merged.save(path)


def _torchrun(*args: object) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", CHGGEN_NO_PROGRESS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parents[3]), env.get("PYTHONPATH", "")])
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "--no-python", sys.executable, "-c", CHGGEN, *map(str, args),
    ]  # fmt: skip
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def test_two_gloo_ranks_follow_one_process_and_resume(tmp_path):
    data = _bigger_dataset(tmp_path / "set.dataset.pt")
    dataset = read_structures([data])
    n_train = len(split_by_id(dataset, 0.2)[0])
    # a batch size whose last batch holds one structure: rank 1's share of it is empty
    batch_size = next(b for b in range(3, 9) if n_train % b == 1)
    flags = {"preset": "tiny", "batch_size": batch_size, "val_fraction": 0.2, "lr": 5e-3}
    flags |= {"warmup_steps": 200, "threads": 1, "device": "cpu"}
    single = train(
        TrainConfig(data=[data], output_dir=tmp_path / "one", epochs=2, **flags), dataset=dataset
    )

    cli = ["--data", data, "--output", tmp_path / "two", "--preset", "tiny", "--lr", "5e-3"]
    cli += ["--batch-size", batch_size, "--val-fraction", "0.2", "--threads", "1"]
    cli += ["--device", "cpu"]
    first = _torchrun("train", *cli, "--epochs", "1")
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.stdout.count("Training finished") == 1  # rank 0 alone reports
    resumed = _torchrun("train", "--output", tmp_path / "two", "--resume", "--epochs", "2")
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    history = json.loads((tmp_path / "two" / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2]
    for ours, theirs in zip(history, single.history, strict=True):
        assert ours["global_step"] == theirs["global_step"]
        assert ours["atoms_seen"] == theirs["atoms_seen"]
        assert ours["train_loss"] == pytest.approx(theirs["train_loss"], rel=1e-4)
        assert ours["val_loss"] == pytest.approx(theirs["val_loss"], rel=1e-4)
        for decade, value in theirs["val_loss_by_decade"].items():
            assert ours["val_loss_by_decade"][decade] == pytest.approx(value, rel=1e-4)
    a = torch.load(single.last_checkpoint, weights_only=True)
    b = torch.load(tmp_path / "two" / "last.pt", weights_only=True)
    assert torch.equal(a["resume"]["noise_rng"], b["resume"]["noise_rng"])  # same draws
    for key, value in a["resume"]["model"].items():
        torch.testing.assert_close(b["resume"]["model"][key], value, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(b["state_dict"][key], a["state_dict"][key], rtol=1e-4, atol=1e-6)
    assert (tmp_path / "two" / "best_model.pt").exists()
    assert not list((tmp_path / "two").glob(".*tmp"))  # no stray partial writes
