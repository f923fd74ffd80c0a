"""``chggen generate``: unconditional generation or inpainting of guests into a host."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import typer
from pydantic import BaseModel

from chggen_flows.cli.common import console
from chggen_flows.cli.inputs import SUMMARY_FILE
from chggen_flows.core.generation.settings import InpaintSettings, SamplerSettings
from chggen_flows.errors import InputError


class CandidateRecord(BaseModel):
    """One generated candidate in ``summary.json``."""

    file: str
    formula: str
    valid: bool
    reason: str | None
    metadata: dict[str, Any]


class GenerateSummary(BaseModel):
    """``summary.json`` of a ``chggen generate`` run."""

    mode: str
    checkpoint: str
    n_total: int
    n_valid: int
    n_rejected: int
    reasons: dict[str, int]
    candidates: list[CandidateRecord]


def _composition(text: str):
    from pymatgen.core import Composition, Element

    try:
        composition = Composition(text)
    except ValueError as exc:
        raise InputError(f"cannot parse composition {text!r}", hint="e.g. ZnPS3 or Li5Si2") from exc
    bad = [str(e) for e in composition.elements if not Element.is_valid_symbol(str(e))]
    if bad or not composition.elements:
        raise InputError(f"unknown element(s) {', '.join(bad)} in {text!r}", hint="check spelling")
    return composition


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"output {out} already exists and is not empty", hint="choose a new --out")


def _write(out: Path, candidates: list, summary: GenerateSummary) -> None:
    """Write every CIF and summary.json into a staging dir, then move it to ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for record, candidate in zip(summary.candidates, candidates, strict=True):
            candidate.structure.to(filename=str(stage / record.file))
        (stage / SUMMARY_FILE).write_text(summary.model_dump_json(indent=2) + "\n")
        if out.exists():  # an empty directory (checked before sampling)
            out.rmdir()
        os.replace(stage, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def generate(
    composition: str | None = typer.Argument(
        None, help="Formula unit to generate, e.g. ZnPS3 (omit with --host).", show_default=False
    ),
    formula_units: int = typer.Option(1, "--formula-units", "-z", help="Formula units Z per cell."),
    num: int = typer.Option(8, "--num", "-n", help="Number of candidates."),
    out: Path = typer.Option(..., "--out", "-o", help="New directory for CIFs and summary.json."),
    host: Path | None = typer.Option(
        None, "--host", help="Host structure (CIF/POSCAR/JSON) to inpaint."
    ),
    guests: str | None = typer.Option(
        None,
        "--guests",
        help="Guests to place in the host, e.g. Li:4 or Li:2,Na:1 (omit for a host with "
        "partial occupancies: its partially occupied species are the guests).",
    ),
    max_supercell: int = typer.Option(
        8,
        "--max-supercell",
        help="Disordered --host: largest supercell tried for whole guest counts.",
    ),
    checkpoint: Path | None = typer.Option(
        None,
        "--checkpoint",
        help="Score-model file, or shipped:SYSTEM for a shipped fine-tune (shipped:Zn-P-S); default: the shipped model.",
    ),
    device: str = typer.Option("auto", help="cpu, cuda, cuda:N or auto."),
    seed: int = typer.Option(0, help="Seed; candidate i gets its own stream derived from it."),
    batch_size: int | None = typer.Option(
        None, "--batch-size", help="Max candidates per batched model call (default: by memory)."
    ),
    max_batch_atoms: int | None = typer.Option(
        None, help="Max atoms per batched model call (default: by memory)."
    ),
    lattice: str | None = typer.Option(
        None, "--lattice", help="Crystal system or Bravais type (e.g. hexagonal, cF); default any."
    ),
    v0: float | None = typer.Option(None, "--v0", help="Volume per atom override (Å^3/atom)."),
    known: list[Path] | None = typer.Option(
        None, "--known", help="Known phases of the chemical system for V0 (repeatable)."
    ),
    n_levels: int = typer.Option(SamplerSettings.default("n_levels"), help="Noise levels T."),
    sigma_max: float = typer.Option(
        SamplerSettings.default("sigma_max"), help="Largest noise level (Å)."
    ),
    sigma_min: float = typer.Option(
        SamplerSettings.default("sigma_min"), help="Smallest noise level (Å)."
    ),
    n_corrector: int = typer.Option(
        SamplerSettings.default("n_corrector"), help="Langevin corrector steps M per level."
    ),
    snr: float = typer.Option(
        SamplerSettings.default("snr"), help="Corrector signal-to-noise ratio delta."
    ),
    corrector_norm: str = typer.Option(
        SamplerSettings.default("corrector_norm"),
        help="Corrector noise norm: sqrt3 (paper) or sqrt_dim (Song et al.).",
    ),
    min_distance: float = typer.Option(
        SamplerSettings.default("min_distance"),
        help="Validity cutoff: mark candidates with atoms closer than this (Å) invalid.",
    ),
    jump_length: int = typer.Option(
        InpaintSettings.default("jump_length"), help="RePaint jump length j (inpainting)."
    ),
    n_resample: int = typer.Option(
        InpaintSettings.default("n_resample"), help="RePaint resampling rounds r (inpainting)."
    ),
    guest_symmetry: str = typer.Option(
        InpaintSettings.default("guest_symmetry"),
        help="Inpainting: free (the paper) or symmetric (guests snapped onto the largest "
        "subgroup of the host's symmetry within 0.5 Å; see docs/symmetry.md).",
    ),
    progress: bool = typer.Option(
        True, "--progress/--no-progress", help="Progress bar over noise levels (on a terminal)."
    ),
) -> None:
    """Generate crystal structures with the score model: one CIF per candidate + summary.json.

    Unconditional: ``chggen generate ZnPS3 -z 2 --num 16 --out gen/``. Inpainting:
    ``chggen generate --host host.cif --guests Li:4 --num 16 --out gen/``. Invalid
    candidates (atoms closer than --min-distance) are written too and counted in the
    summary, never silently dropped.
    """
    from chggen_flows.cli.inputs import read_structures
    from chggen_flows.core.generation import (
        GenerationRequest,
        parse_guests,
        rejection_summary,
    )
    from chggen_flows.core.generation import generate as run_generate
    from chggen_flows.core.generation.candidate import check_elements
    from chggen_flows.core.generation.generate import cell_species
    from chggen_flows.core.generation.lattice import LatticeSettings, resolve_types

    # validate everything before loading the model or touching the disk
    if (composition is None) == (host is None):
        raise InputError("give either a COMPOSITION or --host", hint="see chggen generate --help")
    if num < 1:
        raise InputError("--num must be >= 1")
    _check_out(out)
    settings = SamplerSettings(
        n_levels=n_levels, sigma_max=sigma_max, sigma_min=sigma_min, n_corrector=n_corrector,
        snr=snr, corrector_norm=corrector_norm, min_distance=min_distance,  # type: ignore[arg-type]
        max_batch_atoms=max_batch_atoms, max_batch_size=batch_size,
    )  # fmt: skip
    if guest_symmetry not in ("free", "symmetric"):
        raise InputError(
            f"unknown --guest-symmetry {guest_symmetry!r}", hint="choose free or symmetric"
        )
    repaint = InpaintSettings(
        jump_length=jump_length, n_resample=n_resample, guest_symmetry=guest_symmetry
    )
    show_progress = None if progress else False  # None: on a terminal only
    if host is not None:
        from chggen_flows.core.hosts import host_from_structure

        # an ordered host needs --guests; a disordered one (partial occupancies) gives
        # its own: the partially occupied species on the smallest whole supercell
        given = read_structures([host])[0]
        if given.is_ordered and guests is None:
            raise InputError(
                "--host needs --guests (or a CIF with partial occupancies)",
                hint="e.g. --guests Li:4",
            )
        host_seed = host_from_structure(
            given, parse_guests(guests) if guests else None, max_supercell
        )
        host_structure, guest_counts = host_seed.host, host_seed.guests
        symbols = {s.symbol for s in host_structure.species} | set(guest_counts)
        mode = "inpaint"
    else:
        target = _composition(composition or "")
        resolve_types(lattice, LatticeSettings())
        known_structures = read_structures(known) if known else None
        requests = [
            GenerationRequest(target, formula_units, bravais=lattice, v0=v0) for _ in range(num)
        ]
        symbols = set(cell_species(target, formula_units))
        mode = "unconditional"
    from chggen_flows.core.model import load_score_model, resolve_checkpoint

    model = load_score_model(checkpoint, device=device)
    check_elements(model, sorted(symbols))
    if host is not None:
        from chggen_flows.core.hosts import inpaint_hosts

        candidates = inpaint_hosts(
            [host_seed] * num, model, settings, repaint,
            seed=seed, device=device, progress=show_progress,
        )  # fmt: skip
    else:
        candidates = run_generate(
            requests, model, settings, seed=seed, device=device, progress=show_progress,
            known_structures=known_structures,
        )  # fmt: skip
    counts = rejection_summary(candidates)
    summary = GenerateSummary(
        mode=mode,
        checkpoint=str(resolve_checkpoint(checkpoint)),
        n_total=counts["n_total"],
        n_valid=counts["n_valid"],
        n_rejected=counts["n_rejected"],
        reasons=counts["reasons"],
        candidates=[
            CandidateRecord(
                file=f"candidate_{i:04d}.cif",
                formula=c.structure.composition.formula.replace(" ", ""),
                valid=c.valid,
                reason=c.reason,
                metadata=c.metadata,
            )
            for i, c in enumerate(candidates)
        ],
    )
    _write(out, candidates, summary)
    reasons = ", ".join(f"{n} {kind}" for kind, n in counts["reasons"].items())
    console.print(
        f"{mode}: {counts['n_total']} candidates, {counts['n_valid']} valid, "
        f"{counts['n_rejected']} rejected{f' ({reasons})' if reasons else ''} -> {out}",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Add ``chggen generate`` to the root app."""
    app.command("generate")(generate)
