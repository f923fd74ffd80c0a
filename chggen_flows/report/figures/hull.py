"""Candidates placed in their chemical system: ternary triangle or binary formation
energies against the reference hull (paper Fig. 5a)."""

from __future__ import annotations

from functools import lru_cache
from itertools import combinations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from pymatgen.analysis.phase_diagram import PhaseDiagram
from pymatgen.core import Composition

from chggen_flows.report.data import ReportSummary, unique_candidates
from chggen_flows.report.figures.style import COLORS, subplots


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
    fig, (ax,) = subplots(1, 5.6, 4.6)
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
