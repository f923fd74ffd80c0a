"""``chggen analysis``: structure analyses (locality bias: RDFs and coordination numbers)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from chggen_flows.cli.common import console, get_settings
from chggen_flows.cli.inputs import read_structures
from chggen_flows.errors import InputError

if TYPE_CHECKING:
    from pymatgen.core import Structure

#: ``--reference offline``: the known compounds shipped with the package.
OFFLINE = "offline"

analysis_app = typer.Typer(
    help="Structure analyses of generated vs reference structures.", no_args_is_help=True
)


def reference_structures(paths: Sequence[Path], elements: Sequence[str]) -> list[Structure]:
    """Reference structures from files, or the shipped known compounds of ``elements``
    when the single "file" given is the word ``offline``."""
    if [str(p) for p in paths] == [OFFLINE] and not Path(OFFLINE).exists():
        from chggen_flows.core.analysis.references import shipped_structures

        return shipped_structures(elements)
    return read_structures(paths)


def campaign_generated(campaign: str, n: int) -> list[Structure]:
    """Raw generated structures (stage ``generated``) of a campaign's ``n`` largest
    unconditional cells, from the database."""
    from chggen_flows.campaign.registry import find_campaign
    from chggen_flows.campaign.results import load_candidates, load_structures
    from chggen_flows.db import get_job_store
    from chggen_flows.report.data import largest_generated, normalise_frame

    store = get_job_store(get_settings())
    campaign_id = find_campaign(store, campaign)["campaign"]
    ids = largest_generated(normalise_frame(load_candidates(store, campaign_id)), n)
    found = load_structures(store, campaign_id, ids, stage="generated") if ids else {}
    if not found:
        raise InputError(
            f"Campaign {campaign_id} has no generated structures yet.",
            "Run its generation jobs first (`chggen run`), or pass structure files.",
        )
    return [found[i] for i in ids if i in found]


def _write_atomically(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same directory, so readers never see half a file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@analysis_app.command("locality")
def locality(
    generated: list[Path] = typer.Argument(
        None, help="Generated structures (CIF, POSCAR or JSON; supercells welcome)."
    ),
    campaign: str | None = typer.Option(
        None,
        "--campaign",
        help="Instead of files: the raw generated structures (before relaxation) of this "
        "campaign's largest unconditional cells.",
    ),
    n_structures: int = typer.Option(
        10, "--n", min=1, help="With --campaign: how many structures (largest cells first)."
    ),
    reference: list[Path] = typer.Option(
        ...,
        "--reference",
        "-r",
        help="Reference structures of the same system (repeatable), or `offline` for the "
        "known compounds shipped with chggen-flows (Li-Si, Zn-P-S, Li-P-S).",
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Directory for locality.json and locality.png."
    ),
    r_max: float = typer.Option(6.0, "--r-max", help="Largest RDF distance (Å)."),
    bin_width: float = typer.Option(0.05, "--bin-width", help="RDF bin width (Å)."),
    method: str = typer.Option(
        "crystalnn", "--method", help="Coordination method: crystalnn, voronoi or cutoff."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Locality bias (paper Fig. 2): partial RDFs and coordination numbers of GENERATED (files, or a campaign's generated structures) vs reference structures, with a distance per element pair (0 = identical)."""
    from chggen_flows.core.analysis import compare_locality

    if bool(generated) == bool(campaign):
        raise InputError(
            "Give the generated structures either as files or with --campaign.",
            "e.g. `chggen analysis locality gen/*.cif -r offline` or "
            "`chggen analysis locality --campaign ID -r offline`.",
        )
    structures = (
        campaign_generated(campaign, n_structures) if campaign else read_structures(generated)
    )
    elements = sorted({el.symbol for s in structures for el in s.composition.elements})
    comparison = compare_locality(
        structures, reference_structures(reference, elements), r_max, bin_width, method
    )
    summary = comparison.to_dict()
    if out is not None:
        from chggen_flows.report.figures import locality_figure

        out.mkdir(parents=True, exist_ok=True)
        _write_atomically(out / "locality.json", json.dumps(summary, indent=2).encode())
        fig = locality_figure(comparison)
        fd, tmp = tempfile.mkstemp(prefix=".locality.", suffix=".png", dir=out)
        os.close(fd)
        fig.savefig(tmp, format="png")
        os.replace(tmp, out / "locality.png")
    if as_json:
        console.print_json(json.dumps(summary))
        return
    console.print(
        f"{summary['n_generated']} generated vs {summary['n_reference']} reference structures"
    )
    table = Table(title="RDF distance")
    table.add_column("pair")
    table.add_column("D", justify="right")
    for pair, dist in summary["rdf_distance"].items():
        table.add_row(pair, f"{dist:.3f}")
    console.print(table)
    cn = Table(title=f"Mean coordination number ({method})")
    for col in ("element", "generated", "reference", "EMD"):
        cn.add_column(col, justify="left" if col == "element" else "right")
    for el in sorted(set(summary["cn_mean_generated"]) | set(summary["cn_mean_reference"])):
        gen, ref = summary["cn_mean_generated"].get(el), summary["cn_mean_reference"].get(el)
        emd = summary["cn_wasserstein"].get(el)
        cn.add_row(el, *("n/a" if v is None else f"{v:.2f}" for v in (gen, ref, emd)))
    console.print(cn)
    if out is not None:
        console.print(f"Wrote {out / 'locality.json'} and {out / 'locality.png'}")


def register(app: typer.Typer) -> None:
    """Add the ``analysis`` command group to the root app."""
    app.add_typer(analysis_app, name="analysis")
