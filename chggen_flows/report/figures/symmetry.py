"""Symmetry figures: success rate per composition and per cell size (paper Fig. 4f and
6), space groups of the symmetric candidates."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from chggen_flows.report.data import ReportSummary, SymmetryRate
from chggen_flows.report.figures.style import COLORS, NEUTRAL, subplots

#: Composition/natoms bars beyond this many groups are cut (largest groups kept).
MAX_GROUPS = 30


def _rate_bars(rows: list[SymmetryRate], xlabel: str, title: str) -> Figure | None:
    if not rows:
        return None
    if len(rows) > MAX_GROUPS:
        # Keep the largest groups, in their original (e.g. numeric) order.
        largest = sorted(rows, key=lambda r: -(r.n_uncond + r.n_inpaint + r.n_symmetric_guests))[
            :MAX_GROUPS
        ]
        kept = {r.group for r in largest}
        rows = [r for r in rows if r.group in kept]
        title = f"{title} ({MAX_GROUPS} largest groups)"
    width = max(6.4, 0.35 * len(rows) + 2)
    fig, (ax,) = subplots(1, width, 3.8)
    x = np.arange(len(rows))
    bars = [("rate_uncond", "unconditional"), ("rate_inpaint", "inpainting")]
    if any(r.n_symmetric_guests for r in rows):  # inpaint.guest_symmetry: the third bar
        bars.append(("rate_symmetric_guests", "symmetric guests"))
    width = 0.8 / len(bars)
    for i, (key, label) in enumerate(bars):
        rates = [getattr(r, key) for r in rows]
        heights = [100 * v if v is not None else 0.0 for v in rates]
        offset = (i - (len(bars) - 1) / 2) * width
        ax.bar(x + offset, heights, width=width, color=COLORS[label], label=label)
    ax.set_xticks(x, [r.group for r in rows], rotation=45 if len(rows) > 8 else 0, ha="right")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("symmetric (not P1/P-1) (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig


def symmetry_composition_figure(summary: ReportSummary, frame: pd.DataFrame) -> Figure | None:
    """Symmetry success, unconditional vs inpainting (vs symmetric guests), per
    composition (paper Fig. 4f)."""
    return _rate_bars(
        summary.symmetry_by_composition, "composition", "Symmetry success per composition"
    )


def symmetry_natoms_figure(summary: ReportSummary, frame: pd.DataFrame) -> Figure | None:
    """Symmetry success, unconditional vs inpainting, per number of atoms (paper Fig. 6)."""
    return _rate_bars(
        summary.symmetry_by_natoms, "atoms per cell", "Symmetry success per cell size"
    )


def spacegroup_figure(summary: ReportSummary, frame: pd.DataFrame) -> Figure | None:
    """Bars: distinct symmetric candidates per final space group (most common first)."""
    if not summary.spacegroups:
        return None
    rows = summary.spacegroups[:MAX_GROUPS]
    fig, (ax,) = subplots(1, max(6.4, 0.35 * len(rows) + 2), 3.6)
    labels = [f"{r.symbol} ({r.number})" for r in rows]
    ax.bar(labels, [r.count for r in rows], color=NEUTRAL)
    ax.tick_params(axis="x", rotation=45)
    ax.set_xlabel("space group (number)")
    ax.set_ylabel("distinct symmetric candidates")
    cut = len(summary.spacegroups) > MAX_GROUPS
    ax.set_title(f"Final space groups{f' ({MAX_GROUPS} most common)' if cut else ''}")
    return fig
