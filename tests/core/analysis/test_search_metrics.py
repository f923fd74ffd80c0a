"""Search metrics on hand-made candidate tables with known answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Composition, Lattice, Structure

from chggen_flows.core.analysis.references import named_known_structures
from chggen_flows.core.analysis.search_metrics import (
    MetricsSettings,
    candidate_table,
    charge_neutral,
    rediscoveries,
    search_metrics,
    too_close,
)
from chggen_flows.core.baseline import random_search
from chggen_flows.core.generation import GenerationRequest
from chggen_flows.errors import InputError, ReferenceDataError

NAN = float("nan")
ROWS = [
    # arm, id, formula, e_d, spacegroup, duplicate_of, valid
    ("chggen", "c1", "LiSi", -0.01, 88, None, True),
    ("chggen", "c2", "LiSi", 0.02, 12, None, True),
    ("chggen", "c3", "LiSi", 0.05, 1, None, True),
    ("chggen", "c4", "LiSi", 0.02, 12, "c2", True),
    ("chggen", "c5", "Li5Si2", 0.2, 2, None, True),
    ("chggen", "c6", "Li5Si2", NAN, None, None, False),
    ("baseline:pyxtal", "b1", "LiSi", 0.08, 1, None, True),
    ("baseline:pyxtal", "b2", "LiSi", 0.15, 2, None, True),
]


@pytest.fixture
def frame() -> pd.DataFrame:
    columns = ["arm", "candidate_id", "reduced_formula", "e_d", "spacegroup_number"]
    frame = pd.DataFrame([r[:5] for r in ROWS], columns=columns)
    frame["duplicate_of"] = pd.Series([r[5] for r in ROWS], dtype=object)
    frame["valid"] = [r[6] for r in ROWS]
    frame["spacegroup_symbol"] = [None if r[4] is None else f"sg{r[4]}" for r in ROWS]
    frame["model_calls"] = [1200] * 6 + [0, 0]
    return frame


def _rattled(structure: Structure, distance: float, seed: int) -> Structure:
    rng = np.random.default_rng(seed)
    shifts = rng.normal(size=(len(structure), 3))
    shifts *= distance / np.linalg.norm(shifts, axis=1, keepdims=True)
    rattled = structure.copy()
    for i, shift in enumerate(shifts):
        rattled.translate_sites([i], shift, frac_coords=False)
    return rattled


@pytest.fixture(scope="module")
def known() -> list[tuple[str, Structure]]:
    return named_known_structures("Li-Si")


@pytest.fixture(scope="module")
def structures(known) -> dict[str, Structure]:
    lisi = dict(known)["LiSi mp-795"]
    random_lisi = random_search([GenerationRequest(Composition("LiSi"), 4, v0=18.0)] * 3, seed=0)
    (random_li5si2,) = random_search([GenerationRequest(Composition("Li5Si2"), 1, v0=19.0)])
    return {
        "c1": _rattled(lisi, 0.02, seed=0),
        "c2": random_lisi[0].structure,
        "c3": random_lisi[1].structure,
        "c4": random_lisi[0].structure,
        "c5": random_li5si2.structure,
    }


def test_named_known_structures(known):
    names = [name for name, _ in known]
    assert "LiSi mp-795" in names and "Li13Si4 mp-672287" in names
    assert names == sorted(names) and len(names) == len(set(names))
    assert all({el.symbol for el in s.composition.elements} <= {"Li", "Si"} for _, s in known)
    compounds = named_known_structures(["Li", "Si"], compounds_only=True)
    assert all(len(s.composition.elements) == 2 for _, s in compounds)
    with pytest.raises(ReferenceDataError, match="Cu-O"):
        named_known_structures("Cu-O")


def test_e_d_distribution_symmetry_and_uniqueness(frame):
    metrics = search_metrics(frame)
    assert [arm.arm for arm in metrics.arms] == ["chggen", "baseline:pyxtal"]
    arm = metrics.arm("chggen")
    assert (arm.n_candidates, arm.n_valid, arm.n_with_e_d) == (6, 5, 5)
    assert arm.e_d_median == pytest.approx(0.02)
    assert arm.n_below == {"0": 1, "0.03": 3, "0.1": 4}
    assert arm.share_below == pytest.approx({"0": 0.2, "0.03": 0.6, "0.1": 0.8})
    assert (arm.e_d_min, arm.best_candidate_id) == (pytest.approx(-0.01), "c1")
    assert (arm.best_spacegroup_number, arm.best_spacegroup_symbol) == (88, "sg88")
    assert (arm.n_classified, arm.n_symmetric) == (5, 3)  # P1 and P-1 are not symmetric
    assert arm.symmetric_share == pytest.approx(0.6)
    assert arm.n_unique == 4  # c4 duplicates c2, c6 was rejected
    assert arm.n_stable == 4
    assert arm.costs == {"model_calls": 7200.0}
    # without structures and known phases these are unknown, not zero
    assert arm.n_too_close is None and arm.n_rediscovered is None and arm.rediscovered is None
    assert arm.n_novel is None and arm.n_sun is None and arm.sun_rate is None
    by_formula = {c.reduced_formula: c for c in arm.compositions}
    assert list(by_formula) == ["Li5Si2", "LiSi"]
    lisi, li5si2 = by_formula["LiSi"], by_formula["Li5Si2"]
    assert lisi.e_d_median == pytest.approx(0.02)
    assert lisi.share_below["0.03"] == pytest.approx(0.75)
    assert (li5si2.n_candidates, li5si2.n_valid, li5si2.n_with_e_d) == (2, 1, 1)
    assert (li5si2.e_d_min, li5si2.best_spacegroup_number) == (pytest.approx(0.2), 2)
    baseline = metrics.arm("baseline:pyxtal")
    assert baseline.symmetric_share == 0.0 and baseline.n_below["0.1"] == 1
    assert baseline.e_d_median == pytest.approx(0.115)
    with pytest.raises(KeyError):
        metrics.arm("mattergen")


def test_rediscovery_novelty_and_sun(frame, structures, known):
    metrics = search_metrics(frame, structures, known)
    arm = metrics.arm("chggen")
    assert arm.rediscovered == {"LiSi mp-795": ["c1"]}
    assert arm.n_rediscovered == 1
    assert arm.n_too_close == 0
    assert arm.n_novel == 3  # c2, c3, c5 (c1 is known, c4 a duplicate, c6 rejected)
    assert arm.n_sun == 2  # c2 and c3: E_d < 0.1, unique, novel (c5 has E_d 0.2)
    assert arm.sun_rate == pytest.approx(2 / 6)
    lisi = next(c for c in arm.compositions if c.reduced_formula == "LiSi")
    assert (lisi.n_rediscovered, lisi.n_sun) == (1, 2)
    # the baseline's structures were not given: rediscovery unknown there
    baseline = metrics.arm("baseline:pyxtal")
    assert baseline.n_rediscovered is None and baseline.n_novel is None
    table = candidate_table(frame, structures, known)
    flags = table.set_index("candidate_id")
    assert flags.loc["c1", "rediscovered_as"] == "LiSi mp-795"
    assert flags.loc["c2", "rediscovered_as"] is None and flags.loc["c2", "novel"] is True
    assert flags.loc["c4", "novel"] is False and not flags.loc["c4", "unique"]
    # a stricter S.U.N. threshold counts only c2
    strict = search_metrics(frame, structures, known, MetricsSettings(sun_threshold=0.03))
    assert strict.arm("chggen").n_sun == 1
    # the candidate table itself can be passed back in
    assert search_metrics(table).arm("chggen").n_sun == 2


def test_rediscoveries_directly(structures, known):
    found = rediscoveries({k: structures[k] for k in ("c1", "c2")}, known)
    assert found == {"c1": ["LiSi mp-795"], "c2": []}
    # the two LiSi polymorphs are told apart
    other = dict(known)["LiSi mp-570363"]
    assert rediscoveries({"x": other}, known) == {"x": ["LiSi mp-570363"]}


def test_to_frame(frame, structures, known):
    table = search_metrics(frame, structures, known).to_frame()
    assert list(zip(table.arm, table.composition, strict=True)) == [
        ("chggen", "all"),
        ("chggen", "Li5Si2"),
        ("chggen", "LiSi"),
        ("baseline:pyxtal", "all"),
        ("baseline:pyxtal", "LiSi"),
    ]
    row = table.iloc[0]
    assert row["share_e_d_below_0.03"] == pytest.approx(0.6)
    assert row["n_e_d_below_0.1"] == 4
    assert row["rediscovered"] == "LiSi mp-795"
    assert row["cost_model_calls"] == 7200
    assert row["n_sun"] == 2


def test_validity_with_a_too_close_pair():
    lattice = Lattice.cubic(5.0)
    close = Structure(lattice, ["Li", "Si"], [[0, 0, 0], [0.06, 0, 0]])  # 0.3 Å apart
    fine = Structure(lattice, ["Li", "Si"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    assert too_close(close) and not too_close(fine)
    assert not too_close(close, min_distance=0.2)
    frame = pd.DataFrame(
        {"candidate_id": ["x", "y"], "reduced_formula": ["LiSi", "LiSi"], "e_d": [0.0, 0.0]}
    )
    table = candidate_table(frame, {"x": close, "y": fine})
    assert list(table.too_close) == [True, False]
    assert list(table.is_valid) == [False, True]
    assert list(table.unique) == [False, True]
    metrics = search_metrics(frame, {"x": close, "y": fine}).arm("all")
    assert (metrics.n_too_close, metrics.n_valid, metrics.n_unique) == (1, 1, 1)


def test_smact_charge_neutrality():
    assert charge_neutral("ZnPS3") is True
    assert charge_neutral(Composition("Zn3P2S8")) is True
    assert charge_neutral("Zn4S") is False
    # intermetallics / Zintl phases: not applicable unless asked for
    assert charge_neutral("Li5Si2") is None
    assert charge_neutral("Li5Si2", mode="always") is False
    assert charge_neutral("ZnPS3", mode="never") is None
    frame = pd.DataFrame(
        {
            "candidate_id": ["a", "b", "c"],
            "reduced_formula": ["ZnPS3", "Zn4S", "LiSi"],
            "e_d": [0.0, 0.0, 0.0],
        }
    )
    table = candidate_table(frame)
    assert list(table.charge_neutral) == [True, False, None]
    assert list(table.is_valid) == [True, True, True]  # reported, not enforced by default
    metrics = search_metrics(frame).arm("all")
    assert metrics.n_charge_neutral == 1
    enforced = search_metrics(frame, settings=MetricsSettings(require_charge_neutral=True))
    assert enforced.arm("all").n_valid == 2
    assert search_metrics(frame.iloc[2:]).arm("all").n_charge_neutral is None


def test_minimal_frames_and_errors():
    frame = pd.DataFrame({"candidate_id": ["a"], "reduced_formula": ["LiSi"]})
    arm = search_metrics(frame).arm("all")
    assert (arm.n_candidates, arm.n_with_e_d, arm.e_d_median, arm.n_unique) == (1, 0, None, 1)
    assert arm.share_below == {"0": None, "0.03": None, "0.1": None}
    assert arm.symmetric_share is None
    empty_known = search_metrics(frame, {}, known=[]).arm("all")
    assert empty_known.n_novel is None  # a unique candidate without its structure
    with pytest.raises(InputError, match="reduced_formula"):
        search_metrics(pd.DataFrame({"candidate_id": ["a"]}))
    with pytest.raises(InputError, match="repeat"):
        search_metrics(pd.DataFrame({"candidate_id": ["a", "a"], "reduced_formula": ["Li"] * 2}))


def test_symmetric_column_is_used_without_a_space_group():
    frame = pd.DataFrame(
        {
            "candidate_id": ["a", "b", "c"],
            "reduced_formula": ["LiSi"] * 3,
            "symmetric": [True, False, None],
        }
    )
    arm = search_metrics(frame).arm("all")
    assert (arm.n_classified, arm.n_symmetric) == (2, 1)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"thresholds": ()}, "thresholds"),
        ({"thresholds": (math.inf,)}, "thresholds"),
        ({"sun_threshold": NAN}, "sun_threshold"),
        ({"min_distance": -0.1}, "min_distance"),
        ({"ltol": 0}, "ltol"),
        ({"charge_neutrality": "sometimes"}, "charge_neutrality"),
    ],
)
def test_bad_metrics_settings_raise(kwargs, match):
    with pytest.raises(InputError, match=match):
        MetricsSettings(**kwargs)
