"""How many candidates reach each step of the pipeline."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from chggen_flows.report.data import ReportSummary
from chggen_flows.report.figures.style import NEUTRAL, subplots


def funnel_figure(summary: ReportSummary, frame: pd.DataFrame) -> Figure | None:
    """Horizontal bars: number of candidates at each step of the pipeline."""
    if not summary.funnel:
        return None
    fig, (ax,) = subplots(1, 6.4, 3.6)
    names = [s.name for s in summary.funnel][::-1]
    counts = [s.count for s in summary.funnel][::-1]
    bars = ax.barh(names, counts, color=NEUTRAL)
    ax.bar_label(bars, padding=3, fontsize=8)
    ax.set_xlabel("number of candidates")
    ax.set_title(f"Candidates through the pipeline ({summary.campaign})")
    ax.set_xlim(0, max(counts) * 1.15 or 1)
    return fig
