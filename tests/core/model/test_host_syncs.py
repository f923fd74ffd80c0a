"""Issue 16: the sampling loop makes at most one host sync per model call, whatever
the number of structures in the batch (counted on the CPU with ``syncs.py``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from chggen_flows.core.generation.sampler import (
    SamplerSettings,
    SamplingJob,
    cuda_syncs_per_model_call,
    reverse_diffusion,
)
from chggen_flows.core.model import ScoreModel, ScoreModelConfig, neighbors
from chggen_flows.errors import InputError

from .syncs import count_host_syncs

CELL = np.array([[5.0, 0.0, 0.0], [0.8, 5.5, 0.0], [0.3, -0.6, 6.0]])


@pytest.fixture(autouse=True)
def gpu_search(monkeypatch):
    """The neighbour search a GPU uses (the CPU uses vesin: a sync costs it nothing)."""
    monkeypatch.setattr(neighbors, "BATCHED_SEARCH_DEVICES", ("cpu", "cuda"))


@pytest.fixture(scope="module")
def model() -> ScoreModel:
    torch.manual_seed(0)
    return ScoreModel(ScoreModelConfig.preset("tiny", elements=("Li", "Si"))).eval()


def _syncs(model: ScoreModel, n_structures: int, n_levels: int) -> tuple[int, int, dict]:
    """(host syncs, model calls, syncs by kind) of one batch sampled over ``n_levels``."""
    jobs = [SamplingJob([3, 3, 14, 14, 3, 3], CELL, seed=i) for i in range(n_structures)]
    settings = SamplerSettings(n_levels=n_levels, n_corrector=1, min_distance=0.0)
    with count_host_syncs() as counter:
        results = reverse_diffusion(
            model, jobs, settings, list(range(n_levels, -1, -1)), torch.device("cpu")
        )
    return counter.total, results[0].model_calls, dict(counter.by_kind)


# Before issue 16 (measured with this file): 3 + B syncs per model call for B
# structures (one vesin search per structure, the species check, the edge counts'
# tolist and a repeat_interleave), i.e. 4 for 1 structure and 67 for 64. After: 1
# (the number of edges), plus 8 per chunk (set-up and read-out).
@pytest.mark.parametrize("n_structures", [1, 64])
def test_at_most_one_host_sync_per_model_call(model, n_structures):
    few, calls_few, _ = _syncs(model, n_structures, 2)
    many, calls_many, kinds = _syncs(model, n_structures, 5)
    per_call = (many - few) / (calls_many - calls_few)
    assert per_call <= 1, f"{per_call:.1f} syncs per model call: {kinds}"
    # what is left is a fixed set-up and read-out per chunk, not per structure
    assert few - calls_few * per_call <= 8, kinds


def test_sync_count_does_not_grow_with_the_batch(model):
    one, _, _ = _syncs(model, 1, 3)
    many, _, kinds = _syncs(model, 64, 3)
    assert many == one, kinds


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_syncs_per_model_call(model):
    """On a GPU, count the real syncs (torch's sync debug mode warns at each one)."""
    device = torch.device("cuda")
    gpu_model = ScoreModel(model.config).to(device).eval()
    jobs = [SamplingJob([3, 3, 14, 14, 3, 3], CELL, seed=i) for i in range(64)]
    figures = cuda_syncs_per_model_call(gpu_model, jobs, device)
    assert figures["syncs_per_model_call"] <= 1, figures


def test_cuda_sync_counting_refuses_the_cpu(model):
    jobs = [SamplingJob([3, 3, 14, 14, 3, 3], CELL, seed=0)]
    with pytest.raises(InputError, match="needs a CUDA device"):
        cuda_syncs_per_model_call(model, jobs, torch.device("cpu"))
