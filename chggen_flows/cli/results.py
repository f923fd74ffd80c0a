"""``chggen results``: query candidates; table, JSON, CSV or CIF files."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import typer
from rich import box
from rich.table import Table

from chggen_flows.cli.common import console, get_settings
from chggen_flows.errors import InputError

#: Terminal table: (header, frame column); the JSON/CSV outputs have every column. The
#: candidate id already names composition, formula units and lattice, so the table fits
#: an 80-column terminal without wrapping.
TABLE_COLUMNS = (
    ("candidate", "candidate_id"),
    ("atoms", "natoms"),
    ("stage", "stage"),
    ("SG", "spacegroup_symbol"),
    ("E_d", "e_d"),
    ("DFT", "dft_state"),
    ("note", "note"),
)


#: Shown after the candidate id when a campaign has several arms or templates (hosts).
ARM_COLUMNS = (("arm", "arm"), ("template", "template"))


def template_label(template: object) -> str:
    """``mp-5328 CdPS3 (12)``: a template's id, formula and space group, or ``-``."""
    if not isinstance(template, dict):
        return "-"
    group = template.get("spacegroup_number")
    label = f"{template.get('material_id', '?')} {template.get('formula', '')}".strip()
    return f"{label} ({group})" if group else label


def table_columns(frame) -> tuple[tuple[str, str], ...]:
    """The terminal table's columns: ``arm`` when the campaign has several arms,
    ``template`` when any candidate has one (analogue and substitution arms)."""
    extra = []
    if "arm" in frame.columns and frame["arm"].dropna().nunique() > 1:
        extra.append(ARM_COLUMNS[0])
    if "template" in frame.columns and frame["template"].map(lambda t: isinstance(t, dict)).any():
        extra.append(ARM_COLUMNS[1])
    return (TABLE_COLUMNS[0], *extra, *TABLE_COLUMNS[1:])


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _note(row) -> str:
    if isinstance(row.rejected_reason, str) and row.rejected_reason:
        return "rejected"
    if isinstance(row.duplicate_of, str) and row.duplicate_of:
        return "duplicate"
    if row.below_threshold == True:  # noqa: E712 - None/NaN/numpy bools mixed
        return "E_d < thr"
    return ""


def results_table(frame, title: str, limit: int | None = None) -> Table:
    """A rich table of candidates, lowest E_d first (E_d in eV/atom, SG: space group)."""
    table = Table(
        title=title,
        caption="E_d in eV/atom; SG: space group; thr: the DFT threshold",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    columns = table_columns(frame)
    for header, column in columns:
        # Numbers never shrink; on a narrow terminal the note is cut first.
        table.add_column(
            header,
            justify="right" if column in ("natoms", "e_d") else "left",
            no_wrap=True,
            min_width=6 if column == "e_d" else None,
            overflow="ellipsis",
            ratio=1 if column == "note" else None,
        )
    ordered = frame.sort_values("e_d", na_position="last")
    for row in ordered.head(limit).itertuples() if limit else ordered.itertuples():
        cells = [
            _note(row)
            if c == "note"
            else template_label(row.template)
            if c == "template"
            else _cell(getattr(row, c))
            for _, c in columns
        ]
        table.add_row(*cells)
    return table


def rejections_table(counts: dict[str, int], title: str, caption: str | None = None) -> Table:
    """Rejected candidates per kind of reason (``rejections_by_kind``) as a table."""
    table = Table(title=title, caption=caption)
    table.add_column("reason")
    table.add_column("count", justify="right")
    for kind, count in counts.items():
        table.add_row(kind, str(count))
    return table


def print_results(frame, title: str, limit: int | None = None) -> None:
    """Print the candidates table and, when any were rejected, why."""
    from chggen_flows.campaign.status import rejections_by_kind

    console.print(results_table(frame, title, limit))
    rejected = rejections_by_kind(frame)
    if rejected:
        console.print(rejections_table(rejected, "Rejected", caption="details: --json"))


def arm_summary_lines(frame) -> list[str]:
    """One line per arm comparing generated and random-search candidates (none when the
    campaign has a single arm)."""
    from chggen_flows.report.data import arm_rows

    lines = []
    for row in arm_rows(frame):
        median = row.get("e_d_median")
        lines.append(
            f"{row['arm']}: median E_d {'-' if median is None else f'{median:.3f}'} eV/atom, "
            f"{(row.get('share_e_d_below_0.1') or 0):.0%} below 0.1, "
            f"{(row.get('symmetric_share') or 0):.0%} symmetric, {row['n_unique']} unique "
            "(details: chggen results CAMPAIGN --metrics)"
        )
    return lines


def print_adaptation(store, campaign: str) -> None:
    """Name the model the campaign generated with when it adapted one (``model.adapt``):
    adapted (its checkpoint's sha256) or the base model, and why."""
    from chggen_flows.campaign.status import adaptation_outcome

    outcome = adaptation_outcome(store, campaign)
    if outcome is None:
        return
    sha = outcome["checkpoint_sha256"]
    model = f"adapted checkpoint sha256 {sha[:12]}" if sha else "the base model"
    console.print(
        f"generated with {model} ({outcome['status']}: {outcome['message']})",
        highlight=False,
        markup=False,
    )


def print_hulls(store, campaign: str) -> None:
    """Name the reference hull(s) the campaign's E_d values were computed against."""
    from chggen_flows.core.stability import HullSummary

    doc = store.query_one(
        {"metadata.campaign": campaign, "output.stage": "ehull"},
        properties=["output.summary"],
    )
    summary = (doc or {}).get("output", {}).get("summary", {})
    for hull in summary.get("hulls", []):
        console.print(f"E_d against {HullSummary(**hull).line()}", highlight=False)
    if summary.get("n_e_d_warnings"):
        console.print(
            f"[yellow]{summary['n_e_d_warnings']} E_d value(s) may be too low[/]: a known phase "
            "is missing from the hull there (column e_d_warning; docs/stability.md)"
        )


def export_cifs(store, frame, directory: Path) -> int:
    """Write one CIF per candidate (final structure) and candidates.csv into ``directory``.

    Files are written to a temporary folder next to it and moved into place only when
    all of them were written, so an interrupted export leaves no partial set.
    """
    from pymatgen.io.cif import CifWriter

    from chggen_flows.campaign.results import load_structures

    directory.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=directory))
    try:
        written = 0
        for campaign, group in frame.groupby("campaign"):
            structures = load_structures(store, campaign, group["candidate_id"].tolist())
            for cid, structure in structures.items():
                CifWriter(structure).write_file(staging / f"{campaign}__{cid}.cif")
                written += 1
        frame.to_csv(staging / "candidates.csv", index=False)
        for path in staging.iterdir():
            os.replace(path, directory / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return written


def results_command(
    campaign: str | None = typer.Argument(None, help="Campaign id (default: all campaigns)."),
    chemsys: str | None = typer.Option(None, "--chemsys", help="Chemical system, e.g. Li-Si."),
    composition: str | None = typer.Option(
        None, "--composition", help="Reduced formula, e.g. Li5Si2."
    ),
    e_d_min: float | None = typer.Option(None, "--e-d-min", help="Lowest E_d (eV/atom)."),
    e_d_max: float | None = typer.Option(None, "--e-d-max", help="Highest E_d (eV/atom)."),
    spacegroup: str | None = typer.Option(
        None, "--spacegroup", help="Final space group (number or symbol)."
    ),
    symmetric: bool | None = typer.Option(
        None, "--symmetric/--no-symmetric", help="Only (non-)symmetric final structures."
    ),
    stage: str | None = typer.Option(
        None, "--stage", help="Last stage reached (generated ... dft)."
    ),
    dft_state: str | None = typer.Option(None, "--dft-state", help="WAITING or COMPLETED."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON records (all columns)."),
    as_csv: bool = typer.Option(False, "--csv", help="Print CSV (all columns)."),
    export: Path | None = typer.Option(
        None, "--export", help="Write one CIF per candidate and candidates.csv into this folder."
    ),
    limit: int | None = typer.Option(50, "--limit", help="Rows of the table (0: all)."),
    metrics: bool = typer.Option(
        False,
        "--metrics",
        help="Search metrics per arm and composition (generated vs random search: E_d "
        "shares, symmetric, unique, rediscovered, novel, valid, S.U.N.); with --json as JSON.",
    ),
) -> None:
    """Query campaign candidates by campaign, chemical system, composition, E_d, space
    group, symmetry, stage and DFT state."""
    from chggen_flows.campaign.registry import find_campaign
    from chggen_flows.campaign.results import load_candidates
    from chggen_flows.db import get_job_store

    if sum((as_json, as_csv)) > 1:
        raise InputError("choose one of --json and --csv")
    store = get_job_store(get_settings())
    cid = find_campaign(store, campaign)["campaign"] if campaign else None
    if metrics:
        if cid is None:
            raise InputError("--metrics needs a campaign", hint="chggen results CAMPAIGN --metrics")
        _print_metrics(store, cid, as_json)
        return
    frame = load_candidates(
        store,
        cid,
        chemsys=chemsys,
        composition=composition,
        e_d_min=e_d_min,
        e_d_max=e_d_max,
        spacegroup=spacegroup,
        symmetric=symmetric,
        stage=stage,
        dft_state=dft_state,
    )
    if as_json:
        sys.stdout.write(frame.to_json(orient="records", indent=1) + "\n")
    elif as_csv:
        sys.stdout.write(frame.to_csv(index=False))
    else:
        shown = f", lowest {limit} E_d shown" if limit and len(frame) > limit else ""
        print_results(frame, f"{len(frame)} candidate(s){shown}", limit or None)
        if cid is not None:
            print_adaptation(store, cid)
    if export is not None:
        n = export_cifs(store, frame, export)
        print(f"wrote {n} CIF file(s) and candidates.csv to {export}", file=sys.stderr)


def metrics_table(frame, title: str) -> Table:
    """The search-metrics frame (one row per arm and composition) as a rich table."""
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    columns = [
        ("arm", "arm"),
        ("composition", "composition"),
        ("n", "n_candidates"),
        ("valid", "n_valid"),
        ("med E_d", "e_d_median"),
        ("<0", "share_e_d_below_0"),
        ("<0.03", "share_e_d_below_0.03"),
        ("<0.1", "share_e_d_below_0.1"),
        ("min E_d", "e_d_min"),
        ("SG", "best_spacegroup_symbol"),
        ("sym", "symmetric_share"),
        ("unique", "n_unique"),
        ("redisc.", "n_rediscovered"),
        ("novel", "n_novel"),
        ("SUN", "n_sun"),
        # per arm (the arm's row): what it cost
        ("calls", "cost_model_calls"),
        ("steps", "cost_chgnet_steps"),
        ("wall s", "cost_wall_time_s"),
    ]
    present = [(h, c) for h, c in columns if c in frame.columns]
    for header, column in present:
        table.add_column(header, justify="left" if column in ("arm", "composition") else "right")
    for row in frame.to_dict("records"):
        table.add_row(*(_cell(row.get(c)) for _, c in present))
    return table


def _print_metrics(store, campaign: str, as_json: bool) -> None:
    from chggen_flows.campaign.metrics import campaign_metrics

    result = campaign_metrics(store, campaign)
    if as_json:
        sys.stdout.write(result.model_dump_json(indent=1) + "\n")
        return
    console.print(metrics_table(result.to_frame(), f"Search metrics of {campaign}"))
    console.print(
        "E_d in eV/atom; <x: share of candidates with E_d below x; sym: symmetric share; "
        "SG: space group of the lowest E_d; SUN: stable, unique and novel (docs/baseline.md)",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Add ``chggen results`` to the root app."""
    app.command("results")(results_command)
