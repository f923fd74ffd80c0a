"""Resume a campaign after killed workers or a lost database: re-run only what failed.

A worker killed with ``kill -9`` leaves its job RUNNING forever; FireWorks recognises
such a "lost run" when its launch has not pinged for ``expiration_secs``. Lost runs are
marked FIZZLED, then every FIZZLED job is re-run with ``LaunchPad.rerun_fw``, which
resets the job and its descendants. COMPLETED jobs are never touched, so no candidate
is generated twice; a re-run job writes its output under the same job uuid and index,
replacing nothing but its own missing output.

A worker killed while it held its workflow's write lock (FireWorks sets it for the
sub-second refresh after a job changes state) leaves the lock behind, and
``rerun_fw`` would wait five minutes for it and then fail. A lock still held after
``STALE_LOCK_SECS`` is taken over before the re-run.

Jobs a worker refused (they name code outside the allowed packages, see
:mod:`chggen_flows.campaign.allowlist`) are never re-run, and jobs not yet run that a
worker would refuse are listed, so a resume never hands foreign code to a worker.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from chggen_flows.campaign.allowlist import REFUSED_KEY, refusals
from chggen_flows.campaign.registry import find_campaign
from chggen_flows.campaign.worker import PING_SECONDS

if TYPE_CHECKING:
    from fireworks import LaunchPad
    from jobflow import JobStore

#: A run is lost after five missed pings of a chggen worker.
DEFAULT_EXPIRATION_SECS = 5 * PING_SECONDS
#: A live worker holds a workflow lock for well under a second; one held this long is
#: a dead worker's.
STALE_LOCK_SECS = 10


@dataclass
class ResumePlan:
    """What :func:`resume_campaign` found and did (or, with ``dry_run``, would do)."""

    campaign: str
    dry_run: bool
    lost: list[int] = field(default_factory=list)
    fizzled: list[int] = field(default_factory=list)
    rerun: list[int] = field(default_factory=list)
    completed: int = 0
    #: FIZZLED because a worker refused them (foreign code): never re-run.
    refused: list[int] = field(default_factory=list)
    #: Not run yet, but naming code a worker would refuse.
    would_refuse: list[int] = field(default_factory=list)

    @property
    def nothing_to_do(self) -> bool:
        """No lost or failed job."""
        return not self.rerun


def resume_campaign(
    store: JobStore,
    launchpad: LaunchPad,
    campaign: str,
    expiration_secs: int = DEFAULT_EXPIRATION_SECS,
    dry_run: bool = False,
    allowed_packages: Sequence[str] = (),
) -> ResumePlan:
    """Mark the campaign's lost runs FIZZLED and re-run its FIZZLED jobs (and children).

    Parameters
    ----------
    store
        The JobStore holding the campaign registry.
    launchpad
        The campaign's LaunchPad.
    campaign
        Campaign id (or a unique prefix).
    expiration_secs
        A RUNNING job whose launch has not pinged for this long is lost. Keep it above
        a few ping intervals (60 s) unless you know no worker of the campaign is alive.
    dry_run
        Only report what would be re-run.
    allowed_packages
        The ``worker_allowed_packages`` setting: packages allowed besides chggen's own.
    """
    cid = find_campaign(store, campaign)["campaign"]
    query = {"spec.campaign": cid}
    lost_launches, lost, _ = launchpad.detect_lostruns(expiration_secs=expiration_secs, query=query)
    if not dry_run:
        # fizzling refreshes the workflow under its lock: free a dead worker's lock first
        for fw_id in lost:
            _take_over_stale_lock(launchpad, fw_id)
        for launch_id in lost_launches:
            launchpad.mark_fizzled(launch_id)
    refused, would_refuse = _refused_jobs(launchpad, query, allowed_packages)
    fizzled = set(launchpad.get_fw_ids({**query, "state": "FIZZLED"})) - set(refused)
    plan = ResumePlan(
        campaign=cid,
        dry_run=dry_run,
        lost=sorted(set(lost) - set(refused)),
        fizzled=sorted(fizzled - set(lost)),
        rerun=sorted((fizzled | set(lost)) - set(refused) - set(would_refuse)),
        completed=len(launchpad.get_fw_ids({**query, "state": "COMPLETED"})),
        refused=refused,
        would_refuse=would_refuse,
    )
    if not dry_run:
        for fw_id in plan.rerun:
            _take_over_stale_lock(launchpad, fw_id)
            launchpad.rerun_fw(fw_id)
    return plan


def _refused_jobs(
    launchpad: LaunchPad, query: dict, allowed_packages: Sequence[str]
) -> tuple[list[int], list[int]]:
    """Jobs a worker refused, and jobs not yet COMPLETED that a worker would refuse."""
    refused, would_refuse = [], []
    for doc in launchpad.fireworks.find(
        {**query, "state": {"$ne": "COMPLETED"}}, {"fw_id": 1, "spec": 1}
    ):
        spec = doc.get("spec") or {}
        if REFUSED_KEY in spec:
            refused.append(doc["fw_id"])
        elif refusals(spec, allowed_packages):
            would_refuse.append(doc["fw_id"])
    return sorted(refused), sorted(would_refuse)


def _take_over_stale_lock(launchpad: LaunchPad, fw_id: int) -> None:
    """Wait for a live holder of the workflow's lock; take over and release a dead one's."""
    from fireworks.core.launchpad import WFLock

    with WFLock(launchpad, fw_id, expire_secs=STALE_LOCK_SECS, kill=True):
        pass
