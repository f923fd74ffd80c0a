"""``chggen reference``: build a reference hull from known structures, and show one."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import typer
from rich.table import Table

from chggen_flows.cli.common import console, get_settings
from chggen_flows.cli.inputs import structure_files
from chggen_flows.core.relax.records import RelaxSettings
from chggen_flows.errors import InputError

reference_app = typer.Typer(
    help="Reference phase diagrams (hulls) for E_d: build one from your structures, show one.",
    no_args_is_help=True,
)


@reference_app.command("build")
def build(
    inputs: list[Path] = typer.Argument(
        ...,
        help="CIF/POSCAR/JSON files or directories of the system's known phases "
        "(including one structure of every element).",
        show_default=False,
    ),
    chemsys: str = typer.Option(..., "--chemsys", help="Chemical system, e.g. Li-Si or Zn-P-S."),
    out: Path = typer.Option(..., "--out", "-o", help="Output reference set (.json.gz)."),
    missing: list[str] = typer.Option(
        [],
        "--missing",
        help="Formula of a known phase you could not include (repeatable): E_d next to it "
        "is flagged as possibly too low.",
    ),
    licence: str = typer.Option("", "--licence", help="Licence/provenance text to record."),
    potential: str = typer.Option(
        RelaxSettings.default("potential"),
        "--potential",
        "-p",
        help="Interatomic potential that relaxes the structures (that of the candidates the "
        "hull is for: chgnet, chgnet-r2scan, sevennet-0, ...).",
    ),
    device: str | None = typer.Option(None, help="cpu, cuda, cuda:N or auto (default: settings)."),
) -> None:
    """Relax known structures with a potential (the candidates' settings) and write a hull.

    The file works wherever a reference is asked for: `chggen ehull --reference FILE`,
    `stability.reference: FILE` in a campaign spec, `chggen report --hull-reference FILE`.
    Each file name (without its ending) becomes the entry id. The file records the
    potential, and E_d of another potential's energies against it is refused. Nothing is
    written if a structure fails to relax.
    """
    from chggen_flows.core.stability import describe_hull, get_reference
    from chggen_flows.core.stability.build_references import build_reference_set

    found = structure_files(inputs)
    if not found:
        raise InputError("no structures given", hint="pass CIF files or directories")
    structures = {}
    for name, structure in found:
        key = Path(name).name.removesuffix(".gz").rsplit(".", 1)[0]
        while key in structures:
            key += "+"
        structures[key] = structure
    settings = RelaxSettings(
        device=device or get_settings(device=device).device, potential=potential
    )
    with contextlib.redirect_stdout(sys.stderr):  # CHGNet prints when it loads
        path = build_reference_set(
            structures,
            chemsys,
            out,
            missing,
            settings,
            source=f"user structures ({out.name})",
            licence=licence,
        )
    summary = describe_hull(get_reference(path), chemsys.split("-"))
    console.print(f"Wrote {path}: {summary.line()}", highlight=False)


@reference_app.command("show")
def show(
    chemsys: str = typer.Argument(..., help="Chemical system, e.g. Li-Si."),
    reference: str = typer.Option(
        "offline", "--reference", "-r", help="offline, mp, mp-r2scan or a reference/entries file."
    ),
    potential: str = typer.Option(
        RelaxSettings.default("potential"),
        "--potential",
        "-p",
        help="Whose offline hull to show (built and cached on first use for potentials "
        "other than chgnet); files and MP hulls show the potential they were made by.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the hull summary as JSON."),
) -> None:
    """The phases of a reference hull: stable ones, others, and known phases it lacks."""
    from chggen_flows.core.stability import describe_hull, get_reference

    with contextlib.redirect_stdout(sys.stderr):  # a potential prints when it loads
        provider = get_reference(reference, potential=potential)
    summary = describe_hull(provider, chemsys.split("-"))
    if as_json:
        typer.echo(json.dumps(summary.model_dump(), indent=2))
        return
    console.print(summary.line(), highlight=False)
    made_by = provider.potential or "DFT"
    table = Table(
        title=f"{summary.chemsys} hull ({summary.reference}, {summary.functional}, {made_by})"
    )
    for column in ("phase", "entry", "E_form eV/atom", "E above hull eV/atom"):
        table.add_column(column)
    for phase in [*summary.stable, *summary.unstable]:
        table.add_row(
            phase.formula,
            str(phase.entry_id),
            f"{phase.formation_energy_per_atom:+.4f}",
            f"{phase.e_above_hull:.4f}",
        )
    for item in summary.missing:
        table.add_row(item["formula"], "missing", "", item.get("note", ""))
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add ``chggen reference`` to the root app."""
    app.add_typer(reference_app, name="reference")
