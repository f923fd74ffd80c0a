"""Report numbers on a hand-made candidates table whose answers are known."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from chggen_flows.report import gather
from chggen_flows.report.data import normalise_frame


def hand_frame() -> pd.DataFrame:
    """Six candidates, two compositions, one duplicate, one rejected, two with DFT."""
    return pd.DataFrame(
        {
            "campaign": "t",
            "candidate_id": ["a", "b", "c", "d", "e", "f"],
            "reduced_formula": ["ZnS", "ZnS", "ZnS", "ZnPS3", "ZnPS3", "ZnPS3"],
            "chemsys": ["S-Zn"] * 3 + ["P-S-Zn"] * 3,
            "natoms": [4, 8, 8, 10, 10, 20],
            "mode": ["unconditional"] * 5 + ["host"],
            "stage": ["ehull", "dft", "ehull", "ehull", "generated", "dft"],
            "valid": [True, True, True, True, False, True],
            "de_uncond": [0.1, 0.2, 0.3, 0.4, None, None],
            "rmsd_uncond": [0.05, 0.15, 0.25, 0.35, None, None],
            "symmetric_uncond": [False, True, False, False, None, None],
            "framework_found": [True, True, False, True, None, None],
            "de_inpaint": [0.01, 0.02, None, 0.03, None, 0.05],
            "rmsd_inpaint": [0.1, 0.2, None, 0.3, None, 0.4],
            "symmetric": [True, True, None, False, None, True],
            "spacegroup_number": [216, 186, None, None, None, 5],
            "spacegroup_symbol": ["F-43m", "P6_3mc", None, None, None, "C2"],
            "e_d": [-0.02, 0.05, 0.05, 0.2, None, 0.01],
            "duplicate_of": [None, None, "b", None, None, None],
            "below_threshold": [True, True, False, False, None, True],
            "dft_state": [None, "COMPLETED", None, None, None, "COMPLETED"],
            "e_d_r2scan": [None, 0.03, None, None, None, 0.04],
        }
    )


def test_funnel_counts():
    funnel = {step.name: step.count for step in gather(hand_frame()).funnel}
    assert funnel == {
        "generated": 6,
        "valid": 5,
        "relaxed": 5,
        "framework found": 3,
        "inpainted": 5,
        "symmetric": 3,
        "below threshold": 3,
        "DFT done": 2,
    }


def test_distributions_and_e_d():
    s = gather(hand_frame())
    de_u, de_i = s.de
    assert (de_u.n, de_u.median) == (4, pytest.approx(0.25))
    assert (de_i.n, de_i.median) == (4, pytest.approx(0.025))
    assert s.rmsd[0].median == pytest.approx(0.2)
    # Duplicate "c" is left out: E_d of a, b, d, f = -0.02, 0.05, 0.2, 0.01.
    assert s.e_d.n == 4
    assert s.e_d.median == pytest.approx(0.03)
    assert s.e_d.fraction_below_zero == pytest.approx(0.25)
    assert s.e_d.n_below_threshold == 3


def test_symmetry_rates():
    s = gather(hand_frame())
    assert s.symmetry_overall.rate_uncond == pytest.approx(1 / 4)
    assert s.symmetry_overall.rate_inpaint == pytest.approx(3 / 4)
    by_comp = {r.group: r for r in s.symmetry_by_composition}
    assert by_comp["ZnS"].rate_uncond == pytest.approx(1 / 3)
    assert by_comp["ZnS"].rate_inpaint == pytest.approx(1.0)
    assert by_comp["ZnPS3"].n_uncond == 1 and by_comp["ZnPS3"].rate_uncond == 0.0
    assert by_comp["ZnPS3"].rate_inpaint == pytest.approx(0.5)
    assert [r.group for r in s.symmetry_by_natoms] == ["4", "8", "10", "20"]


def test_spacegroups_parity_and_best():
    s = gather(hand_frame(), top=3)
    assert {(g.symbol, g.count) for g in s.spacegroups} == {("F-43m", 1), ("P6_3mc", 1), ("C2", 1)}
    assert s.parity.n == 2
    assert s.parity.mae == pytest.approx((0.02 + 0.03) / 2)
    assert s.parity.rmse == pytest.approx(math.sqrt((0.02**2 + 0.03**2) / 2))
    assert s.parity.pearson_r is None  # two points give no meaningful correlation
    assert [b.candidate_id for b in s.best] == ["a", "f", "b"]
    assert s.best[1].spacegroup_symbol == "C2" and s.best[2].e_d_r2scan == pytest.approx(0.03)
    assert s.missing == []


def test_empty_and_partial_frames_say_what_is_missing():
    empty = gather(pd.DataFrame(), campaign="nothing")
    assert empty.n_candidates == 0 and empty.funnel == []
    assert "nothing has been generated" in empty.missing[0]
    partial = hand_frame()[["campaign", "candidate_id", "stage", "de_uncond", "rmsd_uncond"]]
    s = gather(partial)
    assert s.campaign == "t"
    assert s.de[0].median == pytest.approx(0.25)
    text = " ".join(s.missing)
    for word in ("E_d", "symmetry", "r2SCAN", "space-group"):
        assert word in text
    assert "dE/RMSD" not in text
    waiting = hand_frame().assign(
        e_d_r2scan=None, dft_state=[None, "WAITING", None, None, None, "RUNNING"]
    )
    note = next(m for m in gather(waiting).missing if "r2SCAN" in m)
    assert "1 RUNNING, 1 WAITING" in note


def test_normalise_frame_types():
    df = normalise_frame(hand_frame())
    assert str(df["symmetric"].dtype) == "boolean"
    assert df["symmetric"].isna().sum() == 2
    assert df["e_d"].dtype == float
    assert "lattice_type" in df.columns and df["lattice_type"].isna().all()


def test_largest_generated_sample_skips_host_mode():
    from chggen_flows.report.data import largest_generated

    # natoms 4, 8, 8, 10, 10, 20; "f" (20 atoms) is host mode.
    assert largest_generated(normalise_frame(hand_frame()), 3) == ["d", "e", "b"]
