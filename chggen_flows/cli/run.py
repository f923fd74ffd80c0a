"""``chggen run``: a local worker running the READY jobs of some categories."""

from __future__ import annotations

import typer

from chggen_flows.cli.common import STATE, console, get_settings


def run_command(
    category: list[str] = typer.Option(
        [],
        "--category",
        "-c",
        help="Run only jobs of this category (gpu, cpu, vasp); repeat for several. "
        "Default: every category this machine can run (vasp only where VASP_CMD and "
        "POTCARs are configured).",
    ),
    max_jobs: int = typer.Option(
        0,
        "--max-jobs",
        "-n",
        min=0,
        help="Stop after this many jobs (0: until none is left); per worker process.",
    ),
    campaign: str | None = typer.Option(
        None, "--campaign", help="Only run jobs of this campaign id."
    ),
    gpus_per_node: str = typer.Option(
        "1",
        "--gpus-per-node",
        "-g",
        help="Start one worker process per GPU, each bound to its GPU "
        "(CUDA_VISIBLE_DEVICES); `auto`: one per visible GPU.",
    ),
    worker_label: str | None = typer.Option(
        None, "--worker-label", hidden=True, help="Set by --gpus-per-node on its children."
    ),
) -> None:
    """Run a local FireWorks worker (rapidfire) until no READY job is left for it.

    Jobs run on the device their campaign spec asks for (model.device; "auto" uses a
    GPU when one is visible, else the CPU). On a cluster, start workers with
    `rlaunch`/`qlaunch` and the configs in launchpad_configs/ instead.
    """
    from chggen_flows.campaign.worker import (
        gpu_worker_count,
        gpu_worker_envs,
        plan_categories,
        run_gpu_workers,
        run_worker,
    )

    plan = plan_categories(category)
    count = gpu_worker_count(gpus_per_node)
    settings = get_settings()
    if worker_label is None:  # said once, not again by each --gpus-per-node child
        for note in plan.notes:
            console.print(f"[yellow]{note}[/]", highlight=False)
    if count > 1:
        envs = gpu_worker_envs(count, threads=settings.threads)
        argvs = []
        for i, env in enumerate(envs, start=1):
            label = f"worker {i}/{count} (GPU {env['CUDA_VISIBLE_DEVICES']})"
            argvs.append(child_argv(category, max_jobs, campaign, label))
            console.print(f"starting {label}", highlight=False)
        codes = run_gpu_workers(argvs, envs)
        failed = [code for code in codes if code]
        style = "red" if failed else "green"
        console.print(
            f"[{style}]{count} GPU workers done[/]"
            + (f", {len(failed)} exited with an error (codes {failed})" if failed else "")
        )
        if failed:
            raise typer.Exit(max(failed))
        return
    report = run_worker(
        settings, plan.categories, max_jobs=max_jobs, campaign=campaign, exclude=plan.exclude
    )
    style = "red" if report.fizzled else "green"
    prefix = f"{worker_label} " if worker_label else ""
    console.print(
        f"[{style}]{prefix}worker done:[/] {report.completed} job(s) completed, "
        f"{report.fizzled} failed (job directories under {report.launch_dir})"
    )
    if report.refused:
        console.print(
            f"[red]refused {len(report.refused)} job(s) naming code outside the allowed "
            f"packages (ids {', '.join(map(str, report.refused))}); they FIZZLED unrun[/] "
            "(allowed: chggen_flows, atomate2, jobflow and worker_allowed_packages)",
            highlight=False,
        )
    if report.fizzled:
        console.print(
            "see failures with `chggen status CAMPAIGN`; re-run them with `chggen resume`"
        )


def child_argv(category: list[str], max_jobs: int, campaign: str | None, label: str) -> list[str]:
    """The ``chggen`` arguments of one ``--gpus-per-node`` child: the same global
    options and worker options, one process (no ``--gpus-per-node``)."""
    argv: list[str] = []
    if STATE.config is not None:
        argv += ["--config", str(STATE.config)]
    if STATE.debug:
        argv.append("--debug")
    argv.append("run")
    for name in category:
        argv += ["--category", name]
    argv += ["--max-jobs", str(max_jobs)]
    if campaign:
        argv += ["--campaign", campaign]
    return [*argv, "--worker-label", label]


def register(app: typer.Typer) -> None:
    """Add ``chggen run`` to the root app."""
    app.command("run")(run_command)
