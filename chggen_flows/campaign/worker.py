"""A local FireWorks worker: ``rapidfire`` over the READY jobs of some categories.

This is what ``chggen run`` and ``chggen campaign demo`` start on a laptop; on a cluster
the same jobs are run by ``rlaunch``/``qlaunch`` with the configs in
``launchpad_configs/`` (see ``docs/cluster.md``).
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from chggen_flows.campaign.spec import CATEGORIES
from chggen_flows.errors import DatabaseError, InputError
from chggen_flows.settings import Settings

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


def make_fworker(categories: Sequence[str] | None, campaign: str | None = None):
    """A FWorker picking jobs of ``categories`` (all when empty), optionally of one
    campaign only."""
    from fireworks import FWorker

    categories = list(categories or [])
    for category in categories:
        if category not in CATEGORIES:
            raise InputError(
                f"unknown worker category {category!r}", hint=f"choose from {', '.join(CATEGORIES)}"
            )
    query = {"spec.campaign": campaign} if campaign else {}
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

    Raises
    ------
    DatabaseError
        The database became unreachable; restart it and run ``chggen resume``.
    """
    import jobflow
    from fireworks.core import rocket
    from pymongo.errors import PyMongoError

    from chggen_flows.core.device import configure_threads
    from chggen_flows.db import get_job_store, get_launchpad

    configure_threads(settings.threads)
    fworker = make_fworker(categories, campaign)
    # The workflows were added without a store: jobs write to the store of the worker.
    jobflow.SETTINGS.JOB_STORE = get_job_store(settings)
    launchpad = get_launchpad(settings)
    # FireWorks logs every checkout and task at INFO; jobflow's own "Starting job" /
    # "Finished job" lines are the progress worth showing. A filter, not setLevel:
    # FireWorks resets its loggers to DEBUG each time it fetches them.
    for name in ("launchpad", "rocket.launcher"):
        logger = logging.getLogger(name)
        if _warnings_only not in logger.filters:
            logger.addFilter(_warnings_only)
    rocket.PING_TIME_SECS = PING_SECONDS
    launch_dir = Path(launch_dir or settings.data_dir / "launches")
    launch_dir.mkdir(parents=True, exist_ok=True)
    name = fworker.name
    before = _launch_counts(launchpad, name)
    try:
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
    )


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
