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
from chggen_flows.core.relax.records import RelaxSettings
from chggen_flows.errors import InputError


def ehull(
    inputs: list[Path] = typer.Argument(
        ..., help="CIF/POSCAR/JSON files or directories of them.", show_default=False
    ),
    reference: str = typer.Option(
        "offline",
        "--reference",
        "-r",
        help="offline (known structures relaxed with --potential; shipped for chgnet, built "
        "and cached on first use for the others), mp (Materials Project GGA/GGA+U with "
        "MP2020 corrections; needs MP_API_KEY), mp-r2scan or an entries file (.json/.csv).",
    ),
    potential: str = typer.Option(
        RelaxSettings.default("potential"),
        "--potential",
        "-p",
        help="Interatomic potential: chgnet (CHGNet 0.3.0), chgnet-r2scan, sevennet-0, ... "
        "(see docs/relaxation.md). The reference must fit it.",
    ),
    relax: bool = typer.Option(
        False, "--relax", help="Relax with the potential first (default: single point)."
    ),
    as_json: bool = typer.Option(
        False,
        "--json",
        help="Print a JSON list of {file, formula, e_d, reference, potential, decomposition, "
        "warning}.",
    ),
    add_reference: list[Path] = typer.Option(
        [],
        "--add-reference",
        help="Known structures (files or directories) to relax with the potential and add "
        "to the offline reference hull; repeatable.",
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

    Energies are the potential's (CHGNet 0.3.0: MP2020-compatible GGA/GGA+U;
    chgnet-r2scan: r2SCAN; SevenNet: uncorrected GGA/GGA+U), so the reference is the
    same potential's hull of known structures (offline), or DFT entries on its scale
    (mp for chgnet, mp-r2scan for chgnet-r2scan, or a user's file); a hull that does not
    fit is refused. Every row records the reference and the potential. Known structures missing from the shipped offline sets can be added with
    --add-reference. Nothing is written to disk (except the MP response cache).
    """
    from chggen_flows.core.relax import BatchRelaxer
    from chggen_flows.core.stability import (
        check_reference_potential,
        compute_e_d,
        describe_hull,
        get_reference,
        largest_systems,
    )

    structures = structure_files(inputs)
    if not structures:
        raise InputError("no structures given", hint="pass CIF files or directories")
    extra = [s for _, s in structure_files(add_reference)] if add_reference else []
    settings = RelaxSettings(
        device=device or get_settings(device=device).device, potential=potential
    )
    # CHGNet prints to stdout when it loads; keep stdout for the table / JSON.
    with contextlib.redirect_stdout(sys.stderr):
        provider = get_reference(
            reference,
            cache_dir=cache_dir,
            api_key=api_key,
            extra_structures=extra,
            relax_settings=settings,
            potential=potential,
        )
    check_reference_potential(potential, provider)
    # Fail on a missing element or system before spending time on the potential.
    systems = {tuple(sorted(el.symbol for el in s.composition.elements)) for _, s in structures}
    for system in systems:
        provider.phase_diagram(system)
    hulls = [describe_hull(provider, x) for x in largest_systems(s for _, s in structures)]

    with contextlib.redirect_stdout(sys.stderr):
        energies = _energies(BatchRelaxer(settings), structures, relax)
    results = compute_e_d(
        [(s.composition, e) for (_, s), e in zip(structures, energies, strict=True)],
        provider,
        potential=potential,
    )

    if as_json:
        rows = [
            {
                "file": f,
                "formula": r.formula,
                "e_d": r.e_d,
                "reference": r.reference,
                "potential": r.potential,
                "decomposition": r.decomposition,
                "warning": r.warning,
            }
            for (f, _), r in zip(structures, results, strict=True)
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    for hull in hulls:
        console.print(f"Hull: {hull.line()}", highlight=False)
    mode = "relaxed" if relax else "single point"
    # the offline labels name their potential (offline-chgnet-r2scan, ...)
    table = Table(title=f"E_d vs {provider.label} ({mode})")
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
    """The potential's energies per atom: after relaxation, or single points."""
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
