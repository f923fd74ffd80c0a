"""Figures drawn from known inputs: what is plotted where."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.core import Composition

from chggen_flows.report import gather
from chggen_flows.report.data import normalise_frame
from chggen_flows.report.figures import hull_figure


def _frame(chemsys: str, formulas: list[str], e_d: list[float]) -> pd.DataFrame:
    return normalise_frame(
        pd.DataFrame(
            {
                "candidate_id": [f"c{i}" for i in range(len(formulas))],
                "chemsys": chemsys,
                "reduced_formula": formulas,
                "e_d": e_d,
                "below_threshold": [v < 0.1 for v in e_d],
            }
        )
    )


def _collection(ax, label: str):
    return next(c for c in ax.collections if c.get_label() == label)


def test_binary_hull_places_candidates_and_reference_phases():
    frame = _frame("Li-Si", ["Li3Si", "LiSi", "LiSi"], [0.2, 0.05, -0.01])
    diagram = PhaseDiagram(
        [
            PDEntry(Composition(f), e)
            for f, e in (("Li", 0.0), ("Si", 0.0), ("LiSi", -0.6), ("Li2Si", -0.1))
        ]
    )
    summary = gather(frame)
    summary.missing_phases = ["Li3Si"]
    fig = hull_figure(summary, frame, phase_diagram=diagram)
    ax = fig.axes[0]
    # Formation energy (paper Fig. 5a): candidates sit at hull + E_d. The hull is
    # Li (0) - LiSi (-0.3 eV/atom) - Si (0), so -0.15 at Li3Si.
    points = _collection(ax, "candidates").get_offsets()
    np.testing.assert_allclose(points, [[0.25, 0.05]])
    stars = _collection(ax, "below DFT threshold").get_offsets()
    np.testing.assert_allclose(stars, [[0.5, -0.25], [0.5, -0.31]])
    ref = _collection(ax, "stable reference phases").get_offsets()
    assert sorted(map(tuple, np.round(ref, 6))) == [(0.0, 0.0), (0.5, -0.3), (1.0, 0.0)]
    # Li2Si is above the Li-LiSi tie line: drawn open, as another reference entry.
    other = _collection(ax, "other reference entries").get_offsets()
    np.testing.assert_allclose(other, [[1 / 3, -0.1 / 3]])
    (hull,) = [line for line in ax.lines if line.get_label() == "convex hull (reference)"]
    np.testing.assert_allclose(hull.get_ydata(), [0.0, -0.3, 0.0])
    assert any("Li3Si (missing)" in t.get_text() for t in ax.texts)


def test_binary_without_a_reference_plots_e_d():
    frame = _frame("Li-Si", ["Li3Si", "LiSi"], [0.2, 0.05])
    ax = hull_figure(gather(frame), frame).axes[0]
    np.testing.assert_allclose(
        _collection(ax, "candidates").get_offsets(), [[0.25, 0.2], [0.5, 0.05]]
    )
    assert ax.get_ylabel() == "E_d (eV/atom)"


def test_ternary_hull_draws_tie_lines_and_stars():
    frame = _frame("P-S-Zn", ["ZnPS3", "ZnS", "P2S5"], [0.05, 0.3, 0.02])
    diagram = PhaseDiagram(
        [PDEntry(Composition(f), e) for f, e in (("Zn", 0), ("P", 0), ("S", 0), ("ZnS", -2.0))]
    )
    fig = hull_figure(gather(frame), frame, phase_diagram=diagram)
    ax = fig.axes[0]
    stars = _collection(ax, "below DFT threshold").get_offsets()
    assert len(stars) == 2
    # Corners P (0, 0), S (1, 0), Zn (1/2, sqrt(3)/2): x = S + Zn/2, y = Zn sqrt(3)/2.
    # ZnPS3 = (P, S, Zn) 0.2, 0.6, 0.2; P2S5 = 2/7, 5/7, 0.
    np.testing.assert_allclose(stars, [[0.7, 0.2 * np.sqrt(3) / 2], [5 / 7, 0.0]], atol=1e-12)
    # Triangle outline + 5 tie lines of the hull Zn-P-S-ZnS (3 edges + 2 to ZnS inside).
    assert len(ax.lines) == 1 + 5


def test_hull_without_e_d_or_with_four_elements_is_skipped():
    empty = _frame("Li-Si", ["LiSi"], [float("nan")])
    assert hull_figure(gather(empty), empty) is None
    quaternary = _frame("Li-P-S-Zn", ["LiZnPS4"], [0.1])
    assert hull_figure(gather(quaternary), quaternary) is None


@pytest.mark.parametrize("chemsys", ["Li-Si", "P-S-Zn"])
def test_hull_without_reference_has_no_reference_points(chemsys):
    formulas = ["LiSi"] if chemsys == "Li-Si" else ["ZnPS3"]
    frame = _frame(chemsys, formulas, [0.05])
    ax = hull_figure(gather(frame), frame).axes[0]
    assert all(c.get_label() != "stable reference phases" for c in ax.collections)


def test_two_arms_get_a_comparison_section(tmp_path):
    from chggen_flows.report import build_report
    from chggen_flows.report.figures import arms_figure

    frame = _frame("Li-Si", ["Li3Si"] * 6, [0.01, 0.05, 0.2, 0.3, 0.4, 0.02])
    frame["arm"] = ["chggen"] * 3 + ["baseline:pyxtal"] * 3
    frame["spacegroup_number"] = [194, 1, 12, 225, 166, 1]
    frame["valid"] = True
    summary = gather(frame)
    rows = {r["arm"]: r for r in summary.arms}
    assert set(rows) == {"chggen", "baseline:pyxtal"}
    assert rows["chggen"]["e_d_median"] == pytest.approx(0.05)
    assert rows["baseline:pyxtal"]["e_d_median"] == pytest.approx(0.3)
    assert rows["chggen"]["share_e_d_below_0.03"] == pytest.approx(1 / 3)
    assert rows["baseline:pyxtal"]["symmetric_share"] == pytest.approx(2 / 3)
    right = arms_figure(summary, frame).axes[1]
    heights = [p.get_height() for p in right.patches]
    assert heights == pytest.approx([2 / 3, 1 / 3, 2 / 3, 2 / 3, 1 / 3, 1 / 3])
    result = build_report(frame, tmp_path / "report", progress=False)
    html = result.html.read_text()
    assert "Generation vs random search" in html and "baseline:pyxtal" in html
    assert "arms" in result.figures
    # a campaign without a baseline has no such section
    assert gather(frame[frame.arm == "chggen"]).arms == []


def test_symmetric_guests_get_the_third_symmetry_bar(tmp_path):
    """Unconditional, inpainting and symmetric-guest shares side by side; the copies do
    not count twice as unconditional and the random-search arm counts in none."""
    from chggen_flows.report import build_report
    from chggen_flows.report.figures import symmetry_composition_figure

    frame = _frame("Li-Si", ["Li3Si"] * 7, [0.05] * 7)
    frame["arm"] = ["chggen"] * 3 + ["chggen:symmetric-guests"] * 3 + ["baseline:pyxtal"]
    frame["guest_symmetry"] = ["free"] * 3 + ["symmetric"] * 3 + [None]
    frame["symmetric_uncond"] = [False, False, True, False, False, True, None]
    frame["symmetric"] = [False, True, True, True, True, True, True]
    summary = gather(normalise_frame(frame))
    rate = summary.symmetry_overall
    assert (rate.n_uncond, rate.rate_uncond) == (3, pytest.approx(1 / 3))
    assert (rate.n_inpaint, rate.rate_inpaint) == (3, pytest.approx(2 / 3))
    assert (rate.n_symmetric_guests, rate.rate_symmetric_guests) == (3, pytest.approx(1.0))
    (ax,) = symmetry_composition_figure(summary, frame).axes
    heights = [p.get_height() for p in ax.patches]
    assert heights == pytest.approx([100 / 3, 200 / 3, 100.0])
    html = build_report(frame, tmp_path / "report", progress=False).html.read_text()
    assert "symmetric (symmetric guests)" in html
    # without symmetric guests the figure keeps its two bars
    plain = gather(normalise_frame(frame[frame.arm == "chggen"]))
    (ax,) = symmetry_composition_figure(plain, frame).axes
    assert len(ax.patches) == 2
