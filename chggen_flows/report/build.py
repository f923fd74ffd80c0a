"""Build a campaign report directory: ``report.html``, ``summary.json``, figures, CIFs.

The directory is assembled in a temporary sibling and moved into place only when
everything was written, so an interrupted build never leaves half a report behind.
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from pymatgen.analysis.phase_diagram import PhaseDiagram
from pymatgen.core import Structure

from chggen_flows.core.analysis import compare_locality
from chggen_flows.core.stability.ehull import HullSummary
from chggen_flows.errors import InputError
from chggen_flows.progress import track
from chggen_flows.report.data import ReportSummary, gather, largest_generated, normalise_frame
from chggen_flows.report.figures import FIGURES, locality_figure
from chggen_flows.report.html import RenderedFigure, cif_name, render_html

#: Called with candidate ids and a stage ("final" or a stage name such as "generated"),
#: returns their structures at that stage (ids without one are left out).
StructureLoader = Callable[[list[str], str], Mapping[str, Structure]]


@dataclass
class ReportResult:
    """Where a report was written and what it contains."""

    out_dir: Path
    html: Path
    summary: ReportSummary
    figures: dict[str, Path] = field(default_factory=dict)
    cifs: dict[str, Path] = field(default_factory=dict)


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _check_replaceable(out_dir: Path) -> None:
    """Refuse to replace anything but an empty directory or a previous report."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise InputError(f"{out_dir} exists and is not a directory.", "Choose another --out.")
    if any(out_dir.iterdir()) and not (out_dir / "summary.json").is_file():
        raise InputError(
            f"{out_dir} is not empty and holds no previous report, so it is not replaced.",
            "Give a new or empty directory with --out (a previous report is replaced).",
        )


def build_report(
    frame: pd.DataFrame,
    out_dir: str | Path,
    *,
    campaign: str | None = None,
    top: int = 20,
    structure_loader: StructureLoader | None = None,
    reference_structures: Sequence[Structure] | None = None,
    locality_top: int = 10,
    cn_method: str = "crystalnn",
    reference_hull: PhaseDiagram | None = None,
    hull_summary: HullSummary | None = None,
    progress: bool | None = None,
) -> ReportResult:
    """Write the report of one campaign into ``out_dir``.

    An existing ``out_dir`` is replaced only if it is empty or holds a previous report
    (``summary.json``); anything else raises InputError before any work is done.

    Parameters
    ----------
    frame
        Candidates table (``load_candidates``); may be empty or partial.
    out_dir
        Output directory.
    campaign
        Name shown in the report (default: the ``campaign`` column).
    top
        Rows of the best-candidates table.
    structure_loader
        Gives structures by candidate id and stage; without it the table has no CIFs
        and the locality analysis is skipped.
    reference_structures
        Known structures of the chemical system; with them (and a loader) the report
        compares the raw output of unconditional generation (stage ``generated``, before
        any relaxation) of the ``locality_top`` largest cells with them: the locality
        bias of paper Fig. 2.
    locality_top
        Number of generated structures in the locality analysis.
    cn_method
        Coordination-number method of the locality analysis.
    reference_hull
        Reference phase diagram of the chemical system; its stable phases (and a
        ternary's tie lines) are drawn in the hull figure.
    hull_summary
        What that hull is (:func:`chggen_flows.core.stability.describe_hull`): named in
        the E_d section, its missing phases marked in the figure.
    progress
        Force the progress bar on (True) or off (False); default: on a terminal only.

    Returns
    -------
    ReportResult
        Paths of the written files and the gathered numbers.
    """
    out_dir = Path(out_dir)
    _check_replaceable(out_dir)
    df = normalise_frame(frame)
    summary = gather(df, campaign=campaign, top=top)
    if hull_summary is not None:
        summary.hull = hull_summary.line()
        summary.missing_phases = [m["formula"] for m in hull_summary.missing]
    disable = None if progress is None else not progress
    figures: dict[str, RenderedFigure] = {}
    for spec in track(FIGURES, "Report figures", total=len(FIGURES), disable=disable):
        extra = {"phase_diagram": reference_hull} if spec.uses_hull else {}
        fig = spec.draw(summary, df, **extra)
        if fig is not None:
            figures[spec.name] = RenderedFigure(spec.name, spec.caption, _png(fig))

    structures: dict[str, Structure] = {}
    if structure_loader is not None and summary.best:
        structures = dict(structure_loader([b.candidate_id for b in summary.best], "final"))
    cifs = {cid: s.to(fmt="cif") for cid, s in structures.items()}

    locality, note = None, None
    if not reference_structures:
        note = "No reference structures were given (chggen report --reference FILE... or offline)."
    elif structure_loader is None:
        note = "The candidates' structures are not available, so there is nothing to compare."
    else:
        ids = largest_generated(df, locality_top)
        generated = structure_loader(ids, "generated") if ids else {}
        if not generated:
            note = "No unconditionally generated structures are available to compare."
        else:
            comparison = compare_locality(
                [generated[i] for i in ids if i in generated],
                reference_structures,
                method=cn_method,
            )
            locality = comparison.to_dict()
            caption = (
                "Partial RDFs and coordination numbers of the largest unconditionally generated "
                "cells (before relaxation) vs the reference structures (paper Fig. 2)."
            )
            figures["locality"] = RenderedFigure(
                "locality", caption, _png(locality_figure(comparison))
            )

    html = render_html(summary, figures, cifs, locality=locality, locality_note=note)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private; a report is meant to be shared
        (tmp / "figures").mkdir()
        for fig in figures.values():
            (tmp / "figures" / f"{fig.name}.png").write_bytes(fig.png)
        if cifs:
            (tmp / "cifs").mkdir()
            for cid, cif in cifs.items():
                (tmp / "cifs" / cif_name(cid)).write_text(cif)
        (tmp / "summary.json").write_text(summary.model_dump_json(indent=2))
        if locality is not None:
            (tmp / "locality.json").write_text(json.dumps(locality, indent=2))
        (tmp / "report.html").write_text(html, encoding="utf-8")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ReportResult(
        out_dir=out_dir,
        html=out_dir / "report.html",
        summary=summary,
        figures={name: out_dir / "figures" / f"{name}.png" for name in figures},
        cifs={cid: out_dir / "cifs" / cif_name(cid) for cid in cifs},
    )
