"""``chggen ehull``: E_d of structures against a reference phase diagram."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import typer
from pymatgen.core import Structure
from rich.table import Table

from chggen_flows.cli.common import console, get_settings
from chggen_flows.cli.inputs import structure_files
from chggen_flows.errors import InputError


def ehull(
    inputs: list[Path] = typer.Argument(
        ..., help="CIF/POSCAR/JSON files or directories of them.", show_default=False
    ),
    reference: str = typer.Option(
        "offline",
        "--reference",
        "-r",
        help="offline (CHGNet-relaxed known structures, shipped), mp (Materials Project "
        "GGA/GGA+U with MP2020 corrections; needs MP_API_KEY) or an entries file (.json/.csv).",
    ),
    relax: bool = typer.Option(
        False, "--relax", help="Relax with CHGNet first (default: CHGNet single point)."
    ),
    as_json: bool = typer.Option(
        False,
        "--json",
        help="Print a JSON list of {file, formula, e_d, reference, decomposition, warning}.",
    ),
    add_reference: list[Path] = typer.Option(
        [],
        "--add-reference",
        help="Known structures (files or directories) to relax with CHGNet and add to the "
        "offline reference hull; repeatable.",
    ),
    api_key: str | None = typer.Option(
        None, "--api-key", envvar="MP_API_KEY", help="Materials Project API key (also MP_API_KEY)."
    ),
    cache_dir: Path | None = typer.Option(
        None, "--cache-dir", help="Cache of MP responses (default ~/.cache/chggen-flows)."
    ),
    device: str | None = typer.Option(None, help="cpu, cuda, cuda:N or auto (default: settings)."),
) -> None:
    """E_d (eV/atom, negative below the hull) of structures against a reference hull.

    Energies are CHGNet's (MP2020-compatible GGA/GGA+U scale), so the reference is the
    CHGNet hull of known structures (offline), MP's corrected GGA/GGA+U entries (mp) or
    a user's file on the same scale. Every row records the reference it was computed
    against. Known structures missing from the shipped offline sets can be added with
    --add-reference. Nothing is written to disk (except the MP response cache).
    """
    from chggen_flows.core.relax import BatchRelaxer, RelaxSettings
    from chggen_flows.core.stability import (
        compute_e_d,
        describe_hull,
        get_reference,
        largest_systems,
    )

    structures = structure_files(inputs)
    if not structures:
        raise InputError("no structures given", hint="pass CIF files or directories")
    extra = [s for _, s in structure_files(add_reference)] if add_reference else []
    settings = RelaxSettings(device=device or get_settings(device=device).device)
    # CHGNet prints to stdout when it loads; keep stdout for the table / JSON.
    with contextlib.redirect_stdout(sys.stderr):
        provider = get_reference(
            reference,
            cache_dir=cache_dir,
            api_key=api_key,
            extra_structures=extra,
            relax_settings=settings,
        )
    if provider.functional != "GGA_GGA+U":
        raise InputError(
            f"reference {provider.label!r} is {provider.functional}; CHGNet energies need a "
            "GGA/GGA+U reference",
            hint="use offline, mp or a GGA/GGA+U entries file",
        )
    # Fail on a missing element or system before spending time on CHGNet.
    systems = {tuple(sorted(el.symbol for el in s.composition.elements)) for _, s in structures}
    for system in systems:
        provider.phase_diagram(system)
    hulls = [describe_hull(provider, x) for x in largest_systems(s for _, s in structures)]

    with contextlib.redirect_stdout(sys.stderr):
        energies = _energies(BatchRelaxer(settings), structures, relax)
    results = compute_e_d(
        [(s.composition, e) for (_, s), e in zip(structures, energies, strict=True)], provider
    )

    if as_json:
        rows = [
            {
                "file": f,
                "formula": r.formula,
                "e_d": r.e_d,
                "reference": r.reference,
                "decomposition": r.decomposition,
                "warning": r.warning,
            }
            for (f, _), r in zip(structures, results, strict=True)
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    for hull in hulls:
        console.print(f"Hull: {hull.line()}", highlight=False)
    table = Table(title=f"E_d vs {provider.label} ({'relaxed' if relax else 'single point'})")
    for column in ("file", "formula", "E eV/atom", "E_d eV/atom", "decomposes to"):
        table.add_column(column)
    for (file, _), r in zip(structures, results, strict=True):
        decomposition = " + ".join(f"{x:.2f} {phase}" for phase, x in r.decomposition.items())
        flag = " (!)" if r.warning else ""
        table.add_row(
            file, r.formula, f"{r.energy_per_atom:.4f}", f"{r.e_d:+.4f}{flag}", decomposition
        )
    console.print(table)
    for warning in sorted({r.warning for r in results if r.warning}):
        console.print(f"[yellow](!)[/] {warning}", highlight=False)


def _energies(relaxer, structures: list[tuple[str, Structure]], relax: bool) -> list[float]:
    """CHGNet energies per atom: after relaxation, or single points."""
    if not relax:
        return relaxer.predict_energies([s for _, s in structures])
    records = relaxer.relax([s for _, s in structures])
    for (file, _), record in zip(structures, records, strict=True):
        if not record.ok:
            raise InputError(
                f"{file} could not be relaxed: {record.rejected_reason}",
                hint="check the structure (overlapping atoms, wrong units)",
            )
    return [r.final_energy_per_atom for r in records]


def register(app: typer.Typer) -> None:
    """Add ``chggen ehull`` to the root app."""
    app.command("ehull")(ehull)
