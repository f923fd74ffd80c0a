"""Local environments of generated vs reference structures (paper Fig. 2)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from chggen_flows.core.analysis import LocalityComparison
from chggen_flows.report.figures.style import COLORS, NEUTRAL, RC


def locality_figure(comparison: LocalityComparison) -> Figure:
    """Generated vs reference structures (paper Fig. 2): partial RDFs, one panel per
    element pair (top row), and the distribution of coordination numbers, one panel per
    element (bottom row)."""
    import matplotlib as mpl

    pairs = sorted(set(comparison.generated.g) | set(comparison.reference.g))
    elements = sorted(set(comparison.cn_generated.cn) | set(comparison.cn_reference.cn))
    ncols = max(len(pairs), len(elements), 1)
    with mpl.rc_context(RC):
        fig = Figure(figsize=(3.0 * ncols, 6.0), dpi=110, layout="constrained")
        axes = np.atleast_2d(fig.subplots(2, ncols, squeeze=False))
    sets = (
        ("generated", comparison.generated, comparison.cn_generated, COLORS["unconditional"]),
        ("reference", comparison.reference, comparison.cn_reference, NEUTRAL),
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
