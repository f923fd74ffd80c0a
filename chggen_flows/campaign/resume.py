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
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

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
    fizzled = launchpad.get_fw_ids({**query, "state": "FIZZLED"})
    plan = ResumePlan(
        campaign=cid,
        dry_run=dry_run,
        lost=sorted(lost),
        fizzled=sorted(set(fizzled) - set(lost)),
        rerun=sorted(set(fizzled) | set(lost)),
        completed=len(launchpad.get_fw_ids({**query, "state": "COMPLETED"})),
    )
    if not dry_run:
        for fw_id in plan.rerun:
            _take_over_stale_lock(launchpad, fw_id)
            launchpad.rerun_fw(fw_id)
    return plan


def _take_over_stale_lock(launchpad: LaunchPad, fw_id: int) -> None:
    """Wait for a live holder of the workflow's lock; take over and release a dead one's."""
    from fireworks.core.launchpad import WFLock

    with WFLock(launchpad, fw_id, expire_secs=STALE_LOCK_SECS, kill=True):
        pass
