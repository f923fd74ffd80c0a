"""``chggen campaign``: check and submit specs, list the shipped examples, run the demo campaign."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import typer

from chggen_flows.cli.common import console, err_console, get_settings
from chggen_flows.errors import InputError

campaign_app = typer.Typer(
    help="Campaigns: check a spec, submit it to the LaunchPad, list examples, run the demo.",
    no_args_is_help=True,
)


def _submit(settings, spec, new: bool = False):
    """Check the spec, then prepare the database (collections, indexes, FireWorks id
    counter; never deletes) and submit: a bad spec writes nothing at all."""
    from chggen_flows.campaign.submit import check_spec, submit_campaign
    from chggen_flows.db import get_job_store, get_launchpad, init_database

    with contextlib.redirect_stdout(sys.stderr):  # a potential building a hull prints
        check_spec(spec)
    init_database(settings)
    store, launchpad = get_job_store(settings), get_launchpad(settings)
    return submit_campaign(spec, store, launchpad, new=new, checked=True)


def _load(spec: Path | None, example: str | None):
    from chggen_flows.campaign.spec import example_path, load_spec

    if (spec is None) == (example is None):
        raise InputError(
            "give a spec file or --example NAME (not both)", hint="chggen campaign examples"
        )
    return load_spec(spec if spec is not None else example_path(example))


def plan_summary(spec) -> dict[str, Any]:
    """Everything ``chggen campaign check`` reports, without touching a database.

    Runs the submit-time checks (checkpoint, model vocabulary, guests, E_d reference)
    and builds the campaign's jobflow Flow in memory to count its jobs.

    Parameters
    ----------
    spec
        A validated :class:`chggen_flows.campaign.spec.CampaignSpec`.

    Returns
    -------
    dict
        ``campaign`` (the id a first submission gets), ``chemsys``, ``n_candidates``,
        ``n_batches``, ``n_jobs`` (at submission; the DFT gate adds VASP jobs at run
        time), ``potential`` (``relax.potential``), ``reference`` (the E_d hull:
        ``label``, ``functional``, ``potential``), ``routing`` (routing key -> worker
        category), ``stages`` (the stage table: routing key, category, record stages,
        job names, Maker), ``spec`` (as the registry stores it) and ``settings`` (each
        settings section with the core's defaults filled in).
    """
    from chggen_flows.campaign.build import build_flow
    from chggen_flows.campaign.spec import SETTINGS_SECTIONS
    from chggen_flows.campaign.submit import campaign_id, check_spec
    from chggen_flows.makers.relax import relax_settings
    from chggen_flows.makers.stages import STAGE_TABLE

    # a potential loaded to build its hull prints; stdout is for the plan (--json)
    with contextlib.redirect_stdout(sys.stderr):
        provider = check_spec(spec)
    cid = campaign_id(spec, set(), new=False)
    plan = build_flow(spec, cid)
    settings = {}
    for section in SETTINGS_SECTIONS:
        value = getattr(spec, section)
        if section == "relax":  # the relaxation jobs run on the model's device
            value = relax_settings(value, spec.model.device)
        if value is not None:
            settings[section] = json.loads(json.dumps(value.model_dump(mode="json"), default=str))
    routing = spec.resolved_routing()
    stages = [
        {
            "key": row.key,
            "category": routing[row.key],
            "stages": [str(stage) for stage in row.stages],
            "jobs": list(row.job_names),
            "maker": row.maker,
            "does": row.does,
        }
        for row in STAGE_TABLE
    ]
    return {
        "campaign": cid,
        "chemsys": plan.chemsys,
        "mode": spec.mode,
        "n_candidates": plan.n_candidates,
        "n_batches": plan.n_batches,
        "n_jobs": plan.n_jobs,
        "potential": spec.relax.potential,
        "reference": {
            "label": provider.label,
            "functional": provider.functional,
            "potential": provider.potential,
        },
        "routing": routing,
        "stages": stages,
        "spec": spec.model_dump(mode="json"),
        "settings": settings,
    }


def _print_plan(origin: str, summary: dict[str, Any], as_json: bool) -> None:
    import yaml

    if as_json:
        typer.echo(json.dumps({"valid": True, "origin": origin, **summary}, indent=2))
        return
    # typer.echo, not the rich console: YAML flow lists such as [Li] would read as markup.
    typer.echo(f"{origin}: valid spec (nothing was written to any database)")
    typer.echo("# resolved spec, as `chggen campaign submit` stores it")
    typer.echo(yaml.safe_dump(summary["spec"], sort_keys=False, default_flow_style=None).rstrip())
    typer.echo("# settings the jobs use (the spec's keys, defaults filled in)")
    typer.echo(
        yaml.safe_dump(summary["settings"], sort_keys=False, default_flow_style=None).rstrip()
    )
    typer.echo(
        f"campaign {summary['campaign']} ({summary['chemsys']}, {summary['mode']}): "
        f"{summary['n_candidates']} candidates in {summary['n_batches']} batch(es), "
        f"{summary['n_jobs']} jobs (plus the VASP jobs the DFT gate adds at run time)"
    )
    adapt = summary["spec"]["model"].get("adapt")
    if adapt is not None:
        typer.echo(
            f"model adaptation: an adapt job fine-tunes the model on the structures of "
            f"{', '.join(adapt['source'])} related to {summary['chemsys']} before generation "
            f"(stage adapt below); too few of them and the base model is used"
        )
    reference = summary["reference"]
    typer.echo(
        f"potential {summary['potential']}: E_d against {reference['label']} "
        f"({reference['functional']})"
    )
    typer.echo("stages (routing key -> worker category: record stages, jobs; Maker):")
    for row in summary["stages"]:
        stages = ", ".join(row["stages"]) or (
            "no candidate records" if row["key"] == "adapt" else "added at run time"
        )
        typer.echo(
            f"  {row['key']} -> {row['category']}: {stages}; jobs {', '.join(row['jobs'])}; "
            f"{row['maker'].rpartition(':')[2]} ({row['does']})"
        )


@campaign_app.command("check")
def check(
    spec: Path | None = typer.Argument(None, help="Campaign spec (YAML)."),
    example: str | None = typer.Option(None, "--example", help="Check a shipped example instead."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Validate a spec and show what submitting it would do, without any database.

    Prints the resolved spec (YAML), the settings every job will use, the number of
    candidates, batches and jobs, and the routing (stage -> worker category). A bad
    spec fails with exit code 2 and a message naming each bad field, as submit does.
    """
    loaded = _load(spec, example)
    origin = str(spec) if spec is not None else f"example {example}"
    _print_plan(origin, plan_summary(loaded), as_json)


@campaign_app.command("submit")
def submit(
    spec: Path | None = typer.Argument(None, help="Campaign spec (YAML)."),
    example: str | None = typer.Option(None, "--example", help="Submit a shipped example instead."),
    new: bool = typer.Option(False, "--new", help="Submit again even if this spec was submitted."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Only check the spec and show the plan (as `campaign check`)."
    ),
) -> None:
    """Validate a spec, build its Flow and add it to the LaunchPad.

    Submitting the same spec again reports the existing campaign (unless --new). A bad
    spec fails here with exit code 2 and nothing is written to the database. With
    --dry-run nothing is submitted and no database is contacted.
    """
    loaded = _load(spec, example)
    if dry_run:
        origin = str(spec) if spec is not None else f"example {example}"
        _print_plan(origin, plan_summary(loaded), as_json=False)
        return
    result = _submit(get_settings(), loaded, new=new)
    if result.created:
        console.print(
            f"submitted [bold]{result.campaign}[/] ({result.chemsys}): {result.n_candidates} "
            f"candidates in {result.n_batches} batch(es), {result.n_jobs} jobs"
        )
    else:
        console.print(
            f"[yellow]already submitted:[/] [bold]{result.campaign}[/] "
            "(same spec; use --new to submit it again)"
        )
    console.print(f"next: `chggen run` to work on it here, `chggen status {result.campaign}`")


@campaign_app.command("examples")
def examples() -> None:
    """List the example specs shipped with chggen-flows (use with --example NAME)."""
    from chggen_flows.campaign.spec import example_names, example_path, load_spec

    for name in example_names():
        spec = load_spec(example_path(name))
        console.print(f"[bold]{name}[/]: {spec.description}  ({example_path(name)})")


@campaign_app.command("demo")
def demo(
    example: str = typer.Option("li-si-quick", "--example", help="Example spec to run."),
    out: Path = typer.Option(
        Path("chggen-demo"), "--out", help="Folder for the CIF files and candidates.csv."
    ),
) -> None:
    """Run a small real Li-Si campaign end to end on this machine (the README's main job).

    Submits the example on the configured database (the embedded server is started when
    no MongoDB URI is set), runs a local worker for the gpu and cpu jobs until the
    campaign is done, prints the results table and exports the CIFs. VASP jobs added by
    the DFT gate wait for a VASP worker.
    """
    from chggen_flows.campaign.results import load_candidates
    from chggen_flows.campaign.spec import example_path, load_spec
    from chggen_flows.campaign.status import campaign_status
    from chggen_flows.campaign.worker import run_worker
    from chggen_flows.cli.results import (
        arm_summary_lines,
        export_cifs,
        print_adaptation,
        print_hulls,
        print_results,
    )
    from chggen_flows.db import get_job_store, get_launchpad

    settings = get_settings()
    submission = _submit(settings, load_spec(example_path(example)))
    store, launchpad = get_job_store(settings), get_launchpad(settings)
    cid = submission.campaign
    console.print(
        f"campaign [bold]{cid}[/]: {submission.n_candidates} candidates, {submission.n_jobs} jobs"
        + ("" if submission.created else " (submitted before; continuing it)")
    )
    start = time.perf_counter()
    with err_console.status("running the gpu and cpu jobs (generate, relax, inpaint, E_d)..."):
        report = run_worker(settings, ["gpu", "cpu"], campaign=cid)
    console.print(
        f"worker: {report.completed} job(s) done, {report.fizzled} failed in "
        f"{time.perf_counter() - start:.0f} s"
    )
    status = campaign_status(store, launchpad, cid)
    frame = load_candidates(store, cid)
    print_results(frame, f"{cid}: {len(frame)} candidates, lowest E_d first")
    print_hulls(store, cid)
    print_adaptation(store, cid)
    for line in arm_summary_lines(frame):  # only when the spec has a baseline arm
        console.print(line, highlight=False)
    folder = out / cid
    n = export_cifs(store, frame, folder)
    console.print(f"CIF files ({n}) and candidates.csv: {folder}")
    console.print(f"report: `chggen report {cid}`; status: `chggen status {cid}`")
    waiting = status.jobs_by_category.get("vasp", {})
    if waiting:
        console.print(
            f"{sum(waiting.values())} VASP job(s) of the r2SCAN gate wait for a VASP worker "
            "(`chggen run --category vasp` on a machine with VASP; see docs/cluster.md)"
        )
    if status.failures:
        raise typer.Exit(1)


@campaign_app.command("list")
def list_() -> None:
    """List submitted campaigns (same as `chggen status` without a campaign)."""
    from chggen_flows.cli.status import status_command

    status_command(None)


def register(app: typer.Typer) -> None:
    """Add the ``chggen campaign`` group to the root app."""
    app.add_typer(campaign_app, name="campaign")
