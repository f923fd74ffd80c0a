"""Matplotlib figures of a campaign report (PNG), one function per figure.

Modules: ``style`` (colours, figure factories), ``funnel``, ``energies``, ``symmetry``,
``hull``, ``locality``, and ``catalog`` (``FIGURES``, the report's figures in order).

Every function takes the gathered :class:`~chggen_flows.report.data.ReportSummary` and
the normalised candidates frame and returns a :class:`matplotlib.figure.Figure`, or
None when the campaign has no data for it (the report then says what is missing).
"""

from __future__ import annotations

from chggen_flows.report.figures.catalog import FIGURES, FigureSpec
from chggen_flows.report.figures.energies import (
    arms_figure,
    de_rmsd_figure,
    e_d_figure,
    parity_figure,
)
from chggen_flows.report.figures.funnel import funnel_figure
from chggen_flows.report.figures.hull import hull_figure
from chggen_flows.report.figures.locality import locality_figure
from chggen_flows.report.figures.style import COLORS, new_figure
from chggen_flows.report.figures.symmetry import (
    MAX_GROUPS,
    spacegroup_figure,
    symmetry_composition_figure,
    symmetry_natoms_figure,
)

__all__ = [
    "COLORS",
    "FIGURES",
    "MAX_GROUPS",
    "FigureSpec",
    "arms_figure",
    "de_rmsd_figure",
    "e_d_figure",
    "funnel_figure",
    "hull_figure",
    "locality_figure",
    "new_figure",
    "parity_figure",
    "spacegroup_figure",
    "symmetry_composition_figure",
    "symmetry_natoms_figure",
]
