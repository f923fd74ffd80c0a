"""Energy figures: relaxation dE and RMSD, E_d, CHGNet vs r2SCAN, generated vs random
search (paper Fig. 4)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from chggen_flows.makers.schemas import CHGGEN_ARM
from chggen_flows.report.data import ReportSummary, unique_candidates
from chggen_flows.report.figures.style import COLORS, NEUTRAL, subplots


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
    fig, (ax_de, ax_rmsd) = subplots(2, 9.0, 3.6)
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
    fig, (ax,) = subplots(1, 6.4, 3.6)
    lo, hi = (
        np.percentile(values, [0.5, 99.5]) if values.size > 20 else (values.min(), values.max())
    )
    bins = np.linspace(min(lo, 0.0), max(hi, 0.0) + 1e-6, 50)
    ax.hist(values, bins=bins, color=COLORS["inpainting"], alpha=0.7)
    ax.axvline(0.0, color="black", lw=1.0)
    ax.axvline(ed.median, color=NEUTRAL, ls="--", lw=1.2, label=f"median {ed.median:.3f} eV/atom")
    ax.set_xlabel("energy above hull E_d (eV/atom)")
    ax.set_ylabel("distinct candidates")
    ax.set_title(f"E_d (CHGNet), {100 * ed.fraction_below_zero:.1f}% below zero (n={ed.n})")
    ax.legend(fontsize=8)
    return fig


def parity_figure(summary: ReportSummary, frame: pd.DataFrame) -> Figure | None:
    """CHGNet E_d vs r2SCAN E_d (paper Fig. 4d/e), with the y = x line."""
    if summary.parity is None:
        return None
    both = frame[["e_d", "e_d_r2scan"]].dropna()
    fig, (ax,) = subplots(1, 4.6, 4.2)
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


def arms_figure(summary: ReportSummary, frame: pd.DataFrame) -> Figure | None:
    """Generated vs random search: E_d of distinct candidates per arm, and each arm's
    symmetric share and shares below 0.03 / 0.1 eV/atom."""
    if not summary.arms:
        return None
    data = unique_candidates(frame).dropna(subset=["e_d"])
    fig, (left, right) = subplots(2, 9.6, 3.6)
    arms = [row["arm"] for row in summary.arms]
    palette = [COLORS["inpainting"], NEUTRAL, COLORS["r2scan"], COLORS["unconditional"]]
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
