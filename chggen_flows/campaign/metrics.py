"""Did generation beat random search? The search metrics of a campaign's arms.

Reads a campaign's records and final structures (``results``), compares them with the
known structures of the system (the shipped offline reference sets) and returns
:class:`~chggen_flows.core.analysis.search_metrics.SearchMetrics`: per arm (``chggen``,
``baseline:pyxtal``, ...) and per composition the E_d distribution, symmetric share,
unique, rediscovered and novel structures, validity and S.U.N. counts. See
docs/baseline.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chggen_flows.campaign.results import load_candidates, load_structures
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
    return search_metrics(frame, structures=structures, known=known, settings=settings)
