"""The report's figure style: one colour per route, fonts, grid, figure factories.

Figures are built with the object API (``Figure``), not ``pyplot``, so no global state or
GUI backend is involved and reports can be built from worker threads.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

#: One colour per generation route, used by every figure.
COLORS = {
    "unconditional": "#1f77b4",
    "inpainting": "#d62728",
    "symmetric guests": "#9467bd",
    "r2scan": "#2ca02c",
}
NEUTRAL = "#555555"
RC = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
}


def new_figure(width: float = 6.4, height: float = 3.8) -> Figure:
    """A figure with the report style (fonts, grid, no top/right spines)."""
    import matplotlib as mpl

    with mpl.rc_context(RC):
        fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
        # rc values are read when axes are created, so create them inside the context.
        fig.add_subplot()
    return fig


def subplots(ncols: int, width: float, height: float) -> tuple[Figure, list]:
    """A figure with ``ncols`` axes side by side, in the report style."""
    import matplotlib as mpl

    with mpl.rc_context(RC):
        fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
        axes = list(np.atleast_1d(fig.subplots(1, ncols)))
    return fig, axes
