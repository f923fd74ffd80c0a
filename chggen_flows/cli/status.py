"""``chggen status`` (campaign progress) and ``chggen resume`` (re-run lost or failed jobs)."""

from __future__ import annotations

import typer
from rich.table import Table

from chggen_flows.cli.common import console, get_settings
from chggen_flows.cli.results import rejections_table

_STATE_STYLE = {"COMPLETED": "green", "FIZZLED": "red", "RUNNING": "cyan", "READY": "yellow"}


def _state_table(title: str, rows: dict[str, dict[str, int]], first: str) -> Table:
    from chggen_flows.campaign.status import JOB_STATES

    states = [s for s in JOB_STATES if any(s in counts for counts in rows.values())]
    table = Table(title=title)
    table.add_column(first)
    for state in states:
        table.add_column(state, justify="right", style=_STATE_STYLE.get(state))
    for key, counts in rows.items():
        table.add_row(key, *(str(counts.get(s, 0)) for s in states))
    return table


def _overview(store, launchpad) -> None:
    from chggen_flows.campaign.results import list_campaigns
    from chggen_flows.campaign.status import campaign_jobs

    campaigns = list_campaigns(store)
    if campaigns.empty:
        console.print("no campaigns yet: submit one with `chggen campaign submit SPEC`")
        return
    table = Table(title="Campaigns")
    for column in (
        "campaign",
        "chemsys",
        "mode",
        "submitted",
        "candidates",
        "jobs",
        "done",
        "failed",
    ):
        table.add_column(
            column,
            justify="right" if column in ("candidates", "jobs", "done", "failed") else "left",
        )
    for row in campaigns.itertuples():
        states = [fw["state"] for fw in campaign_jobs(launchpad, row.campaign)]
        table.add_row(
            row.campaign,
            row.chemsys,
            row.mode,
            f"{row.submitted:%Y-%m-%d %H:%M}",
            str(row.n_candidates),
            str(len(states)),
            str(states.count("COMPLETED")),
            str(states.count("FIZZLED")),
        )
    console.print(table)


def status_command(
    campaign: str | None = typer.Argument(None, help="Campaign id (or a unique prefix)."),
) -> None:
    """Show jobs per state and per stage, candidates per stage and failures with reasons.

    Without a campaign: one line per campaign.
    """
    from chggen_flows.campaign.status import campaign_status
    from chggen_flows.db import get_job_store, get_launchpad

    settings = get_settings()
    store, launchpad = get_job_store(settings), get_launchpad(settings)
    if campaign is None:
        _overview(store, launchpad)
        return
    status = campaign_status(store, launchpad, campaign, settings.worker_allowed_packages)
    console.print(
        f"[bold]{status.campaign}[/]: {status.n_candidates} candidates planned, "
        f"{sum(status.jobs_by_state.values())} jobs"
        + (" [green](finished)[/]" if status.finished else "")
    )
    if status.adaptation is not None:
        adaptation = status.adaptation
        sha = adaptation["checkpoint_sha256"]
        console.print(
            f"model adaptation to {adaptation['system']}: {adaptation['status']} -- "
            f"{adaptation['message']}"
            + (f" (checkpoint sha256 {sha[:12]}, in the data store)" if sha else ""),
            markup=False,
        )
    if status.jobs_by_stage:
        console.print(_state_table("Jobs per stage", status.jobs_by_stage, "stage"))
        console.print(_state_table("Jobs per worker category", status.jobs_by_category, "category"))
    if status.candidates_by_stage:
        table = Table(title="Candidates")
        table.add_column("last stage reached")
        table.add_column("candidates", justify="right")
        for stage, count in status.candidates_by_stage.items():
            table.add_row(stage, str(count))
        console.print(table)
    if status.rejected_by_reason:
        console.print(rejections_table(status.rejected_by_reason, "Rejected candidates"))
    if status.failures:
        table = Table(title="Failed jobs", title_style="bold red")
        for column in ("fw_id", "job", "stage", "error"):
            table.add_column(column)
        for failure in status.failures:
            table.add_row(str(failure.fw_id), failure.name, failure.stage, failure.reason)
        console.print(table)
        console.print("re-run them with `chggen resume " + status.campaign + "`")
    if status.refused:
        table = Table(
            title="Refused jobs (code outside the allowed packages)", title_style="bold red"
        )
        for column in ("fw_id", "job", "stage", "why"):
            table.add_column(column)
        for job in status.refused:
            table.add_row(str(job.fw_id), job.name, job.stage, job.reason)
        console.print(table)
        console.print(
            "a worker runs only chggen_flows, atomate2, jobflow and worker_allowed_packages "
            "code; `chggen resume` does not re-run these jobs"
        )


def resume_command(
    campaign: str = typer.Argument(..., help="Campaign id (or a unique prefix)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only show what would be re-run."),
    expiration: int | None = typer.Option(
        None,
        "--expiration",
        min=0,
        help="Seconds without a ping after which a RUNNING job counts as lost "
        "(default 300; use a small value only when no worker of the campaign runs).",
    ),
) -> None:
    """Re-run the lost (killed worker) and failed jobs of a campaign, and their children.

    Completed jobs are never re-run, so no candidate is produced twice. Start workers
    afterwards (`chggen run`) to do the work.
    """
    from chggen_flows.campaign.resume import DEFAULT_EXPIRATION_SECS, resume_campaign
    from chggen_flows.db import get_job_store, get_launchpad

    settings = get_settings()
    plan = resume_campaign(
        get_job_store(settings),
        get_launchpad(settings),
        campaign,
        expiration_secs=DEFAULT_EXPIRATION_SECS if expiration is None else expiration,
        dry_run=dry_run,
        allowed_packages=settings.worker_allowed_packages,
    )
    if plan.refused or plan.would_refuse:
        console.print(
            f"[red]{plan.campaign}: not re-running {len(plan.refused) + len(plan.would_refuse)} "
            f"job(s) naming code outside the allowed packages "
            f"{sorted(plan.refused + plan.would_refuse)}[/] (see `chggen status {plan.campaign}`)",
            highlight=False,
        )
    verb = "would re-run" if dry_run else "re-running"
    if plan.nothing_to_do:
        console.print(f"{plan.campaign}: no lost or failed jobs ({plan.completed} completed)")
        return
    console.print(
        f"{plan.campaign}: {len(plan.lost)} lost run(s) {plan.lost}, "
        f"{len(plan.fizzled)} failed job(s) {plan.fizzled}; {verb} {len(plan.rerun)} job(s) "
        f"and their children; {plan.completed} completed job(s) untouched"
    )
    if not dry_run:
        console.print("now start a worker: `chggen run`")


def register(app: typer.Typer) -> None:
    """Add ``chggen status`` and ``chggen resume`` to the root app."""
    app.command("status")(status_command)
    app.command("resume")(resume_command)
