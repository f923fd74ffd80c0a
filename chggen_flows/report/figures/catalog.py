"""The report's figures, in the order they appear: file stem, caption, drawing function."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from matplotlib.figure import Figure

from chggen_flows.report.figures.energies import (
    arms_figure,
    de_rmsd_figure,
    e_d_figure,
    parity_figure,
)
from chggen_flows.report.figures.funnel import funnel_figure
from chggen_flows.report.figures.hull import hull_figure
from chggen_flows.report.figures.symmetry import (
    spacegroup_figure,
    symmetry_composition_figure,
    symmetry_natoms_figure,
)


@dataclass(frozen=True)
class FigureSpec:
    """One report figure: file stem, caption and the function that draws it."""

    name: str
    caption: str
    draw: Callable[..., Figure | None]
    #: Whether ``draw`` takes the reference ``phase_diagram`` keyword.
    uses_hull: bool = False


#: The report's figures in the order they appear.
FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec("funnel", "Candidates through the pipeline.", funnel_figure),
    FigureSpec(
        "de_rmsd",
        "Energy drop dE and maximum displacement RMSD on CHGNet relaxation "
        "(paper Fig. 4a/b); dashed lines are medians.",
        de_rmsd_figure,
    ),
    FigureSpec("e_d", "Energy above hull E_d of distinct candidates (paper Fig. 4c).", e_d_figure),
    FigureSpec(
        "arms",
        "Generated vs random-search candidates: E_d distributions (dashed: medians) and "
        "the share of each arm that is symmetric or close to the hull.",
        arms_figure,
    ),
    FigureSpec(
        "symmetry_composition",
        "Symmetry success rate of unconditional generation vs "
        "inpainting per composition (paper Fig. 4f).",
        symmetry_composition_figure,
    ),
    FigureSpec(
        "symmetry_natoms",
        "Symmetry success rate per number of atoms in the cell (paper Fig. 6).",
        symmetry_natoms_figure,
    ),
    FigureSpec(
        "spacegroups", "Space groups of the distinct symmetric candidates.", spacegroup_figure
    ),
    FigureSpec(
        "parity",
        "CHGNet vs r2SCAN E_d of the candidates sent to DFT (paper Fig. 4d/e).",
        parity_figure,
    ),
    FigureSpec(
        "hull",
        "Candidates placed by composition in their chemical system, coloured by "
        "E_d (paper Fig. 5a).",
        hull_figure,
        uses_hull=True,
    ),
)
