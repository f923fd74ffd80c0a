"""``chggen report CAMPAIGN``: the HTML/PNG report of a campaign."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from chggen_flows.cli.analysis import reference_structures
from chggen_flows.cli.common import console, err_console, get_settings
from chggen_flows.errors import InputError
from chggen_flows.progress import progress_enabled

if TYPE_CHECKING:
    import pandas as pd
    from pymatgen.core import Structure

    from chggen_flows.report.build import StructureLoader


def _read_candidates_file(path: Path) -> pd.DataFrame:
    """A candidates table exported by ``chggen results --csv`` / ``--json``."""
    import pandas as pd

    if not path.is_file():
        raise InputError(f"Candidates file {path} does not exist.", "Check the path.")
    try:
        if path.suffix == ".csv" or path.name.endswith(".csv.gz"):
            return pd.read_csv(path)
        return pd.read_json(path)
    except ValueError as exc:
        raise InputError(
            f"Could not read candidates from {path}: {exc}",
            "Export them with `chggen results CAMPAIGN --csv > file.csv`.",
        ) from exc


def _status(message: str) -> AbstractContextManager:
    """A rich spinner on stderr where progress display is on, else nothing."""
    return err_console.status(message) if progress_enabled() else nullcontext()


def _load_from_database(campaign: str) -> tuple[str, pd.DataFrame, StructureLoader]:
    """Full campaign id, candidates frame and structure loader of ``campaign``.

    A unique prefix of the id is enough (as for ``chggen status``); an unknown campaign
    raises CampaignError, a known one without candidates gives an empty frame.
    """
    from chggen_flows.campaign.registry import find_campaign
    from chggen_flows.campaign.results import load_candidates, load_structures
    from chggen_flows.db import get_job_store

    store = get_job_store(get_settings())
    campaign_id = find_campaign(store, campaign)["campaign"]
    # A spinner while the stage documents are read (the figures get a progress bar).
    with _status(f"reading the candidates of {campaign_id}"):
        frame = load_candidates(store, campaign_id)

    def loader(ids: list[str], stage: str) -> dict[str, Structure]:
        with _status(f"reading {len(ids)} structures ({stage})"):
            return load_structures(store, campaign_id, ids, stage=stage)

    return campaign_id, frame, loader


def report(
    campaign: str = typer.Argument(..., help="Campaign id (as listed by `chggen results`)."),
    out: Path = typer.Option(
        None,
        "--out",
        "-o",
        help="Output directory (default: report-CAMPAIGN_ID); a previous report there is replaced, other content is never touched.",
    ),
    top: int = typer.Option(20, "--top", min=1, help="Rows in the best-candidates table."),
    reference: list[Path] = typer.Option(
        None,
        "--reference",
        "-r",
        help="Reference structures (CIF/POSCAR/JSON) for the locality-bias section; repeatable. "
        "`offline`: the known compounds of the system shipped with chggen-flows.",
    ),
    locality_top: int = typer.Option(
        10,
        "--locality-top",
        min=1,
        help="Generated structures (largest cells first) compared with the references.",
    ),
    cn_method: str = typer.Option(
        "crystalnn",
        "--cn-method",
        help="Coordination method of the locality section: crystalnn, voronoi or cutoff.",
    ),
    hull_reference: str | None = typer.Option(
        None,
        "--hull-reference",
        help="Draw this reference hull (offline, mp, mp-r2scan or an entries file) in the "
        "hull figure and name it in the report (default: the campaign's own reference when "
        "it is the offline one).",
    ),
    candidates: Path | None = typer.Option(
        None,
        "--candidates",
        help="Read the candidates from a CSV/JSON export of `chggen results` instead of the "
        "database (no CIFs, no locality analysis).",
    ),
    synthetic: int = typer.Option(
        0,
        "--synthetic",
        min=0,
        help="Build the report from N random synthetic candidates (a demo; no database).",
    ),
) -> None:
    """Write a self-contained HTML report (figures, tables, CIFs) of CAMPAIGN.

    Shows the counts through the pipeline, dE/RMSD and E_d distributions, symmetry success of unconditional generation vs inpainting, space groups, CHGNet vs r2SCAN, the candidates in their chemical system, the best candidates and, with --reference, the locality-bias analysis. Sections without data say what is missing.
    """
    from chggen_flows.report import build_report

    loader = None
    name = campaign
    if synthetic and candidates:
        raise InputError("--synthetic and --candidates exclude each other.", "Give one of them.")
    if synthetic:
        from chggen_flows.report.synthetic import synthetic_candidates

        frame = synthetic_candidates(synthetic, campaign=campaign)
        name = f"{campaign} (synthetic data)"
    elif candidates is not None:
        frame = _read_candidates_file(candidates)
    else:
        campaign, frame, loader = _load_from_database(campaign)
        name = campaign
    out = out or Path(f"report-{campaign}")
    # The campaign's main chemical system: that of most candidates.
    systems = frame["chemsys"].dropna().astype(str) if "chemsys" in frame else []
    elements = systems.value_counts().index[0].split("-") if len(systems) else []
    references = reference_structures(reference, elements) if reference else None
    hull, hull_summary = None, None
    recorded = frame["e_d_reference"].dropna().astype(str) if "e_d_reference" in frame else []
    if hull_reference is None and any(r.startswith("offline-") for r in recorded):
        hull_reference = "offline"  # the campaign's own reference, drawn by default
    if hull_reference and elements:
        from chggen_flows.core.stability import describe_hull, get_reference

        # the offline hull of the potential that relaxed the candidates
        provider = get_reference(hull_reference, potential=_campaign_potential(frame))
        hull = provider.phase_diagram(elements)
        hull_summary = describe_hull(provider, elements)
    result = build_report(
        frame,
        out,
        campaign=name,
        top=top,
        structure_loader=loader,
        reference_structures=references,
        locality_top=locality_top,
        cn_method=cn_method,
        reference_hull=hull,
        hull_summary=hull_summary,
    )
    console.print(
        f"Report of {result.summary.n_candidates} candidates written to {result.html} "
        f"({len(result.figures)} figures, {len(result.cifs)} CIFs)."
    )
    for note in result.summary.missing:
        console.print(f"[yellow]Missing:[/] {note}", highlight=False)


def _campaign_potential(frame: pd.DataFrame) -> str | None:
    """The potential the candidates were relaxed with (None: not recorded, i.e. CHGNet)."""
    if "potential" not in frame:
        return None
    found = sorted(set(frame["potential"].dropna().astype(str)))
    return found[0] if len(found) == 1 else None


def register(app: typer.Typer) -> None:
    """Add the ``report`` command to the root app."""
    app.command("report")(report)
