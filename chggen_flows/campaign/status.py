"""Where a campaign stands: jobs per state and stage, candidates per stage, failures."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chggen_flows.campaign.allowlist import REFUSED_KEY, refusals
from chggen_flows.campaign.registry import find_campaign

if TYPE_CHECKING:
    import pandas as pd
    from fireworks import LaunchPad
    from jobflow import JobStore

#: FireWorks states in the order a job passes through them.
JOB_STATES = (
    "WAITING",
    "READY",
    "RESERVED",
    "RUNNING",
    "COMPLETED",
    "FIZZLED",
    "DEFUSED",
    "PAUSED",
)
#: Stage label of jobs the DFT gate added at run time (they carry no stage tag).
ADDED_STAGE = "dft (added)"


@dataclass
class Failure:
    """A FIZZLED job and the last line of its error."""

    fw_id: int
    name: str
    stage: str
    reason: str


@dataclass
class CampaignStatus:
    """Counts of one campaign's jobs and candidates."""

    campaign: str
    n_candidates: int
    jobs_by_state: dict[str, int] = field(default_factory=dict)
    jobs_by_stage: dict[str, dict[str, int]] = field(default_factory=dict)
    jobs_by_category: dict[str, dict[str, int]] = field(default_factory=dict)
    candidates_by_stage: dict[str, int] = field(default_factory=dict)
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    #: The adapt job's outcome (status, message, checkpoint_sha256, n_related...) once it
    #: finished, in a campaign with ``model.adapt``; None otherwise.
    adaptation: dict[str, Any] | None = None
    #: Jobs naming code outside the allowed packages: FIZZLED by a worker, or not run yet
    #: (a worker would refuse them); see :mod:`chggen_flows.campaign.allowlist`.
    refused: list[Failure] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        """No job is waiting, ready or running."""
        active = ("WAITING", "READY", "RESERVED", "RUNNING")
        return not any(self.jobs_by_state.get(s, 0) for s in active)


def reason_kind(reason: str) -> str:
    """A rejection reason without its numbers and details, so that equal causes group:
    ``"relaxation: atoms 0.41 A apart"`` -> ``"relaxation: atoms N A apart"``."""
    head = reason.split(";")[0]
    head = re.sub(r"\s*\([^)]*\)", "", head)
    return re.sub(r"-?\d+(\.\d+)?", "N", head).strip()[:100]


def rejections_by_kind(candidates: pd.DataFrame) -> dict[str, int]:
    """Rejected (invalid) candidates of a ``load_candidates`` frame counted by
    :func:`reason_kind`, most frequent first."""
    if candidates.empty:
        return {}
    rejected = candidates.loc[~candidates["valid"].astype(bool), "rejected_reason"]
    return rejected.fillna("unknown").map(reason_kind).value_counts().to_dict()


def campaign_jobs(launchpad: LaunchPad, campaign: str) -> list[dict]:
    """The FireWorks documents (id, name, state, stage, category) of a campaign."""
    projection = {
        "fw_id": 1,
        "name": 1,
        "state": 1,
        "spec.stage": 1,
        "spec._category": 1,
        # what the allowlist check needs: task names and the job's function
        f"spec.{REFUSED_KEY}": 1,
        "spec._tasks._fw_name": 1,
        "spec._tasks.job.function": 1,
    }
    return list(launchpad.fireworks.find({"spec.campaign": campaign}, projection))


def last_error(launchpad: LaunchPad, fw_id: int) -> str:
    """The last line of the stack trace of a job's latest launch."""
    launch = launchpad.launches.find_one(
        {"fw_id": fw_id}, {"action.stored_data": 1, "state": 1}, sort=[("launch_id", -1)]
    )
    data = ((launch or {}).get("action") or {}).get("stored_data") or {}
    trace = (data.get("_exception") or {}).get("_stacktrace") or ""
    lines = [line for line in trace.strip().splitlines() if line.strip()]
    if lines:
        return lines[-1].strip()
    if launch is not None and launch.get("state") == "FIZZLED":
        return "launch lost (worker killed or timed out); run `chggen resume`"
    return "unknown"


def campaign_status(
    store: JobStore,
    launchpad: LaunchPad,
    campaign: str,
    allowed_packages: Sequence[str] = (),
) -> CampaignStatus:
    """Job and candidate counts of ``campaign`` (a unique prefix of its id is enough).

    ``allowed_packages`` is the ``worker_allowed_packages`` setting (packages a worker
    runs besides chggen's own); jobs outside them are listed in ``refused``.
    """
    from chggen_flows.campaign.results import load_candidates

    doc = find_campaign(store, campaign)
    cid = doc["campaign"]
    status = CampaignStatus(campaign=cid, n_candidates=doc.get("n_candidates", 0))
    by_stage: dict[str, Counter] = defaultdict(Counter)
    by_category: dict[str, Counter] = defaultdict(Counter)
    states: Counter = Counter()
    for fw in campaign_jobs(launchpad, cid):
        spec = fw.get("spec", {})
        stage = spec.get("stage", ADDED_STAGE)
        states[fw["state"]] += 1
        by_stage[stage][fw["state"]] += 1
        by_category[spec.get("_category", "any")][fw["state"]] += 1
        refused = spec.get(REFUSED_KEY)
        if refused is None and fw["state"] != "COMPLETED":
            problems = refusals(spec, allowed_packages)
            if problems:
                refused = f"a worker will refuse it: {'; '.join(problems)}"
        if refused is not None:
            status.refused.append(Failure(fw["fw_id"], fw["name"], stage, refused))
        elif fw["state"] == "FIZZLED":
            status.failures.append(
                Failure(fw["fw_id"], fw["name"], stage, last_error(launchpad, fw["fw_id"]))
            )
    status.jobs_by_state = dict(states)
    status.jobs_by_stage = {k: dict(v) for k, v in by_stage.items()}
    status.jobs_by_category = {k: dict(v) for k, v in by_category.items()}
    status.adaptation = adaptation_outcome(store, cid)
    candidates = load_candidates(store, cid)
    if not candidates.empty:
        status.candidates_by_stage = candidates["stage"].value_counts().to_dict()
        status.rejected_by_reason = rejections_by_kind(candidates)
    return status


def adaptation_outcome(store: JobStore, campaign: str) -> dict[str, Any] | None:
    """What the campaign's adapt job did (``model.adapt``): status (``adapted`` or
    ``fallback``), its message, the adapted checkpoint's sha256 and the related set's
    size; None before it finished or without adaptation. The checkpoint itself stays in
    the data store."""
    store.connect()
    doc = store.query_one(
        {"metadata.campaign": campaign, "output.@class": "AdaptDocument"},
        properties=["output.status", "output.message", "output.checkpoint_sha256",
                    "output.system", "output.result.n_related", "output.result.n_excluded",
                    "uuid"],
        load=False,
    )  # fmt: skip
    if doc is None:
        return None
    output = doc["output"]
    result = output.get("result") or {}
    return {
        "job": doc["uuid"],
        "system": output.get("system"),
        "status": output.get("status"),
        "message": output.get("message"),
        "checkpoint_sha256": output.get("checkpoint_sha256"),
        "n_related": result.get("n_related"),
        "n_excluded": result.get("n_excluded"),
    }
