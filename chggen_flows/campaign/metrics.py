"""Did generation beat random search? The search metrics of a campaign's arms.

Reads a campaign's records and final structures (``results``), compares them with the
known structures of the system (the shipped offline reference sets) and returns
:class:`~chggen_flows.core.analysis.search_metrics.SearchMetrics`: per arm (``chggen``,
``baseline:pyxtal``, ...) and per composition the E_d distribution, symmetric share,
unique, rediscovered and novel structures, validity and S.U.N. counts. See
docs/baseline.md.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import TYPE_CHECKING

from chggen_flows.campaign.results import _stage_documents, load_candidates, load_structures
from chggen_flows.core.analysis.search_metrics import MetricsSettings, SearchMetrics, search_metrics
from chggen_flows.errors import InputError, ReferenceDataError
from chggen_flows.makers.schemas import CHGGEN_ARM

if TYPE_CHECKING:
    from jobflow import JobStore


def campaign_metrics(
    store: JobStore, campaign: str, settings: MetricsSettings | None = None
) -> SearchMetrics:
    """Search metrics of every arm of ``campaign``.

    Parameters
    ----------
    store
        The campaign's JobStore.
    campaign
        Campaign id.
    settings
        Thresholds (stable E_d, minimum distance, matcher tolerances).

    Raises
    ------
    InputError
        The campaign has no candidates.
    """
    from chggen_flows.core.analysis.references import named_known_structures

    frame = load_candidates(store, campaign)
    if frame.empty:
        raise InputError(f"campaign {campaign!r} has no candidates yet")
    valid = frame[frame["valid"].astype(bool)]
    structures = load_structures(store, campaign, valid["candidate_id"])
    systems = frame["chemsys"].dropna().astype(str)
    try:
        known = named_known_structures(systems.value_counts().index[0]) if len(systems) else []
    except ReferenceDataError:  # no shipped set: nothing counts as rediscovered
        known = []
    frame = frame.assign(arm=frame["arm"].fillna(CHGGEN_ARM))
    metrics = search_metrics(frame, structures=structures, known=known, settings=settings)
    costs = arm_costs(store, campaign)
    arms = [arm.model_copy(update={"costs": costs.get(arm.arm, {})}) for arm in metrics.arms]
    return metrics.model_copy(update={"arms": arms})


def arm_costs(store: JobStore, campaign: str) -> dict[str, dict[str, float]]:
    """What each arm of ``campaign`` cost: score-model calls, CHGNet steps and job wall
    time (s), summed over its stage jobs.

    A job's costs are shared among the arms of its records in proportion to their
    number (a batch is one arm, except the symmetric-guest copies and the campaign-wide
    E_d job, which is shared by every arm).
    """
    totals: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    props = ["output.candidates", "output.summary", "output.provenance"]
    for doc in _stage_documents(store, campaign, props, load={"data": ["candidates"]}):
        output = doc.get("output") or {}
        arms = Counter(r.get("arm") or CHGGEN_ARM for r in output.get("candidates") or [])
        n = sum(arms.values())
        if not n:
            continue
        summary = output.get("summary") or {}
        wall = (output.get("provenance") or {}).get("wall_time_s")
        job = {
            "model_calls": float(summary.get("model_calls") or 0),
            "chgnet_steps": float(summary.get("chgnet_steps") or 0),
            "wall_time_s": float(wall or 0),
        }
        for arm, count in arms.items():
            for key, value in job.items():
                totals[arm][key] += value * count / n
    return {arm: {k: round(v, 3) for k, v in costs.items()} for arm, costs in totals.items()}
