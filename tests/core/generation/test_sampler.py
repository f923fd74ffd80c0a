"""The predictor-corrector sampler against exact scores, seeding and batch invariance."""

from __future__ import annotations

import weakref

import numpy as np
import pytest
import torch
from pymatgen.core import Composition, Lattice

from chggen_flows.core.generation import (
    BRAVAIS_TYPES,
    GenerationRequest,
    SamplerSettings,
    generate,
    rejection_summary,
)
from chggen_flows.core.generation.sampler import SamplingJob, sample_jobs
from chggen_flows.core.generation.schedule import sigma_levels
from chggen_flows.core.model import ScoreModel, ScoreModelConfig
from chggen_flows.errors import InputError

from .analytic import PeriodicMixtureScore

CELL = np.diag([6.0, 7.0, 8.0])
CENTRES = np.array([[0.25, 0.25, 0.25], [0.75, 0.6, 0.5]])


def test_sigma_levels_are_geometric_with_a_final_zero():
    sigmas = sigma_levels(200, 10.0, 0.001)
    assert len(sigmas) == 201 and sigmas[0] == 0.0
    assert sigmas[1] == pytest.approx(0.001) and sigmas[-1] == pytest.approx(10.0)
    ratios = sigmas[2:] / sigmas[1:-1]
    assert np.allclose(ratios, ratios[0])


def test_sampler_reproduces_a_periodic_gaussian_mixture():
    # independent atoms, each from a 30/70 mixture of Gaussians (width 0.3 A) wrapped on
    # the cell; 16 atoms per structure, as few-atom structures make the corrector's
    # per-structure step size erratic
    width, weights = 0.3, [0.3, 0.7]
    score = PeriodicMixtureScore(CENTRES.tolist(), weights, width)
    jobs = [SamplingJob([3] * 16, CELL, 100 + i) for i in range(40)]
    settings = SamplerSettings(n_levels=100, n_corrector=2, dtype="float64")
    results = sample_jobs(score, jobs, settings, list(range(100, -1, -1)), torch.device("cpu"))
    pos = np.concatenate([r.positions for r in results])
    lengths = np.diag(CELL)
    d = pos[:, None, :] - CENTRES[None] * lengths
    d -= np.round(d / lengths) * lengths  # minimum image
    nearest = np.argmin((d**2).sum(-1), axis=1)
    own = d[np.arange(len(pos)), nearest]
    n = len(pos)
    # mixture weight within 3 standard errors, width within 10% (both checked per mode)
    assert abs((nearest == 1).mean() - 0.7) < 3 * np.sqrt(0.21 / n)
    for mode in (0, 1):
        std = np.sqrt((own[nearest == mode] ** 2).mean(axis=0))
        assert np.all(np.abs(std / width - 1) < 0.1), std
    assert abs(own.mean()) < 0.05


def _mixture() -> PeriodicMixtureScore:
    return PeriodicMixtureScore(CENTRES.tolist(), [0.5, 0.5], 0.4)


REQUESTS = [
    GenerationRequest(Composition("LiS"), 2, lattice=Lattice(CELL)),
    GenerationRequest(Composition("Li3S"), 1, lattice=Lattice(CELL * 1.1)),
    GenerationRequest(Composition("ZnPS3"), 1, lattice=Lattice(CELL)),
]


def test_seeded_and_batch_invariant_with_exact_score():
    settings = SamplerSettings(n_levels=30, n_corrector=2, dtype="float64", min_distance=0.0)
    batched = generate(REQUESTS, _mixture(), settings, seed=5, device="cpu")
    again = generate(REQUESTS, _mixture(), settings, seed=5, device="cpu")
    other = generate(REQUESTS, _mixture(), settings, seed=6, device="cpu")
    for a, b, c in zip(batched, again, other, strict=True):
        assert np.array_equal(a.structure.frac_coords, b.structure.frac_coords)
        assert not np.allclose(a.structure.frac_coords, c.structure.frac_coords)
    # one at a time, each with the seed it had in the batch: identical structures
    for request, cand in zip(REQUESTS, batched, strict=True):
        alone = GenerationRequest(
            request.composition, request.formula_units, request.lattice, seed=cand.metadata["seed"]
        )
        (single,) = generate([alone], _mixture(), settings, device="cpu")
        assert np.array_equal(single.structure.frac_coords, cand.structure.frac_coords)
    # small batches (one structure per model call) change nothing either
    split = generate(
        REQUESTS,
        _mixture(),
        SamplerSettings(**{**settings.as_dict(), "max_batch_atoms": 1}),
        seed=5,
        device="cpu",
    )
    for a, b in zip(batched, split, strict=True):
        assert np.array_equal(a.structure.frac_coords, b.structure.frac_coords)
    assert [c.structure.composition.reduced_formula for c in batched] == ["LiS", "Li3S", "ZnPS3"]


def test_collapsed_outputs_are_rejected_and_counted():
    # every atom drawn to one tight site: atoms end up on top of each other
    collapse = PeriodicMixtureScore([[0.5, 0.5, 0.5]], [1.0], 0.01)
    settings = SamplerSettings(n_levels=20, n_corrector=1, dtype="float64", min_distance=0.5)
    out = generate(REQUESTS[:2], collapse, settings, seed=0, device="cpu")
    assert not any(c.valid for c in out)
    assert all(c.reason.startswith("too close") for c in out)
    assert all(c.metadata["min_distance"] < 0.5 for c in out)
    summary = rejection_summary(out)
    assert summary["n_rejected"] == 2 and summary["reasons"] == {"too close": 2}


@pytest.fixture(scope="module")
def tiny_model() -> ScoreModel:
    torch.manual_seed(0)
    return (
        ScoreModel(ScoreModelConfig.preset("tiny", elements=("Li", "P", "S", "Zn"))).double().eval()
    )  # float64: batching may only change rounding


def test_real_model_generation_batched_equals_single(tiny_model):
    settings = SamplerSettings(n_levels=6, n_corrector=1, min_distance=0.0, dtype="float64")
    requests = [
        GenerationRequest(Composition("ZnPS3"), 2),
        GenerationRequest(Composition("Li3PS4"), 1),
    ]
    batched = generate(requests, tiny_model, settings, seed=11, device="cpu")
    for request, cand in zip(requests, batched, strict=True):
        meta = cand.metadata
        assert meta["v0_source"] == "regression" and meta["lattice_type"] in BRAVAIS_TYPES
        assert cand.structure.volume == pytest.approx(meta["natoms"] * meta["v0"], rel=1e-6)
        assert meta["model_calls"] == 6 + 5 * 1 and meta["final_score_norm"] > 0
        alone = GenerationRequest(request.composition, request.formula_units, seed=meta["seed"])
        (single,) = generate([alone], tiny_model, settings, device="cpu")
        assert single.structure.lattice == cand.structure.lattice
        diff = single.structure.frac_coords - cand.structure.frac_coords
        assert np.abs(diff - np.round(diff)).max() < 1e-8  # float64: rounding only
    assert len(batched[0].structure) == 10 and batched[0].structure.composition["Zn"] == 2


def test_unsupported_element_and_bad_composition_fail_early(tiny_model):
    with pytest.raises(InputError, match="Si"):
        generate([Composition("LiSi")], tiny_model, SamplerSettings(n_levels=2), device="cpu")
    with pytest.raises(InputError, match="whole atoms"):
        generate([Composition("Li0.5S")], tiny_model, SamplerSettings(n_levels=2), device="cpu")


def test_out_of_memory_halves_batches_without_changing_results():
    calls: list[int] = []

    def small_device(species, pos, lattice, batch, sigma):
        calls.append(len(species))
        if len(species) > 12:  # stands in for a GPU that fits 12 atoms
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return _mixture()(species, pos, lattice, batch, sigma)

    settings = SamplerSettings(n_levels=10, n_corrector=1, dtype="float64", min_distance=0.0)
    reference = generate(REQUESTS, _mixture(), settings, seed=2, device="cpu")
    squeezed = generate(REQUESTS, small_device, settings, seed=2, device="cpu")
    assert max(calls) > 12 and max(c for c in calls[-5:]) <= 12
    for a, b in zip(reference, squeezed, strict=True):
        assert np.array_equal(a.structure.frac_coords, b.structure.frac_coords)


def test_bad_settings_are_input_errors():
    with pytest.raises(InputError):
        SamplerSettings(corrector_norm="sqrt2")  # type: ignore[arg-type]
    with pytest.raises(InputError):
        SamplerSettings(sigma_min=20.0)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"n_levels": 0}, "n_levels must be >= 1, got 0"),
        ({"sigma_min": 0.0}, "sigma_min must be > 0"),
        ({"sigma_max": 0.0001}, "sigma_max must be >= sigma_min"),
        ({"n_corrector": -1}, "n_corrector must be >= 0, got -1"),
        ({"snr": 0.0}, "snr must be > 0, got 0.0"),
        ({"min_distance": -1.0}, "min_distance must be >= 0"),
        ({"max_batch_atoms": 0}, "max_batch_atoms must be >= 1, got 0"),
        ({"max_batch_size": 0}, "max_batch_size must be >= 1, got 0"),
        ({"dtype": "float16"}, "dtype must be 'float32' or 'float64'"),
    ],
)
def test_each_bad_setting_names_its_field_and_range(options, message):
    """Campaign specs locate an error by the field its message names (one check each)."""
    with pytest.raises(InputError, match=message):
        SamplerSettings(**options)


def test_plain_runtime_out_of_memory_is_retried_and_frees_the_failed_batch(monkeypatch):
    """vesin and other extensions report OOM as a plain RuntimeError; the retry comes
    after the traceback (and the failed batch's tensors in its frames) is released."""
    from chggen_flows.core.generation import sampler

    held: list[weakref.ref] = []
    freed_before_cleanup: list[bool] = []

    def small_device(species, pos, lattice, batch, sigma):
        if len(species) > 12:
            scratch = torch.zeros(len(species), 64)  # what a failed forward leaves behind
            held.append(weakref.ref(scratch))
            raise RuntimeError("vesin: CUDA error: out of memory (simulated)")
        return _mixture()(species, pos, lattice, batch, sigma)

    def spy(device):
        freed_before_cleanup.append(all(ref() is None for ref in held))

    monkeypatch.setattr(sampler, "_free_memory", spy)
    settings = SamplerSettings(n_levels=6, n_corrector=1, dtype="float64", min_distance=0.0)
    reference = generate(REQUESTS, _mixture(), settings, seed=2, device="cpu")
    squeezed = generate(REQUESTS, small_device, settings, seed=2, device="cpu")
    assert held and freed_before_cleanup and all(freed_before_cleanup)
    for a, b in zip(reference, squeezed, strict=True):
        assert np.array_equal(a.structure.frac_coords, b.structure.frac_coords)


def test_other_runtime_errors_are_not_taken_for_out_of_memory():
    from chggen_flows.core.generation.sampler import is_out_of_memory

    def broken(species, pos, lattice, batch, sigma):
        raise RuntimeError("shape mismatch")

    settings = SamplerSettings(n_levels=3, n_corrector=0, dtype="float64", min_distance=0.0)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        generate(REQUESTS, broken, settings, seed=2, device="cpu")
    assert is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory"))
    assert is_out_of_memory(RuntimeError("DefaultCPUAllocator: can't allocate memory"))
    assert not is_out_of_memory(ValueError("out of memory"))


def test_batches_are_sized_from_the_model_config(tiny_model):
    from chggen_flows.core.generation.sampler import DEFAULT_BYTES_PER_ATOM, _bytes_per_atom

    config = tiny_model.config
    # float64 model: twice the float32 figure; larger structures need more per atom
    assert _bytes_per_atom(tiny_model, 20) == 2 * config.inference_bytes_per_atom()
    assert _bytes_per_atom(tiny_model, 100) > _bytes_per_atom(tiny_model, 20)
    assert _bytes_per_atom(_mixture(), 20) == DEFAULT_BYTES_PER_ATOM
    paper = ScoreModelConfig.preset("paper").inference_bytes_per_atom()
    assert ScoreModelConfig().inference_bytes_per_atom() < paper
