"""``chggen relax`` and ``chggen framework``: relaxation and host symmetrisation."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer
from pymatgen.core import Structure
from rich.table import Table

from chggen_flows.cli.common import console, get_settings
from chggen_flows.cli.inputs import SUMMARY_FILE, expand_paths, read_structures, unique_names
from chggen_flows.core.relax.records import RelaxSettings
from chggen_flows.core.symmetry import PAPER_ANGLE_TOLERANCE, PAPER_SYMPREC, FrameworkSettings
from chggen_flows.errors import InputError


def collect_inputs(paths: Sequence[Path]) -> list[tuple[str, Structure]]:
    """(name, structure) pairs from files and directories (CIF/POSCAR/JSON inside).

    Names are the file names without their structure-file ending (``li2o_0.03.cif`` is
    ``li2o_0.03``), made unique with a counter; they become output file names.
    """
    files: list[Path] = []
    structures: list[list[Structure]] = []
    for file in expand_paths(paths):
        files.append(file)
        structures.append(read_structures([file]))
    names = unique_names(files, [len(s) for s in structures])
    named = list(zip(names, (s for group in structures for s in group), strict=True))
    if not named:
        raise InputError("no structures given", hint="pass CIF files or directories")
    return named


def write_outputs(out: Path, cifs: dict[str, Structure], summary: dict[str, Any]) -> None:
    """Write CIFs and ``summary.json`` into ``out`` all at once (staged in a temp dir)."""
    out.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".chggen-", dir=out))
    try:
        for name, structure in cifs.items():
            structure.to(filename=str(stage / f"{name}.cif"))
        (stage / SUMMARY_FILE).write_text(json.dumps(summary, indent=2))
        for file in stage.iterdir():
            file.replace(out / file.name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def relax(
    inputs: list[Path] = typer.Argument(
        ..., help="CIF/POSCAR/JSON files or directories of them.", show_default=False
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Directory for relaxed CIFs and summary.json."
    ),
    fmax: float = typer.Option(
        RelaxSettings.default("fmax"), help="Force convergence threshold (eV/Å)."
    ),
    steps: int = typer.Option(
        RelaxSettings.default("max_steps"), help="Maximum FIRE steps per structure."
    ),
    relax_cell: bool = typer.Option(
        RelaxSettings.default("relax_cell"),
        "--relax-cell/--fixed-cell",
        help="Relax the lattice too.",
    ),
    batch_size: int | None = typer.Option(
        None, help="Structures per model call (default: chosen from device and sizes)."
    ),
    min_distance: float = typer.Option(
        RelaxSettings.default("min_distance"),
        help="Refusal cutoff: reject structures with atoms closer than this (Å) unrelaxed.",
    ),
    potential: str = typer.Option(
        RelaxSettings.default("potential"),
        "--potential",
        "-p",
        help="Interatomic potential: chgnet (CHGNet 0.3.0, the paper's), chgnet-r2scan, "
        "sevennet-0, ... (see docs/relaxation.md).",
    ),
    device: str | None = typer.Option(None, help="cpu, cuda, cuda:N or auto (default: settings)."),
    model: Path | None = typer.Option(
        None,
        "--model",
        help="Checkpoint of the potential's own format (default: the weights in its wheel).",
    ),
    threads: int | None = typer.Option(None, help="torch CPU threads (default: settings)."),
    graph_workers: int | None = typer.Option(
        None,
        help="Processes that build CHGNet graphs (0: in-process; default: 0 on CPU, "
        "on CUDA the cores but one, at most 8).",
    ),
    symprec: float = typer.Option(
        PAPER_SYMPREC, help="symprec (Å) of the final space-group classification."
    ),
    angle_tolerance: float = typer.Option(
        PAPER_ANGLE_TOLERANCE, help="Angle tolerance (deg) of the classification."
    ),
) -> None:
    """Relax structures (FIRE + cell filter, batched; CHGNet by default) and classify symmetry.

    Writes one relaxed CIF per input structure and summary.json with energies, dE,
    RMSD, convergence and space group. Rejected structures (atoms too close) are listed
    in the summary with the reason and get no CIF.
    """
    from chggen_flows.core.relax import BatchRelaxer
    from chggen_flows.core.symmetry import classify_symmetry

    named = collect_inputs(inputs)
    app_settings = get_settings(device=device, threads=threads)
    settings = RelaxSettings(
        fmax=fmax,
        max_steps=steps,
        relax_cell=relax_cell,
        batch_size=batch_size,
        min_distance=min_distance,
        device=app_settings.device,
        model_path=model,
        threads=app_settings.threads,
        graph_workers=graph_workers,
        potential=potential,
    )
    with BatchRelaxer(settings) as relaxer:
        records = relaxer.relax([s for _, s in named])
    summary: dict[str, Any] = {"settings": {k: str(v) for k, v in vars(settings).items()}}
    entries, cifs = [], {}
    table = Table(title=f"{potential} relaxation ({len(records)} structures)")
    for col in ("name", "formula", "dE eV/atom", "RMSD Å", "steps", "converged", "space group"):
        table.add_column(col, no_wrap=col == "name")
    for (name, _), record in zip(named, records, strict=True):
        entry = {"name": name, **record.summary()}
        if record.ok:
            info = classify_symmetry(record.structure, symprec, angle_tolerance)
            entry |= {
                "spacegroup_number": info.number,
                "spacegroup_symbol": info.symbol,
                "crystal_system": info.crystal_system,
                "symmetric": info.symmetric,
                "cif": f"{name}.cif",
            }
            cifs[name] = record.structure
            table.add_row(
                name,
                entry["formula"],
                f"{record.de:.4f}",
                f"{record.rmsd:.3f}",
                str(record.n_steps),
                "yes" if record.converged else "no",
                str(info.symbol),
            )
        else:
            table.add_row(name, entry["formula"], "-", "-", "-", "rejected", record.rejected_reason)
        entries.append(entry)
    summary["structures"] = entries
    write_outputs(out, cifs, summary)
    console.print(table)
    console.print(f"Wrote {len(cifs)} CIFs and {out / 'summary.json'}")


def framework(
    inputs: list[Path] = typer.Argument(
        ..., help="CIF/POSCAR/JSON files or directories of them.", show_default=False
    ),
    guests: list[str] = typer.Option(
        ..., "--guests", "-g", help="Guest element to remove (repeatable, e.g. -g Li)."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Directory for host CIFs and summary.json."),
    cell: str = typer.Option(
        FrameworkSettings.default("cell"),
        help="Output cell of the host: primitive or conventional.",
    ),
    mode: str = typer.Option(
        FrameworkSettings.default("mode"),
        help="first: the paper's first non-P1 rung; highest: the most symmetric host "
        "within the displacement bounds; fan_out: up to --max-hosts distinct hosts.",
    ),
    max_hosts: int = typer.Option(
        FrameworkSettings.default("max_hosts"), help="Hosts kept per structure with --mode fan_out."
    ),
) -> None:
    """Remove guest species and symmetrise the host with the authors' tolerance ladder.

    Writes the refined host of every input as <name>_host.cif (with --mode fan_out,
    <name>_host<rank>.cif for every further host) and summary.json with the tolerance
    used, the space group and the guest counts that keep the stoichiometry.
    """
    from chggen_flows.core.symmetry import host_candidates

    settings = FrameworkSettings(cell=cell, mode=mode, max_hosts=max_hosts)  # type: ignore[arg-type]
    named = collect_inputs(inputs)
    entries, cifs = [], {}
    table = Table(title=f"Host frameworks ({len(named)} structures, guests {', '.join(guests)})")
    for col in ("name", "ok", "space group", "symprec", "angle", "guests", "reason"):
        table.add_column(col, no_wrap=col == "name")
    for name, structure in named:
        for rank, result in enumerate(host_candidates(structure, guests, settings)):
            _framework_row(f"{name}_host{rank or ''}", name, structure, result, entries, cifs)
            table.add_row(
                name if rank == 0 else f"{name} #{rank}",
                ("yes (fallback)" if result.fallback else "yes") if result.ok else "no",
                str(result.spacegroup_symbol or "-"),
                str(result.symprec if result.ok else "-"),
                str(result.angle_tolerance if result.ok else "-"),
                ", ".join(f"{k} {v}" for k, v in result.guest_counts.items()) or "-",
                result.reason or "",
            )
    write_outputs(out, cifs, {"guests": guests, "cell": cell, "mode": mode, "structures": entries})
    console.print(table)
    console.print(f"Wrote {len(cifs)} host CIFs and {out / 'summary.json'}")


def _framework_row(
    key: str, name: str, structure: Any, result: Any, entries: list, cifs: dict
) -> None:
    """Add one host's summary entry (and its CIF when found)."""
    entry = {
        "name": name,
        "formula": structure.composition.reduced_formula,
        "ok": result.ok,
        "spacegroup_number": result.spacegroup_number,
        "spacegroup_symbol": result.spacegroup_symbol,
        "symprec": result.symprec,
        "angle_tolerance": result.angle_tolerance,
        "cell": result.cell,
        "guest_counts": result.guest_counts,
        "reason": result.reason,
        # highest/fan_out: no rung passed the bounds, this is the paper's rule's host
        "fallback": result.fallback,
    }
    if result.ok and result.host is not None:
        cifs[key] = result.host
        entry["cif"] = f"{key}.cif"
        entry["host_formula"] = result.host.composition.formula
    entries.append(entry)


def register(app: typer.Typer) -> None:
    """Add the ``relax`` and ``framework`` commands to the root app."""
    app.command("relax")(relax)
    app.command("framework")(framework)
