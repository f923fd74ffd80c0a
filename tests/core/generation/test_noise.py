"""Counter-based noise: per-structure streams, batch-independent, standard normal."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from chggen_flows.core.generation.noise import counter_normal, counter_uniform, seed_keys
from chggen_flows.core.generation.sampler import SamplerSettings, SamplingJob, sample_jobs

from .analytic import PeriodicMixtureScore

CELL = np.diag([6.0, 7.0, 8.0])


def test_normal_and_uniform_statistics():
    keys = seed_keys([7], torch.device("cpu")).repeat(100_000)
    local = torch.arange(100_000)
    z = counter_normal(keys, local, 1, 3, torch.float64)
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01
    assert abs((z**4).mean() - 3) < 0.05  # Gaussian kurtosis
    u = counter_uniform(keys, local, 0, 3, torch.float64)
    assert u.min() >= 0 and u.max() < 1 and abs(u.mean() - 0.5) < 0.01
    # another draw, seed or atom gives unrelated numbers
    other = counter_normal(keys, local, 2, 3, torch.float64)
    assert abs(np.corrcoef(z.ravel(), other.ravel())[0, 1]) < 0.01
    assert not torch.equal(counter_normal(keys[:5], local[1:6], 1, 3, torch.float64), z[:5])


def test_a_structure_is_the_same_alone_or_in_a_batch_of_eight():
    score = PeriodicMixtureScore([[0.25, 0.25, 0.25], [0.75, 0.6, 0.5]], [0.5, 0.5], 0.4)
    jobs = [SamplingJob([3] * (2 + i), CELL, seed=40 + i) for i in range(8)]
    settings = SamplerSettings(n_levels=8, n_corrector=2, dtype="float64")
    visits = list(range(8, -1, -1))
    batched = sample_jobs(score, jobs, settings, visits, torch.device("cpu"), progress=False)
    for job, together in zip(jobs, batched, strict=True):
        (alone,) = sample_jobs(score, [job], settings, visits, torch.device("cpu"), progress=False)
        assert np.array_equal(alone.positions, together.positions)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cpu_and_gpu_draw_the_same_noise():
    keys = seed_keys([1, 2, 3], torch.device("cpu")).repeat_interleave(50)
    local = torch.arange(50).repeat(3)
    cpu = counter_normal(keys, local, 5, 3, torch.float64)
    gpu = counter_normal(keys.cuda(), local.cuda(), 5, 3, torch.float64).cpu()
    torch.testing.assert_close(gpu, cpu, rtol=1e-14, atol=1e-14)
