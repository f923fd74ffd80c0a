"""RePaint inpainting: host exactly in place, guests from the right conditional."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from chggen_flows.core.generation import InpaintSettings, SamplerSettings, inpaint, parse_guests
from chggen_flows.core.generation.schedule import repaint_schedule
from chggen_flows.core.model import ScoreModel, ScoreModelConfig
from chggen_flows.errors import InputError

from .analytic import HostGuestGaussianScore


def test_repaint_schedule_jumps_back_and_ends_clean():
    visits = repaint_schedule(30, jump_length=10, n_resample=3)
    steps = np.diff(visits)
    assert visits[0] == 30 and visits[-1] == 0
    assert set(steps) == {-1, 10}
    assert (steps == 10).sum() == 2 * 2  # jump points 10 and 20, r - 1 = 2 times each
    assert (steps == -1).sum() == 30 + 4 * 10
    # j = 1 is the paper's per-level resampling, never from the clean level 0
    paper = repaint_schedule(5, jump_length=1, n_resample=3)
    down_from = [hi for hi, lo in itertools.pairwise(paper) if lo == hi - 1]
    assert [down_from.count(t) for t in (5, 4, 3, 2, 1)] == [3, 3, 3, 3, 1]


def test_inpainting_samples_the_conditional_and_keeps_the_host():
    # host atoms sit 1 A (per axis) away from where the joint density puts hosts, so the
    # guests' conditional mean (host + offset) is far from their marginal mean
    offset, b = np.array([1.5, 0.0, -1.0]), 0.25**2
    score = HostGuestGaussianScore([0.5, 0.5, 0.5], offset.tolist(), a=0.4**2, b=b)
    lattice = Lattice.orthorhombic(6, 7, 8)
    rng = np.random.default_rng(0)
    k = 8
    centre = np.array([3.0, 3.5, 4.0])
    host = Structure(
        lattice, ["Si"] * k, centre + rng.choice([-1.0, 1.0], (k, 3)), coords_are_cartesian=True
    )
    settings = SamplerSettings(n_levels=100, n_corrector=2, dtype="float64", min_distance=0.0)
    out = inpaint(
        [host] * 25, [{"Li": k}] * 25, score, settings, InpaintSettings(10, 3), seed=1, device="cpu"
    )
    for cand in out:
        assert np.array_equal(cand.structure.frac_coords[:k], host.frac_coords)
        assert [s.symbol for s in cand.structure.species] == ["Si"] * k + ["Li"] * k
    guests = np.array([c.structure.cart_coords[k:] for c in out])
    d = guests - host.cart_coords[None]
    d -= np.round(d / lattice.abc) * lattice.abc
    d = d.reshape(-1, 3)
    assert np.all(np.abs(d.mean(axis=0) - offset) < 0.1), d.mean(axis=0)
    # conditional std 0.25 A; the marginal would be sqrt(0.4^2 + 0.25^2) = 0.47 A
    assert np.all(np.abs(d.std(axis=0) / np.sqrt(b) - 1) < 0.15), d.std(axis=0)


def test_parse_guests():
    assert parse_guests("Li:4") == {"Li": 4}
    assert parse_guests("Li:2, Na:1") == {"Li": 2, "Na": 1}
    for bad in ("Li", "Li:x", "Xx:2", "Li:0", ""):
        with pytest.raises(InputError):
            parse_guests(bad)


def test_real_model_inpainting_batched_equals_single():
    torch.manual_seed(0)
    model = (
        ScoreModel(ScoreModelConfig.preset("tiny", elements=("Li", "Zn", "S"))).double().eval()
    )  # float64: batching may only change rounding
    host = Structure.from_spacegroup(
        "F-43m", Lattice.cubic(5.4), ["Zn", "S"], [[0, 0, 0], [0.25, 0.25, 0.25]]
    )
    host.add_site_property("magmom", [0.0] * len(host))
    settings = SamplerSettings(n_levels=8, n_corrector=1, min_distance=0.0, dtype="float64")
    guests = [{"Li": 2}, {"Li": 1}]
    out = inpaint(
        [host, host], guests, model, settings, InpaintSettings(2, 2), seed=3, device="cpu"
    )
    for guest, cand in zip(guests, out, strict=True):
        assert np.array_equal(cand.structure.frac_coords[: len(host)], host.frac_coords)
        assert cand.structure.composition["Li"] == guest["Li"]
        assert cand.metadata["mode"] == "inpaint" and cand.metadata["inpaint"]["n_resample"] == 2
        (single,) = inpaint(
            [host],
            [guest],
            model,
            settings,
            InpaintSettings(2, 2),
            seeds=[cand.metadata["seed"]],
            device="cpu",
        )
        diff = single.structure.frac_coords - cand.structure.frac_coords
        assert np.abs(diff - np.round(diff)).max() < 1e-8  # float64: rounding only
    with pytest.raises(InputError):
        inpaint([host], [{"Si": 1}], model, settings, device="cpu")


def test_bad_resampling_settings_name_the_field():
    with pytest.raises(InputError, match="jump_length must be >= 1, got 0"):
        InpaintSettings(jump_length=0)
    with pytest.raises(InputError, match="n_resample must be >= 1, got 0"):
        InpaintSettings(n_resample=0)


def _two_mode_host():
    """A host of one Si and a guest density with two modes, at x = 0.25 and x = 0.75."""
    from .analytic import PeriodicMixtureScore

    lattice = Lattice.orthorhombic(8, 6, 6)
    host = Structure(lattice, ["Si"], [[0.0, 0.0, 0.0]])
    score = PeriodicMixtureScore([[0.25, 0.5, 0.5], [0.75, 0.5, 0.5]], [1.0, 1.0], width=0.2)
    return host, score


def test_a_guest_start_keeps_the_guest_in_the_mode_it_starts_in():
    from chggen_flows.core.generation.inpaint import GuestStart

    host, score = _two_mode_host()
    settings = SamplerSettings(n_levels=60, n_corrector=1, dtype="float64", min_distance=0.0)
    start = GuestStart(("Li",), ((0.25, 0.5, 0.5),), sigma=0.5)
    warm = start.attach(host)
    n = 40
    cold = inpaint([host] * n, [{"Li": 1}] * n, score, settings, seed=0, device="cpu")
    mixed = inpaint(
        [warm, host] * n, [{"Li": 1}] * (2 * n), score, settings, device="cpu",
        seeds=[c.metadata["seed"] for c in cold for _ in (0, 1)],
    )  # fmt: skip
    x_warm = np.array([c.structure.frac_coords[1, 0] for c in mixed[0::2]])
    x_cold = np.array([c.structure.frac_coords[1, 0] for c in cold])
    assert np.mean(np.abs(x_warm - 0.25) < 0.1) == 1.0  # every warm start stays at 0.25
    assert 0.2 < np.mean(np.abs(x_cold - 0.25) < 0.1) < 0.8  # from the prior: both modes
    for a, b in zip(cold, mixed[1::2], strict=True):  # the cold hosts of the mixed call
        assert np.array_equal(a.structure.frac_coords, b.structure.frac_coords)
    first = mixed[0]
    assert (
        first.metadata["guest_start_sigma"] == 0.5 and "guest_start_sigma" not in cold[0].metadata
    )
    assert "guest_start" not in first.structure.properties  # the candidate does not carry it
    assert first.metadata["model_calls"] < cold[0].metadata["model_calls"]  # a shorter walk


def test_a_guest_start_must_match_the_guests():
    from chggen_flows.core.generation.inpaint import GuestStart

    host, score = _two_mode_host()
    warm = GuestStart(("Li",), ((0.25, 0.5, 0.5),), sigma=0.5).attach(host)
    assert GuestStart.of(Structure.from_dict(warm.as_dict())) == GuestStart.of(warm)  # stored
    settings = SamplerSettings(n_levels=10, n_corrector=0, dtype="float64", min_distance=0.0)
    with pytest.raises(InputError, match="guest start places"):
        inpaint([warm], [{"Li": 2}], score, settings, device="cpu")
