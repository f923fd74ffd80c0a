"""DSM loss, minimum image, overfitting and exact resume of the training loop."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from chggen_flows.core.model import ScoreModel, load_score_model
from chggen_flows.core.model.data import CrystalDataset, read_structures
from chggen_flows.core.model.training import (
    TrainConfig,
    dsm_loss,
    image_reach,
    minimum_image,
    train,
    validation_loss,
)
from chggen_flows.errors import CheckpointError, ConfigError, InputError

DATA = Path(__file__).parents[2] / "test_data" / "model" / "tiny_structures.csv"
# the training package's folder: host reads made from its modules are counted
TRAINING = Path(dsm_loss.__code__.co_filename).parent


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
    # the bound from host copies (the GPU path), shifted by lattice vectors as the
    # wrapped DSM displacements are: the same search, no read from the device
    shifted = disp + torch.randint(-3, 4, (200, 3), generator=torch.Generator()).double() @ lattice
    reach = image_reach(shifted, lattice[None], torch.zeros(200, dtype=torch.long))
    assert 1 <= reach <= 4
    from_host = minimum_image(shifted.float(), lattice.float().expand(200, 3, 3), reach=reach)
    torch.testing.assert_close(from_host.double().norm(dim=-1), brute, rtol=1e-5, atol=1e-5)
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


# ------------------------------------------------- the loop of earlier versions, step by step

# the shipped run's resumable checkpoint (written by an earlier loop; frozen, unlike the
# run's own last.pt while it trains)
V2_RUN = Path(__file__).parents[3] / "chggen_flows" / "data" / "score_model" / "training_last.pt"
V2_DATA = Path("/work/main/runs/mp_train.dataset.pt")


def _reference_minimum_image(displacement, lattice):
    """minimum_image as earlier versions wrote it (bound read from the device)."""
    inverse = torch.linalg.inv(lattice)
    frac = torch.einsum("ni,nij->nj", displacement, inverse)
    frac = frac - torch.round(frac)
    radius = torch.einsum("ni,nij->nj", frac, lattice).norm(dim=-1)
    reach = radius[:, None] * inverse.norm(dim=1) + 0.5
    n = max(1, int(np.ceil(float(reach.max()))))
    grid = torch.arange(-n, n + 1, dtype=displacement.dtype)
    offsets = torch.cartesian_prod(grid, grid, grid)
    images = torch.einsum("nki,nij->nkj", frac.unsqueeze(1) + offsets, lattice)
    return images[torch.arange(len(images)), images.norm(dim=-1).argmin(dim=1)]


def _reference_steps(config: TrainConfig, dataset: CrystalDataset, steps: int, payload=None):
    """``steps`` optimiser steps as the loop of earlier versions made them (one process,
    per-step loss reads, no counts); from ``payload`` (a last.pt) or a fresh start."""
    import copy
    import math

    from chggen_flows.core.model.checkpoint import model_from_payload
    from chggen_flows.core.model.data import split_by_id
    from chggen_flows.core.model.training import cosine_factor, sample_sigma

    torch.manual_seed(config.seed)
    train_idx, _ = split_by_id(dataset, config.val_fraction)
    train_set = dataset.subset(train_idx)
    items = torch.arange(len(train_set))
    if config.focus:
        related = train_set.related_to(config.focus)
        items = torch.cat([items, related.repeat(config.focus_repeat - 1)])
    rng = torch.Generator().manual_seed(config.seed + 1)
    if payload is None:
        model = config.initial_model(dataset)
        ema = copy.deepcopy(model)
        state = {"epoch": 0, "step_in_epoch": 0, "global_step": 0, "lr_scale": 1.0}
        state["epoch_loss_sum"] = 0.0
    else:
        model = model_from_payload(payload, "last.pt")
        ema = copy.deepcopy(model)
        model.load_state_dict(payload["resume"]["model"])
        state = dict(payload["resume"]["state"])
        rng.set_state(payload["resume"]["noise_rng"])
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    if payload is not None:
        optimizer.load_state_dict(payload["resume"]["optimizer"])
    ema.requires_grad_(False)
    params, ema_params = list(model.parameters()), list(ema.parameters())
    order = items[
        torch.randperm(
            len(items), generator=torch.Generator().manual_seed(config.seed + state["epoch"])
        )
    ]
    per_epoch = math.ceil(len(items) / config.batch_size)
    assert state["step_in_epoch"] + steps <= per_epoch
    for step in range(state["step_in_epoch"], state["step_in_epoch"] + steps):
        idx = order[step * config.batch_size : (step + 1) * config.batch_size]
        batch = train_set.batch(idx, torch.float32)
        sigma = sample_sigma(len(idx), config.sigma_min, config.sigma_max, rng).float()
        noise = torch.randn(batch.num_atoms, 3, generator=rng, dtype=torch.float32)
        atom_lattice, atom_sigma = batch.lattice[batch.batch], sigma[batch.batch].unsqueeze(-1)
        moved = batch.pos + atom_sigma * noise
        frac = torch.linalg.solve(atom_lattice.transpose(1, 2), moved.unsqueeze(-1)).squeeze(-1)
        noisy = torch.einsum("ni,nij->nj", frac - torch.floor(frac), atom_lattice)
        target = -_reference_minimum_image(noisy - batch.pos, atom_lattice) / atom_sigma**2
        score = model(batch.species, noisy, batch.lattice, batch.batch, sigma)
        loss = (atom_sigma**2 * (score - target) ** 2).sum(-1).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
        warm = min(1.0, (state["global_step"] + 1) / max(1, config.warmup_steps))
        warm *= cosine_factor(config, state["epoch"] + step / per_epoch)
        for group in optimizer.param_groups:
            group["lr"] = max(config.lr * state["lr_scale"] * warm, config.min_lr)
        optimizer.step()
        g = state["global_step"]
        decay = min(config.ema_decay, (1 + g) / (10 + g))
        torch._foreach_lerp_(ema_params, [p.detach() for p in params], 1.0 - decay)
        state["global_step"] += 1
        state["epoch_loss_sum"] += loss.item()
    return model, ema, state, rng


def _assert_same_weights(checkpoint: Path, model, ema) -> None:
    saved = torch.load(checkpoint, weights_only=True)
    for key, value in ema.state_dict().items():
        assert torch.equal(saved["state_dict"][key], value), key
    for key, value in model.state_dict().items():
        assert torch.equal(saved["resume"]["model"][key], value), key


def test_steps_are_bit_identical_to_the_previous_loop(tmp_path, tiny_dataset):
    """No host reads, counts passed, pinned copies: the same numbers on the CPU."""
    config = _config(tmp_path, val_fraction=0.0, focus=["Li-Si"], checkpoint_every_steps=1000)
    result = train(config, dataset=tiny_dataset, max_steps=2)
    model, ema, state, rng = _reference_steps(config, tiny_dataset, 2)
    _assert_same_weights(result.last_checkpoint, model, ema)
    saved = torch.load(result.last_checkpoint, weights_only=True)["resume"]
    assert saved["state"]["epoch_loss_sum"] == state["epoch_loss_sum"]  # same float sums
    assert torch.equal(saved["noise_rng"], rng.get_state())


@pytest.mark.skipif(
    not (V2_RUN.exists() and V2_DATA.exists()), reason="no run of the previous loop here"
)
def test_a_checkpoint_of_the_previous_loop_continues_exactly(tmp_path):
    """A copy of a real run's last.pt (TrainConfig with init_from/focus) continues as the
    loop that wrote it would have."""
    import shutil

    from chggen_flows.core.model.training import read_train_config

    run = tmp_path / "v2"
    run.mkdir()
    shutil.copy(V2_RUN, run / "last.pt")
    payload = torch.load(run / "last.pt", weights_only=True)
    # one thread: with two, a loaded machine can change how reductions are split (and
    # so their rounding) between the two runs compared here
    epochs = max(read_train_config(run).epochs, payload["resume"]["state"]["epoch"] + 1)
    config = read_train_config(run).model_copy(
        update={"output_dir": run, "data": [V2_DATA], "threads": 1, "epochs": epochs}
    )
    dataset = read_structures(config.data, max_atoms=config.max_atoms)
    result = train(config, resume=True, dataset=dataset, max_steps=2)
    model, ema, state, rng = _reference_steps(config, dataset, 2, payload)
    _assert_same_weights(result.last_checkpoint, model, ema)
    saved = torch.load(result.last_checkpoint, weights_only=True)["resume"]
    assert saved["state"]["global_step"] == state["global_step"]
    assert saved["state"]["epoch_loss_sum"] == state["epoch_loss_sum"]
    assert torch.equal(saved["noise_rng"], rng.get_state())


class _OnDevice(torch.Tensor):
    """Marks data that a GPU run keeps on the device; counts host reads made from
    the training package (``.item()``, ``float()``, ``bool()``, ``.tolist()``, ``.cpu()``...)."""

    reads: ClassVar[list[str]] = []
    _READS: ClassVar[set[str]] = {
        "item",
        "tolist",
        "__bool__",
        "__float__",
        "__int__",
        "__index__",
        "cpu",
        "numpy",
    }

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        import sys

        name = getattr(func, "__name__", "")
        if name in cls._READS and Path(sys._getframe(1).f_code.co_filename).parent == TRAINING:
            cls.reads.append(name)
        return super().__torch_function__(func, types, args, kwargs or {})


def _host_reads(monkeypatch, tmp_path, tiny_dataset, steps: int) -> int:
    from chggen_flows.core.model.training import transfer

    forward = ScoreModel.forward

    def plain_forward(self, *args, **kwargs):  # the model's own reads are not the loop's
        plain = [a.as_subclass(torch.Tensor) if isinstance(a, torch.Tensor) else a for a in args]
        return forward(self, *plain, **kwargs).as_subclass(_OnDevice)

    monkeypatch.setattr(ScoreModel, "forward", plain_forward)
    monkeypatch.setattr(
        transfer, "to_device", lambda tensor, device: tensor.to(device).as_subclass(_OnDevice)
    )
    _OnDevice.reads = []
    config = _config(
        tmp_path / str(steps), val_fraction=0.0, batch_size=1, checkpoint_every_steps=10_000
    )
    train(config, dataset=tiny_dataset, max_steps=steps)
    return len(_OnDevice.reads)


def test_training_steps_read_nothing_from_the_device(monkeypatch, tmp_path, tiny_dataset):
    """With the host-side image bound (the GPU path) a step reads nothing back: within
    an epoch the reads of a run do not grow with its steps (the checkpoint at the end
    reads the loss sum once). On the CPU the data-derived bound is one read per step."""
    from chggen_flows.core.model.training import transfer

    cpu = [_host_reads(monkeypatch, tmp_path / "cpu", tiny_dataset, n) for n in (2, 5)]
    assert cpu[1] - cpu[0] == 3  # the minimum image's bound, free on the CPU
    monkeypatch.setattr(transfer, "HOST_IMAGE_BOUND", {"cpu", "cuda"})
    gpu_path = [_host_reads(monkeypatch, tmp_path / "gpu", tiny_dataset, n) for n in (2, 5)]
    assert gpu_path == [1, 1]
    # and the host-side bound gives the same training
    a = torch.load(tmp_path / "cpu" / "5" / "run" / "last.pt", weights_only=True)["resume"]
    b = torch.load(tmp_path / "gpu" / "5" / "run" / "last.pt", weights_only=True)["resume"]
    for key, value in a["model"].items():
        torch.testing.assert_close(b["model"][key], value, rtol=1e-5, atol=1e-7)


def test_init_from_starts_at_the_source_weights(tmp_path, tiny_dataset):
    source = train(_config(tmp_path / "a", epochs=1), dataset=tiny_dataset)
    start = load_score_model(source.best_model, device="cpu")
    config = _config(tmp_path / "b", init_from=source.best_model, preset="cpu")  # preset ignored
    model = config.initial_model(tiny_dataset)
    assert model.config.elements == start.config.elements
    for key, value in start.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    small = tiny_dataset.subset([2, 3])  # Li-Zn only: a model of these lacks O, P, S
    narrow = train(_config(tmp_path / "c", epochs=1, val_fraction=0.0), dataset=small)
    with pytest.raises(ConfigError, match="does not know element"):
        _config(tmp_path / "d", init_from=narrow.best_model).initial_model(tiny_dataset)


def test_init_from_with_more_blocks_grows_the_source_model(tmp_path, tiny_dataset):
    source = train(_config(tmp_path / "a", epochs=1), dataset=tiny_dataset)
    start = load_score_model(source.best_model, device="cpu", dtype=torch.float64)
    deeper = {"num_blocks": 3}
    config = _config(tmp_path / "b", init_from=source.best_model, model_overrides=deeper)
    model = config.initial_model(tiny_dataset).double().eval()
    assert model.config.num_blocks == 3
    batch = tiny_dataset.batch(torch.arange(3))
    sigma = torch.full((3,), 0.2, dtype=torch.float64)
    inputs = (batch.species, batch.pos.double(), batch.lattice.double(), batch.batch, sigma)
    with torch.no_grad():
        torch.testing.assert_close(model(*inputs), start(*inputs), rtol=0, atol=1e-10)
    result = train(config.model_copy(update={"epochs": 1}), dataset=tiny_dataset)
    assert load_score_model(result.best_model, device="cpu").config.num_blocks == 3
    wider = {"hidden_irreps": "16x0e+8x1o+4x2e"}
    with pytest.raises(ConfigError, match="other hidden_irreps"):
        _config(tmp_path / "c", init_from=source.best_model, model_overrides=wider
                ).initial_model(tiny_dataset)  # fmt: skip
    with pytest.raises(ConfigError, match="drop trained"):
        _config(tmp_path / "c", init_from=source.best_model, model_overrides={"num_blocks": 1}
                ).initial_model(tiny_dataset)  # fmt: skip
    # the same irreps written otherwise are the same weights: compared as validated values
    assert start.config.hidden_irreps == "8x0e+4x1o+2x2e"
    same = {"num_blocks": 3, "hidden_irreps": "4x0e + 4x0e + 4x1o + 2x2e"}
    grown = _config(tmp_path / "d", init_from=source.best_model, model_overrides=same
                    ).initial_model(tiny_dataset)  # fmt: skip
    assert grown.config.hidden_irreps == start.config.hidden_irreps
    assert grown.config.num_blocks == 3


def test_batched_neighbour_search_gives_the_same_training(monkeypatch, tmp_path, tiny_dataset):
    """The GPU path (a neighbour plan from each batch's host cells, issue 16) trains the
    same model as vesin's search, to float32 summation order."""
    from chggen_flows.core.model import neighbors

    config = _config(tmp_path / "vesin", val_fraction=0.0, checkpoint_every_steps=1000)
    first = train(config, dataset=tiny_dataset, max_steps=3)
    monkeypatch.setattr(neighbors, "BATCHED_SEARCH_DEVICES", ("cpu", "cuda"))
    batched = config.model_copy(update={"output_dir": tmp_path / "batched"})
    second = train(batched, dataset=tiny_dataset, max_steps=3)
    a = torch.load(first.last_checkpoint, weights_only=True)["resume"]
    b = torch.load(second.last_checkpoint, weights_only=True)["resume"]
    for key, value in a["model"].items():
        torch.testing.assert_close(b["model"][key], value, rtol=1e-5, atol=1e-6)


def test_focus_only_trains_on_the_system_and_picks_by_its_loss(tmp_path, tiny_dataset):
    """A system-specific fine-tune: epochs hold only the related structures and the
    best model is the one with the lowest focus validation loss."""
    import csv
    import math

    from chggen_flows.core.model.data import split_by_id

    # the tiny table plus unrelated diamond Si, so the training split mixes both
    rows = list(csv.DictReader(DATA.open()))
    silicon = Structure(Lattice.cubic(5.43), ["Si"] * 2, [[0, 0, 0], [0.25, 0.25, 0.25]])
    rows += [{"material_id": f"si-{i}", "cif": silicon.to(fmt="cif")} for i in range(3)]
    table = tmp_path / "mixed.csv"
    with table.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["material_id", "cif"])
        writer.writeheader()
        writer.writerows(rows)
    dataset = read_structures([table])
    config = _config(
        tmp_path, data=[table], focus=["Li-Zn"], focus_only=True, focus_repeat=3, epochs=3
    )
    train_idx, _ = split_by_id(dataset, config.val_fraction)
    related = dataset.subset(train_idx).related_to(config.focus)
    assert 0 < len(related) < len(train_idx)
    result = train(config, dataset=dataset)
    history = json.loads((config.output_dir / "history.json").read_text())
    steps = math.ceil(len(related) * config.focus_repeat / config.batch_size)
    assert [h["global_step"] for h in history] == [steps, 2 * steps, 3 * steps]
    focus = [h["val_focus_loss"] for h in history]
    assert all(math.isfinite(f) for f in focus) and all("val_loss" in h for h in history)
    best = torch.load(result.best_model, weights_only=True)["training"]
    assert best["best_val_loss"] == pytest.approx(min(focus))
    assert best["focus_only"] is True
    with pytest.raises(ConfigError, match="needs a chemical system"):
        train(_config(tmp_path / "b", focus_only=True), dataset=tiny_dataset)
    with pytest.raises(ConfigError, match="no training structure is related"):
        train(_config(tmp_path / "c", focus=["Cs-I"], focus_only=True), dataset=tiny_dataset)


def test_training_and_validation_check_the_elements_once(monkeypatch, tmp_path, tiny_dataset):
    """Neither the steps nor the validation ask the forward to check the species (a
    host sync per call); validation checks the data's elements itself, once."""
    calls = []
    forward = ScoreModel.forward

    def recording_forward(self, *args, check_species=True, **kwargs):
        calls.append(check_species)
        return forward(self, *args, check_species=check_species, **kwargs)

    monkeypatch.setattr(ScoreModel, "forward", recording_forward)
    train(_config(tmp_path, epochs=1), dataset=tiny_dataset)
    assert calls and not any(calls)
    small = tiny_dataset.subset([2, 3])  # Li-Zn: a model of these lacks O, P, S
    narrow = ScoreModel(_config(tmp_path / "b").model_config_for(small))
    with pytest.raises(ConfigError, match="does not know element"):
        validation_loss(narrow, tiny_dataset, 0.01, 0.3, 6, torch.device("cpu"))


def test_holdout_removes_the_system_from_training(tmp_path, tiny_dataset):
    """--holdout Zn-S drops every training structure holding Zn and S (ZnS, ZnSO4),
    keeps the rest, and is recorded with the model."""
    from chggen_flows.core.model.data import split_by_id

    config = _config(tmp_path, val_fraction=0.0, epochs=1, holdout=["Zn-S"])
    train_idx, _ = split_by_id(tiny_dataset, config.val_fraction)
    held = tiny_dataset.subset(train_idx).containing(["Zn-S"])
    symbols = [tiny_dataset.subset([i]).element_sets()[0] for i in range(len(tiny_dataset))]
    assert sorted(held.tolist()) == [i for i, e in enumerate(symbols) if {30, 16} <= e]
    result = train(config, dataset=tiny_dataset)
    full = train(_config(tmp_path / "b", val_fraction=0.0, epochs=1), dataset=tiny_dataset)
    seen = json.loads((config.output_dir / "history.json").read_text())[-1]["atoms_seen"]
    seen_full = json.loads((full.output_dir / "history.json").read_text())[-1]["atoms_seen"]
    held_atoms = int(tiny_dataset.counts[held].sum())
    assert seen == seen_full - held_atoms
    saved = torch.load(result.best_model, weights_only=True)["training"]
    assert saved["holdout"] == ["Zn-S"]
    with pytest.raises(InputError, match="not a chemical system"):
        tiny_dataset.containing(["Zn-Xx"])


# ------------------------------------------------- annealing and the best model


def test_cosine_factor_runs_from_one_to_zero_between_its_epochs(tmp_path):
    from chggen_flows.core.model.training import cosine_factor

    plain = _config(tmp_path, epochs=10)
    assert [cosine_factor(plain, e) for e in (0, 5, 10)] == [1.0, 1.0, 1.0]
    annealed = _config(tmp_path, epochs=10, decay_from_epoch=6)
    assert cosine_factor(annealed, 3.0) == 1.0 and cosine_factor(annealed, 6.0) == 1.0
    assert cosine_factor(annealed, 8.0) == pytest.approx(0.5)
    assert cosine_factor(annealed, 10.0) == pytest.approx(0.0, abs=1e-12)
    assert cosine_factor(annealed, 12.0) == pytest.approx(0.0, abs=1e-12)
    rates = [cosine_factor(annealed, 6 + k / 4) for k in range(17)]
    assert all(a >= b for a, b in itertools.pairwise(rates))


def test_annealed_run_follows_the_cosine_and_resumes_exactly(tmp_path, tiny_dataset):
    from chggen_flows.core.model.training import cosine_factor

    settings = {
        "batch_size": 1,
        "epochs": 2,
        "decay_from_epoch": 0,
        "min_lr": 1e-6,
        "warmup_steps": 0,
    }
    config = _config(tmp_path / "a", **settings)
    straight = train(config, dataset=tiny_dataset)
    steps = straight.history[0]["global_step"]
    assert steps >= 2
    # the logged rate is that of each epoch's last step
    expected = [
        max(config.lr * cosine_factor(config, epoch + (steps - 1) / steps), config.min_lr)
        for epoch in (0, 1)
    ]
    assert [h["lr"] for h in straight.history] == pytest.approx(expected)
    assert expected[1] < 0.2 * config.lr < expected[0]
    interrupted = _config(tmp_path / "b", **settings)
    train(interrupted, dataset=tiny_dataset, max_steps=steps + 1)
    resumed = train(interrupted, dataset=tiny_dataset, resume=True)
    a = torch.load(straight.last_checkpoint, weights_only=True)
    b = torch.load(resumed.last_checkpoint, weights_only=True)
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key


def test_best_model_follows_any_lower_validation_loss(monkeypatch, tmp_path, tiny_dataset):
    """Gains below the plateau counter's 0.1% still replace the best model."""
    from chggen_flows.core.model.training import loop

    losses = iter([1.0, 0.9999, 0.9998, 1.2])

    def fake_validation(*args, **kwargs):
        value = next(losses)
        return {"a": value, "b": value}

    monkeypatch.setattr(loop, "validation_loss", fake_validation)
    result = train(_config(tmp_path, epochs=4, lr_patience=5), dataset=tiny_dataset)
    best = torch.load(result.best_model, weights_only=True)["training"]
    assert best["epochs_completed"] == 3
    assert best["best_val_loss"] == pytest.approx(0.9998)


def test_stop_patience_ends_a_run_that_no_longer_improves(monkeypatch, tmp_path, tiny_dataset):
    from chggen_flows.core.model.training import loop

    losses = iter([1.0, 0.9, 0.95, 0.92, 0.91, 0.5])

    def fake_validation(*args, **kwargs):
        value = next(losses)
        return {"a": value, "b": value}

    monkeypatch.setattr(loop, "validation_loss", fake_validation)
    result = train(_config(tmp_path, epochs=6, stop_patience=3), dataset=tiny_dataset)
    assert len(result.history) == 5  # epoch 2 was the best; 3, 4 and 5 were not
    assert result.early_stopped and result.finished
    best = torch.load(result.best_model, weights_only=True)["training"]
    assert best["epochs_completed"] == 2
    # resumed, an early-stopped run stays stopped
    again = train(_config(tmp_path, epochs=6, stop_patience=3), dataset=tiny_dataset, resume=True)
    assert len(again.history) == 5 and again.early_stopped


def test_min_val_structures_takes_the_next_ids_by_hash(tiny_dataset):
    from chggen_flows.core.model.data import split_by_id

    assert len(split_by_id(tiny_dataset, 0.0)[1]) == 0
    _, some = split_by_id(tiny_dataset, 0.05)
    assert len(some) + 1 < len(tiny_dataset) - 1
    _, more = split_by_id(tiny_dataset, 0.05, min_val=len(some) + 1)
    assert set(some.tolist()) < set(more.tolist()) and len(more) == len(some) + 1
    _, capped = split_by_id(tiny_dataset, 0.3, min_val=100)
    assert len(capped) == len(tiny_dataset) - 1  # one structure is always left to train on
