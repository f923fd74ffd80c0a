"""Matplotlib figures of a campaign report (PNG), one function per figure.

Every function takes the gathered :class:`~chggen_flows.report.data.ReportSummary` and
the normalised candidates frame and returns a :class:`matplotlib.figure.Figure`, or
None when the campaign has no data for it (the report then says what is missing).
Figures are built with the object API (``Figure``), not ``pyplot``, so no global
state or GUI backend is involved and reports can be built from worker threads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from pymatgen.analysis.phase_diagram import PhaseDiagram
from pymatgen.core import Composition

from chggen_flows.core.analysis import LocalityComparison
from chggen_flows.makers.schemas import CHGGEN_ARM
from chggen_flows.report.data import ReportSummary, SymmetryRate, unique_candidates

#: One colour per generation route, used by every figure.
COLORS = {
    "unconditional": "#1f77b4",
    "inpainting": "#d62728",
    "symmetric guests": "#9467bd",
    "r2scan": "#2ca02c",
}
_NEUTRAL = "#555555"
_RC = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
}
#: Composition/natoms bars beyond this many groups are cut (largest groups kept).
MAX_GROUPS = 30


def new_figure(width: float = 6.4, height: float = 3.8) -> Figure:
    """A figure with the report style (fonts, grid, no top/right spines)."""
    import matplotlib as mpl

    with mpl.rc_context(_RC):
        fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
        # rc values are read when axes are created, so create them inside the context.
        fig.add_subplot()
    return fig


def _subplots(ncols: int, width: float, height: float) -> tuple[Figure, list]:
    import matplotlib as mpl

    with mpl.rc_context(_RC):
        fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
        axes = list(np.atleast_1d(fig.subplots(1, ncols)))
    return fig, axes


def funnel_figure(summary: ReportSummary, frame: pd.DataFrame) -> Figure | None:
    """Horizontal bars: number of candidates at each step of the pipeline."""
    if not summary.funnel:
        return None
    fig, (ax,) = _subplots(1, 6.4, 3.6)
    names = [s.name for s in summary.funnel][::-1]
    counts = [s.count for s in summary.funnel][::-1]
    bars = ax.barh(names, counts, color=_NEUTRAL)
    ax.bar_label(bars, padding=3, fontsize=8)
    ax.set_xlabel("number of candidates")
    ax.set_title(f"Candidates through the pipeline ({summary.campaign})")
    ax.set_xlim(0, max(counts) * 1.15 or 1)
    return fig


def _histograms(ax, series: Sequence[tuple[str, pd.Series]], unit: str, quantity: str) -> bool:
    """Overlaid histograms with a dashed median line each; False when all are empty."""
    arrays = [(label, s.dropna().to_numpy(dtype=float)) for label, s in series]
    arrays = [(label, a) for label, a in arrays if a.size]
    if not arrays:
        return False
    everything = np.concatenate([a for _, a in arrays])
    hi = np.percentile(everything, 99) if everything.size > 20 else everything.max()
    lo = min(0.0, everything.min())
    bins = np.linspace(lo, hi if hi > lo else lo + 1.0, 40)
    for label, values in arrays:
        color = COLORS[label]
        ax.hist(values, bins=bins, alpha=0.55, color=color, label=f"{label} (n={values.size})")
        median = float(np.median(values))
        ax.axvline(median, color=color, ls="--", lw=1.2, label=f"median {median:.3f} {unit}")
    ax.set_xlabel(f"{quantity} ({unit})")
    ax.set_ylabel("candidates")
    ax.legend(fontsize=7)
    return True


def de_rmsd_figure(summary: ReportSummary, frame: pd.DataFrame) -> Figure | None:
    """dE and RMSD of the CHGNet relaxations (paper Fig. 4a/b), with medians."""
    fig, (ax_de, ax_rmsd) = _subplots(2, 9.0, 3.6)
    has_de = _histograms(
        ax_de,
        [("unconditional", frame["de_uncond"]), ("inpainting", frame["de_inpaint"])],
        "eV/atom",
        "energy drop dE",
    )
    has_rmsd = _histograms(
        ax_rmsd,
        [("unconditional", frame["rmsd_uncond"]), ("inpainting", frame["rmsd_inpaint"])],
        "Å",
        "max. displacement RMSD",
    )
    if not (has_de or has_rmsd):
        return None
    ax_de.set_title("Energy drop on relaxation")
    ax_rmsd.set_title("Displacement on relaxation")
    return fig


def e_d_figure(summary: ReportSummary, frame: pd.DataFrame) -> Figure | None:
    """E_d histogram of distinct candidates (paper Fig. 4c): median and fraction below 0."""
    ed = summary.e_d
    if ed is None or ed.n == 0:
        return None
    values = unique_candidates(frame)["e_d"].dropna().to_numpy(dtype=float)
    fig, (ax,) = _subplots(1, 6.4, 3.6)
    lo, hi = (
        np.percentile(values, [0.5, 99.5]) if values.size > 20 else (values.min(), values.max())
    )
    bins = np.linspace(min(lo, 0.0), max(hi, 0.0) + 1e-6, 50)
    ax.hist(values, bins=bins, color=COLORS["inpainting"], alpha=0.7)
    ax.axvline(0.0, color="black", lw=1.0)
    ax.axvline(ed.median, color=_NEUTRAL, ls="--", lw=1.2, label=f"median {ed.median:.3f} eV/atom")
    ax.set_xlabel("energy above hull E_d (eV/atom)")
    ax.set_ylabel("distinct candidates")
    ax.set_title(f"E_d (CHGNet), {100 * ed.fraction_below_zero:.1f}% below zero (n={ed.n})")
    ax.legend(fontsize=8)
    return fig


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
    fig, (ax,) = _subplots(1, width, 3.8)
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
    fig, (ax,) = _subplots(1, max(6.4, 0.35 * len(rows) + 2), 3.6)
    labels = [f"{r.symbol} ({r.number})" for r in rows]
    ax.bar(labels, [r.count for r in rows], color=_NEUTRAL)
    ax.tick_params(axis="x", rotation=45)
    ax.set_xlabel("space group (number)")
    ax.set_ylabel("distinct symmetric candidates")
    cut = len(summary.spacegroups) > MAX_GROUPS
    ax.set_title(f"Final space groups{f' ({MAX_GROUPS} most common)' if cut else ''}")
    return fig


def parity_figure(summary: ReportSummary, frame: pd.DataFrame) -> Figure | None:
    """CHGNet E_d vs r2SCAN E_d (paper Fig. 4d/e), with the y = x line."""
    if summary.parity is None:
        return None
    both = frame[["e_d", "e_d_r2scan"]].dropna()
    fig, (ax,) = _subplots(1, 4.6, 4.2)
    ax.scatter(both["e_d"], both["e_d_r2scan"], s=12, color=COLORS["r2scan"], alpha=0.7)
    lo = float(min(both.min().min(), 0.0))
    hi = float(max(both.max().max(), 0.0))
    pad = 0.05 * (hi - lo or 1.0)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="black", lw=0.8)
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_aspect("equal")
    ax.set_xlabel("E_d CHGNet (eV/atom)")
    ax.set_ylabel("E_d r2SCAN (eV/atom)")
    ax.set_title(f"CHGNet vs r2SCAN, MAE {summary.parity.mae:.3f} eV/atom (n={summary.parity.n})")
    return fig


@lru_cache(maxsize=4096)
def _fractions(formula: str, elements: tuple[str, ...]) -> tuple[float, ...]:
    comp = Composition(formula).fractional_composition
    return tuple(comp.get_atomic_fraction(e) for e in elements)


def _reference_phases(
    phase_diagram: PhaseDiagram, elements: tuple[str, ...]
) -> tuple[np.ndarray, list[str], list[tuple[int, int]]]:
    """Stable reference phases (atomic fractions, labels) and the hull's tie lines as
    index pairs into them."""
    stable = list(phase_diagram.stable_entries)
    fracs = np.array([_fractions(e.composition.reduced_formula, elements) for e in stable])
    labels = [e.composition.reduced_formula for e in stable]
    index = {id(e): i for i, e in enumerate(stable)}
    lines = set()
    for facet in phase_diagram.facets:
        members = [index[id(phase_diagram.qhull_entries[k])] for k in facet]
        lines.update(tuple(sorted(pair)) for pair in combinations(members, 2))
    return fracs, labels, sorted(lines)


def _triangle(fracs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Barycentric -> Cartesian: corners at (0,0), (1,0), (1/2, sqrt(3)/2)."""
    return fracs[:, 1] + 0.5 * fracs[:, 2], fracs[:, 2] * np.sqrt(3) / 2


def hull_figure(
    summary: ReportSummary, frame: pd.DataFrame, phase_diagram: PhaseDiagram | None = None
) -> Figure | None:
    """Candidates of the largest chemical system placed by composition, coloured by E_d.

    Binary systems: E_d against the fraction of the second element (the hull is E_d = 0).
    Ternary systems: a Gibbs triangle coloured by E_d, candidates below the DFT
    threshold as stars (paper Fig. 5a). E_d is the distance to the hull, so candidates
    need no reference entries; with ``phase_diagram`` (the reference hull of the system)
    its stable phases are drawn too, with the tie lines of a ternary hull. Unary and
    4+-element systems are not drawn.
    """
    data = unique_candidates(frame).dropna(subset=["e_d", "chemsys", "reduced_formula"])
    if data.empty:
        return None
    chemsys = data["chemsys"].astype(str).value_counts().index[0]
    elements = tuple(chemsys.split("-"))
    if len(elements) not in (2, 3):
        return None
    data = data[data["chemsys"].astype(str) == chemsys]
    fracs = np.array([_fractions(f, elements) for f in data["reduced_formula"].astype(str)])
    e_d = data["e_d"].to_numpy(dtype=float)
    below = data["below_threshold"].fillna(False).astype(bool).to_numpy()
    reference = None
    if phase_diagram is not None and {el.symbol for el in phase_diagram.elements} >= set(elements):
        reference = _reference_phases(phase_diagram, elements)
    fig, (ax,) = _subplots(1, 5.6, 4.6)
    if len(elements) == 2 and phase_diagram is not None and reference is not None:
        _binary_formation_hull(ax, phase_diagram, elements, data, fracs, e_d, below)
        for formula in summary.missing_phases:
            comp = Composition(formula)
            if {el.symbol for el in comp.elements} <= set(elements) and len(comp.elements) > 1:
                x = comp.get_atomic_fraction(elements[1])
                ax.axvline(x, color="0.5", ls=":", lw=1.0, zorder=1)
                ax.annotate(
                    f"{formula} (missing)",
                    (x, 1.0),
                    xycoords=("data", "axes fraction"),
                    rotation=90,
                    va="top",
                    ha="right",
                    fontsize=6,
                    color="0.4",
                )
    elif len(elements) == 2:
        ax.scatter(
            fracs[:, 1], e_d, s=10, alpha=0.5, color=COLORS["inpainting"], label="candidates"
        )
        ax.axhline(0.0, color="black", lw=1.0, label="E_d = 0 (the hull)")
        ax.set_xlabel(f"fraction of {elements[1]} (atomic)")
        ax.set_ylabel("E_d (eV/atom)")
        ax.set_xlim(-0.02, 1.02)
        ax.legend(fontsize=8)
    else:
        x, y = _triangle(fracs)
        corners = np.array([[0, 0], [1, 0], [0.5, np.sqrt(3) / 2], [0, 0]])
        ax.plot(corners[:, 0], corners[:, 1], color="black", lw=1.0)
        for (cx, cy), el, va in zip(corners[:3], elements, ("top", "top", "bottom"), strict=True):
            ax.annotate(
                el,
                (cx, cy),
                ha="center",
                va=va,
                xytext=(0, -6 if va == "top" else 4),
                textcoords="offset points",
                fontsize=10,
                fontweight="bold",
            )
        if reference is not None:
            ref_fracs, labels, lines = reference
            rx, ry = _triangle(ref_fracs)
            for i, j in lines:
                ax.plot([rx[i], rx[j]], [ry[i], ry[j]], color="0.6", lw=0.7, zorder=1)
            ax.scatter(
                rx, ry, marker="D", s=18, color="black", zorder=3, label="stable reference phases"
            )
            for xi, yi, label in zip(rx, ry, labels, strict=True):
                if label not in elements:
                    ax.annotate(
                        label, (xi, yi), xytext=(3, 3), textcoords="offset points", fontsize=6
                    )
        vmin = min(0.0, float(e_d.min()))
        vmax = max(float(np.percentile(e_d, 95)) if e_d.size > 1 else float(e_d.max()), 1e-3)
        style = {"cmap": "viridis_r", "vmin": vmin, "vmax": vmax}
        sc = ax.scatter(x[~below], y[~below], c=e_d[~below], s=10, alpha=0.7, **style)
        ax.scatter(
            x[below],
            y[below],
            c=e_d[below],
            s=40,
            marker="*",
            edgecolors="black",
            linewidths=0.3,
            label="below DFT threshold",
            **style,
        )
        fig.colorbar(sc, ax=ax, label="E_d (eV/atom)", shrink=0.8)
        ax.set_aspect("equal")
        ax.set_axis_off()
        ax.legend(fontsize=7, loc="upper right")
    ax.set_title(f"Candidates in the {chemsys} system (n={len(data)})")
    return fig


def _binary_formation_hull(
    ax,
    diagram: PhaseDiagram,
    elements: tuple[str, ...],
    data: pd.DataFrame,
    fracs: np.ndarray,
    e_d: np.ndarray,
    below: np.ndarray,
) -> None:
    """Formation energy against composition, as paper Fig. 5a: the hull through the
    stable reference phases, other reference phases as open marks, the known phases the
    reference lacks as dotted lines, and candidates at hull + E_d coloured by E_d."""
    refs = {el: diagram.el_refs[Composition(el).elements[0]].energy_per_atom for el in elements}

    def hull_formation(formula: str) -> float:
        comp = Composition(formula)
        hull = diagram.get_hull_energy_per_atom(comp)
        return hull - sum(comp.get_atomic_fraction(el) * refs[el] for el in elements)

    inside = [
        e
        for e in diagram.all_entries
        if {el.symbol for el in e.composition.elements} <= set(elements)
    ]
    stable = sorted(
        (e for e in inside if e in diagram.stable_entries),
        key=lambda e: e.composition.get_atomic_fraction(elements[1]),
    )
    xs = [e.composition.get_atomic_fraction(elements[1]) for e in stable]
    ys = [diagram.get_form_energy_per_atom(e) for e in stable]
    ax.plot(xs, ys, color="black", lw=1.0, zorder=2, label="convex hull (reference)")
    ax.scatter(xs, ys, marker="D", s=30, color="black", zorder=4, label="stable reference phases")
    for x, y, e in zip(xs, ys, stable, strict=True):
        ax.annotate(
            e.composition.reduced_formula,
            (x, y),
            xytext=(0, -12),
            textcoords="offset points",
            ha="center",
            fontsize=7,
        )
    others = [e for e in inside if e not in diagram.stable_entries]
    if others:
        ox = [e.composition.get_atomic_fraction(elements[1]) for e in others]
        oy = [diagram.get_form_energy_per_atom(e) for e in others]
        ax.scatter(
            ox,
            oy,
            marker="D",
            s=22,
            facecolors="none",
            edgecolors="0.4",
            zorder=3,
            label="other reference entries",
        )
    formation = np.array([hull_formation(f) for f in data["reduced_formula"].astype(str)]) + e_d
    vmax = max(float(np.percentile(e_d, 95)) if e_d.size > 1 else float(e_d.max()), 1e-3)
    style = {"cmap": "viridis_r", "vmin": min(0.0, float(e_d.min())), "vmax": vmax}
    sc = ax.scatter(
        fracs[~below, 1],
        formation[~below],
        c=e_d[~below],
        s=12,
        alpha=0.8,
        zorder=5,
        label="candidates",
        **style,
    )
    if below.any():
        ax.scatter(
            fracs[below, 1],
            formation[below],
            c=e_d[below],
            s=45,
            marker="*",
            edgecolors="black",
            linewidths=0.3,
            zorder=6,
            label="below DFT threshold",
            **style,
        )
    ax.figure.colorbar(sc, ax=ax, label="E_d (eV/atom)", shrink=0.8)
    ax.set_xlabel(f"fraction of {elements[1]} (atomic)")
    ax.set_ylabel("formation energy (eV/atom)")
    ax.set_xlim(-0.02, 1.02)
    ax.legend(fontsize=7, loc="upper right")


def arms_figure(summary: ReportSummary, frame: pd.DataFrame) -> Figure | None:
    """Generated vs random search: E_d of distinct candidates per arm, and each arm's
    symmetric share and shares below 0.03 / 0.1 eV/atom."""
    if not summary.arms:
        return None
    data = unique_candidates(frame).dropna(subset=["e_d"])
    fig, (left, right) = _subplots(2, 9.6, 3.6)
    arms = [row["arm"] for row in summary.arms]
    palette = [COLORS["inpainting"], _NEUTRAL, COLORS["r2scan"], COLORS["unconditional"]]
    values = [
        data.loc[data["arm"].fillna(CHGGEN_ARM) == arm, "e_d"].to_numpy(float) for arm in arms
    ]
    present = [v for v in values if v.size]
    if present:
        everything = np.concatenate(present)
        hi = np.percentile(everything, 99) if everything.size > 20 else everything.max()
        lo = min(0.0, everything.min())
        bins = np.linspace(lo, hi if hi > lo else lo + 1.0, 30)
        for arm, v, color in zip(arms, values, palette, strict=False):
            if v.size:
                left.hist(v, bins=bins, alpha=0.5, color=color, label=f"{arm} (n={v.size})")
                left.axvline(float(np.median(v)), color=color, ls="--", lw=1.2)
    left.set_xlabel("E_d of distinct candidates (eV/atom)")
    left.set_ylabel("candidates")
    left.legend(fontsize=7)
    keys = [
        ("symmetric_share", "symmetric"),
        ("share_e_d_below_0.03", "E_d < 0.03"),
        ("share_e_d_below_0.1", "E_d < 0.1"),
    ]
    width = 0.8 / len(arms)
    for i, (row, color) in enumerate(zip(summary.arms, palette, strict=False)):
        heights = [float(row.get(k) or 0.0) for k, _ in keys]
        right.bar(np.arange(len(keys)) + i * width, heights, width, color=color, label=row["arm"])
    right.set_xticks(np.arange(len(keys)) + width * (len(arms) - 1) / 2)
    right.set_xticklabels([label for _, label in keys])
    right.set_ylabel("share of the arm's candidates")
    right.set_ylim(0, 1)
    right.legend(fontsize=7)
    fig.suptitle("Generation vs random search (same compositions, cells and relaxation)")
    return fig


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


def locality_figure(comparison: LocalityComparison) -> Figure:
    """Generated vs reference structures (paper Fig. 2): partial RDFs, one panel per
    element pair (top row), and the distribution of coordination numbers, one panel per
    element (bottom row)."""
    import matplotlib as mpl

    pairs = sorted(set(comparison.generated.g) | set(comparison.reference.g))
    elements = sorted(set(comparison.cn_generated.cn) | set(comparison.cn_reference.cn))
    ncols = max(len(pairs), len(elements), 1)
    with mpl.rc_context(_RC):
        fig = Figure(figsize=(3.0 * ncols, 6.0), dpi=110, layout="constrained")
        axes = np.atleast_2d(fig.subplots(2, ncols, squeeze=False))
    sets = (
        ("generated", comparison.generated, comparison.cn_generated, COLORS["unconditional"]),
        ("reference", comparison.reference, comparison.cn_reference, _NEUTRAL),
    )
    for ax, pair in zip(axes[0], pairs, strict=False):
        for label, rdf, _, color in sets:
            if pair in rdf.g:
                ax.plot(rdf.r, rdf.g[pair], color=color, lw=1.0, label=label)
        ax.set_xlabel("r (Å)")
        ax.set_ylabel("g(r)")
        ax.set_title(f"{'-'.join(pair)}, D = {comparison.rdf_distance[pair]:.2f}")
    max_cn = (
        int(
            max(
                np.max(v)
                for stats in (comparison.cn_generated, comparison.cn_reference)
                for v in stats.cn.values()
            )
        )
        if elements
        else 0
    )
    cns = np.arange(max_cn + 1)
    for ax, element in zip(axes[1], elements, strict=False):
        for offset, (label, _, stats, color) in zip((-0.2, 0.2), sets, strict=True):
            if element in stats.cn:
                ax.bar(
                    cns + offset,
                    100 * stats.histogram(element, max_cn),
                    width=0.4,
                    color=color,
                    label=label,
                )
        ax.set_xlabel(f"coordination number ({comparison.cn_generated.method})")
        ax.set_ylabel(f"{element} sites (%)")
        ax.set_title(f"{element} coordination")
    for ax in axes[0][len(pairs) :]:
        ax.set_visible(False)
    for ax in axes[1][len(elements) :]:
        ax.set_visible(False)
    axes[0][0].legend(fontsize=7)
    return fig
