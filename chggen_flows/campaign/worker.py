"""A local FireWorks worker: ``rapidfire`` over the READY jobs of some categories.

This is what ``chggen run`` and ``chggen campaign demo`` start on a laptop; on a cluster
the same jobs are run by ``rlaunch``/``qlaunch`` with the configs in
``launchpad_configs/`` (see ``docs/cluster.md``).
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from chggen_flows.campaign.spec import CATEGORIES
from chggen_flows.errors import ConfigError, DatabaseError, InputError
from chggen_flows.settings import Settings

if TYPE_CHECKING:
    from jobflow import JobStore

#: Seconds between a running job's "still alive" pings. FireWorks' default is an hour;
#: a minute lets ``chggen resume`` tell a killed worker's job from a running one within
#: minutes (its default expiration is five pings).
PING_SECONDS = 60
#: Seconds between checks for READY jobs while another worker's job runs.
POLL_SECONDS = 1.0


@dataclass
class WorkerReport:
    """What one worker session did."""

    completed: int
    fizzled: int
    launch_dir: Path
    refused: list[int] = field(default_factory=list)


#: How to make VASP jobs runnable, for messages.
VASP_HINT = (
    "set atomate2's VASP_CMD (ATOMATE2_VASP_CMD, or VASP_CMD in ~/.atomate2.yaml) to a "
    "command on PATH and pymatgen's PMG_VASP_PSP_DIR (in ~/.config/.pmgrc.yaml, or the "
    "environment) to the POTCAR directory"
)


@dataclass
class CategoryPlan:
    """Which jobs a worker takes, and what to tell the user about that choice.

    Attributes
    ----------
    categories
        Categories given explicitly (empty: every category but ``exclude``).
    exclude
        Categories left out of "every category" because this machine cannot run them.
    notes
        One line per decision worth showing on the console.
    """

    categories: list[str]
    exclude: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def vasp_problems() -> list[str]:
    """Why this machine cannot run the atomate2 VASP jobs (empty: it can).

    Checks what the jobs themselves read: atomate2's ``VASP_CMD`` must name programs on
    ``PATH``, and pymatgen's ``PMG_VASP_PSP_DIR`` must be a directory (without it every
    VASP job fizzles at once with ``PmgVaspPspDirError`` while writing its POTCAR).
    """
    from atomate2 import SETTINGS as ATOMATE2_SETTINGS
    from pymatgen.core import SETTINGS as PMG_SETTINGS

    problems: list[str] = []
    command = ATOMATE2_SETTINGS.VASP_CMD or ""
    words = shlex.split(command)
    # The launcher (srun, mpirun) and the VASP binary itself must both exist here.
    programs = dict.fromkeys(
        [words[0], *(w for w in words if Path(w).name.startswith("vasp"))] if words else []
    )
    missing = [p for p in programs if shutil.which(p) is None]
    if not words:
        problems.append("VASP_CMD is empty")
    elif missing:
        problems.append(f"VASP_CMD {command!r}: {', '.join(missing)} not found on PATH")
    psp_dir = PMG_SETTINGS.get("PMG_VASP_PSP_DIR")
    if not psp_dir:
        problems.append("PMG_VASP_PSP_DIR (POTCARs) is not set")
    elif not Path(psp_dir).expanduser().is_dir():
        problems.append(f"PMG_VASP_PSP_DIR {psp_dir!r} is not a directory")
    return problems


def cuda_available() -> bool:
    """Whether torch sees a CUDA GPU."""
    import torch

    return torch.cuda.is_available()


def plan_categories(categories: Sequence[str] | None) -> CategoryPlan:
    """The categories a worker on this machine takes.

    Every category by default, except ``vasp`` where VASP is not configured (its jobs
    would only fizzle). ``gpu`` jobs are taken without a GPU too: they run on the CPU
    (slower, but the same results), which is how tests and the demo run them.

    Raises
    ------
    InputError
        An unknown category.
    ConfigError
        ``vasp`` was asked for explicitly but VASP is not configured.
    """
    chosen = list(dict.fromkeys(categories or []))
    for category in chosen:
        if category not in CATEGORIES:
            raise InputError(
                f"unknown worker category {category!r}", hint=f"choose from {', '.join(CATEGORIES)}"
            )
    plan = CategoryPlan(chosen)
    if not chosen or "vasp" in chosen:
        problems = vasp_problems()
        if problems and chosen:
            raise ConfigError(
                f"cannot take vasp jobs: {'; '.join(problems)}",
                hint=VASP_HINT + "; or leave out --category vasp",
            )
        if problems:
            plan.exclude.append("vasp")
            plan.notes.append(
                f"not taking vasp jobs: no VASP_CMD/POTCARs configured ({'; '.join(problems)}); "
                f"{VASP_HINT} to run them"
            )
    if (not chosen or "gpu" in chosen) and not cuda_available():
        plan.notes.append("no CUDA GPU visible: gpu jobs run on the CPU")
    return plan


def make_fworker(
    categories: Sequence[str] | None,
    campaign: str | None = None,
    exclude: Sequence[str] = (),
):
    """A FWorker picking jobs of ``categories`` (all when empty, but ``exclude``),
    optionally of one campaign only."""
    from fireworks import FWorker

    categories = list(categories or [])
    for category in [*categories, *exclude]:
        if category not in CATEGORIES:
            raise InputError(
                f"unknown worker category {category!r}", hint=f"choose from {', '.join(CATEGORIES)}"
            )
    query: dict = {"spec.campaign": campaign} if campaign else {}
    if exclude and not categories:
        # FWorker's own category filter can only include; jobs without a category
        # still match "every category but these".
        query["spec._category"] = {"$nin": list(exclude)}
    category: str | list[str] = categories[0] if len(categories) == 1 else categories
    # one name per process: launches (and the counts of this session) are told apart
    name = f"chggen@{socket.gethostname()}:{os.getpid()}"
    return FWorker(name=name, category=category or "", query=query)


def run_worker(
    settings: Settings,
    categories: Sequence[str] | None = None,
    max_jobs: int = 0,
    campaign: str | None = None,
    launch_dir: Path | None = None,
    exclude: Sequence[str] = (),
) -> WorkerReport:
    """Run READY jobs until none is left for this worker (or ``max_jobs`` ran).

    Parameters
    ----------
    settings
        Database and device settings; the worker's jobs write to this JobStore.
    categories
        Worker categories (``gpu``, ``cpu``, ``vasp``); empty means every category.
    max_jobs
        Stop after this many jobs (0: until no READY job is left).
    campaign
        Only run jobs of this campaign.
    launch_dir
        Where the job directories go (default ``<data_dir>/launches``).
    exclude
        With no ``categories``: categories not to take (see :func:`plan_categories`).

    Raises
    ------
    DatabaseError
        The database became unreachable; restart it and run ``chggen resume``.
    CampaignError
        The LaunchPad holds jobs named by the pre-rename module ``makers.*``
        (``chggen db migrate`` rewrites them).
    """
    from pymongo.errors import PyMongoError

    from chggen_flows.campaign.allowlist import guard_launchpad
    from chggen_flows.core.device import configure_threads
    from chggen_flows.db import get_job_store, get_launchpad
    from chggen_flows.db.migrate import check_module_names

    configure_threads(settings.threads)
    fworker = make_fworker(categories, campaign, exclude)
    store = get_job_store(settings)
    launchpad = get_launchpad(settings)
    # Campaigns from before chggen_flows.makers name makers.*: refuse until migrated.
    check_module_names(launchpad.fireworks)
    # Only jobs of allowed packages run; others FIZZLE unrun (see campaign.allowlist).
    launchpad = guard_launchpad(launchpad, settings.worker_allowed_packages)
    # FireWorks logs every checkout and task at INFO; jobflow's own "Starting job" /
    # "Finished job" lines are the progress worth showing. A filter, not setLevel:
    # FireWorks resets its loggers to DEBUG each time it fetches them.
    for name in ("launchpad", "rocket.launcher"):
        logger = logging.getLogger(name)
        if _warnings_only not in logger.filters:
            logger.addFilter(_warnings_only)
    launch_dir = Path(launch_dir or settings.data_dir / "launches")
    launch_dir.mkdir(parents=True, exist_ok=True)
    name = fworker.name
    before = _launch_counts(launchpad, name)
    try:
        with worker_library_settings(store):
            _launch_loop(launchpad, fworker, launch_dir, max_jobs)
        after = _launch_counts(launchpad, name)
    except PyMongoError as exc:
        raise DatabaseError(
            f"the worker lost the database: {type(exc).__name__}: {str(exc).splitlines()[0]}",
            hint="restart the database (chggen db start), then `chggen resume CAMPAIGN` "
            "re-runs the interrupted jobs",
        ) from exc
    return WorkerReport(
        completed=after["COMPLETED"] - before["COMPLETED"],
        fizzled=after["FIZZLED"] - before["FIZZLED"],
        launch_dir=launch_dir,
        refused=list(launchpad.chggen_refused),
    )


@contextmanager
def worker_library_settings(store: JobStore) -> Iterator[None]:
    """Point jobflow's and FireWorks' process-wide settings at this worker, then restore.

    Neither library takes these per call, so this is the one place that sets module
    globals (restored afterwards, so that a test or a notebook is left as it was):

    - ``jobflow.SETTINGS.JOB_STORE``: the workflows are submitted without a store
      (``flow_to_workflow(store=None)``, so no connection string is written into the
      LaunchPad), and jobflow's ``JobFiretask`` then writes to ``SETTINGS.JOB_STORE``;
      ``launch_rocket`` has no store argument. jobflow documents this settings object
      as the place of the store; its other route, ``JOBFLOW_JOB_STORE`` /
      ``JOBFLOW_CONFIG_FILE``, is read once at import.
    - ``fireworks.core.rocket.PING_TIME_SECS`` (:data:`PING_SECONDS`): FireWorks reads it
      from ``FW_config.yaml`` once at import and binds it into ``rocket``'s namespace,
      and ``launch_rocket`` has no ping argument either.
    """
    import jobflow
    from fireworks.core import rocket

    saved = jobflow.SETTINGS.JOB_STORE, rocket.PING_TIME_SECS
    jobflow.SETTINGS.JOB_STORE = store
    rocket.PING_TIME_SECS = PING_SECONDS
    try:
        yield
    finally:
        jobflow.SETTINGS.JOB_STORE, rocket.PING_TIME_SECS = saved


def _warnings_only(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING


def _launch_loop(launchpad, fworker, launch_dir: Path, max_jobs: int) -> int:
    """Run one job at a time while READY jobs exist; wait while a running job may still
    release children for this worker; stop when neither holds or ``max_jobs`` ran.

    (FireWorks' ``rapidfire`` with a job limit waits forever when fewer jobs exist.)
    """
    from fireworks.core.rocket_launcher import launch_rocket

    ran = 0
    cwd = os.getcwd()
    try:
        while max_jobs <= 0 or ran < max_jobs:
            if launchpad.run_exists(fworker):
                job_dir = Path(tempfile.mkdtemp(prefix="launcher_", dir=launch_dir))
                os.chdir(job_dir)
                if launch_rocket(launchpad, fworker, strm_lvl="WARNING"):
                    ran += 1
                os.chdir(cwd)
            elif launchpad.future_run_exists(fworker):
                time.sleep(POLL_SECONDS)
            else:
                break
    finally:
        os.chdir(cwd)
    return ran


def _launch_counts(launchpad, fworker_name: str) -> dict[str, int]:
    return {
        state: launchpad.launches.count_documents({"fworker.name": fworker_name, "state": state})
        for state in ("COMPLETED", "FIZZLED")
    }


def visible_gpus(environ: Mapping[str, str] | None = None) -> list[str]:
    """The GPUs this process may use, as ``CUDA_VISIBLE_DEVICES`` entries.

    ``CUDA_VISIBLE_DEVICES`` (set by SLURM for ``--gpus-per-node``, or by hand) is taken
    as given, indices or UUIDs; without it, ``0 .. torch.cuda.device_count()-1``.
    """
    environ = os.environ if environ is None else environ
    listed = environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        devices = [d.strip() for d in listed.split(",") if d.strip()]
        # CUDA stops at the first invalid entry; "-1" is the usual "no GPU" spelling.
        return list(devices[: devices.index("-1")] if "-1" in devices else devices)
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def gpu_worker_count(value: str, environ: Mapping[str, str] | None = None) -> int:
    """How many worker processes ``--gpus-per-node value`` starts (``auto``: one per
    visible GPU, at least one).

    Raises
    ------
    InputError
        Not a positive integer nor ``auto``, or more workers than visible GPUs.
    """
    if value.strip().lower() == "auto":
        return max(1, len(visible_gpus(environ)))
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count < 1:
        raise InputError(
            f"--gpus-per-node {value!r} is not a positive number of GPUs",
            hint="give the number of GPUs of the node (e.g. 4), or auto",
        )
    return count


def gpu_worker_envs(
    count: int, environ: Mapping[str, str] | None = None, threads: int | None = None
) -> list[dict[str, str]]:
    """The environment of each of ``count`` worker processes, one per GPU.

    Each child sees one GPU only (``CUDA_VISIBLE_DEVICES`` = that GPU), so "cuda" is
    its own device and no two workers share one. Unless ``threads`` is set (the
    ``threads`` setting), each gets ``CHGGEN_THREADS`` = its share of the CPU cores,
    at most 8, so that the workers do not oversubscribe the node's CPUs.

    Parameters
    ----------
    count
        Number of workers (GPUs).
    environ
        The parent's environment (default ``os.environ``).
    threads
        The ``threads`` setting in effect; None gives each worker a share of the cores.

    Raises
    ------
    InputError
        ``CUDA_VISIBLE_DEVICES`` lists fewer GPUs than ``count``.
    """
    environ = dict(os.environ if environ is None else environ)
    if "CUDA_VISIBLE_DEVICES" in environ:
        devices = visible_gpus(environ)
        if len(devices) < count:
            raise InputError(
                f"{count} GPU workers asked for, but CUDA_VISIBLE_DEVICES lists "
                f"{len(devices)} GPU(s) ({environ['CUDA_VISIBLE_DEVICES']!r})",
                hint="ask for at most as many as visible (--gpus-per-node auto), or fix "
                "CUDA_VISIBLE_DEVICES",
            )
    else:
        # Counting with torch would initialise CUDA in the parent for nothing; the
        # children fail clearly on a device that does not exist.
        devices = [str(i) for i in range(count)]
    share = None if threads else str(max(1, min(8, (os.cpu_count() or 1) // count)))
    envs = []
    for device in devices[:count]:
        env = {**environ, "CUDA_VISIBLE_DEVICES": device}
        if share is not None:
            env["CHGGEN_THREADS"] = share
        envs.append(env)
    return envs


def run_gpu_workers(argvs: Sequence[Sequence[str]], envs: Sequence[Mapping[str, str]]) -> list[int]:
    """Run one ``chggen`` process per (arguments, environment) pair, all at once.

    ``argvs`` are the ``chggen`` arguments of each child (``run ...``). Interrupting the
    parent (Ctrl-C, SLURM's SIGTERM at the wall time) stops every child. Returns their
    exit codes.
    """
    import signal
    import subprocess
    import sys

    entry = [sys.executable, "-c", "from chggen_flows.cli import main; main()"]
    children = [
        subprocess.Popen([*entry, *argv], env=dict(env))
        for argv, env in zip(argvs, envs, strict=True)
    ]
    previous = signal.getsignal(signal.SIGTERM)

    def _stop(signum, frame):  # a SIGTERM of the parent goes to the children too
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, _stop)
    except ValueError:  # not the main thread: leave signals alone
        previous = None
    try:
        return [child.wait() for child in children]
    except KeyboardInterrupt:
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            child.wait()
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
