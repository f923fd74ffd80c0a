"""``chggen run``: a local worker running the READY jobs of some categories."""

from __future__ import annotations

import typer

from chggen_flows.cli.common import console, get_settings


def run_command(
    category: list[str] = typer.Option(
        [],
        "--category",
        "-c",
        help="Run only jobs of this category (gpu, cpu, vasp); repeat for several. "
        "Default: every category.",
    ),
    max_jobs: int = typer.Option(
        0, "--max-jobs", "-n", min=0, help="Stop after this many jobs (0: until none is left)."
    ),
    campaign: str | None = typer.Option(
        None, "--campaign", help="Only run jobs of this campaign id."
    ),
) -> None:
    """Run a local FireWorks worker (rapidfire) until no READY job is left for it.

    Jobs run on the device their campaign spec asks for (model.device; "auto" uses a
    GPU when one is visible, else the CPU). On a cluster, start workers with
    `rlaunch`/`qlaunch` and the configs in launchpad_configs/ instead.
    """
    from chggen_flows.campaign.worker import run_worker

    settings = get_settings()
    report = run_worker(settings, category, max_jobs=max_jobs, campaign=campaign)
    style = "red" if report.fizzled else "green"
    console.print(
        f"[{style}]worker done:[/] {report.completed} job(s) completed, "
        f"{report.fizzled} failed (job directories under {report.launch_dir})"
    )
    if report.fizzled:
        console.print(
            "see failures with `chggen status CAMPAIGN`; re-run them with `chggen resume`"
        )


def register(app: typer.Typer) -> None:
    """Add ``chggen run`` to the root app."""
    app.command("run")(run_command)
