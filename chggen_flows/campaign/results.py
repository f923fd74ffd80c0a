"""Query campaign results from the JobStore as pandas DataFrames and pymatgen structures.

The contract of this module (columns, filters) is documented in ``docs/results.md`` and
used by ``chggen report``. Each stage job's output is a ``StageDocument`` whose candidate
records carry every earlier stage's fields, so the latest record of a candidate (by
stage order) is its whole history; structures are read from the GridFS data store only
when asked for.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from chggen_flows.campaign.registry import registry
from chggen_flows.errors import InputError
from chggen_flows.makers.schemas import RECORD_DOCUMENTS, STAGES, CandidateRecord

if TYPE_CHECKING:
    from jobflow import JobStore
    from pymatgen.core import Structure

#: Columns of :func:`load_candidates`, in order (docs/results.md): every field of the
#: record schema, so a new field reaches ``chggen results`` without a second list.
CANDIDATE_COLUMNS = tuple(CandidateRecord.model_fields)
CAMPAIGN_COLUMNS = (
    "campaign",
    "name",
    "chemsys",
    "mode",
    "submitted",
    "spec_hash",
    "n_candidates",
    "n_jobs",
    "spec",
)
_STAGE_ORDER = {stage: i for i, stage in enumerate(STAGES)}
#: Output classes that carry campaign records: every stage's document and the DFT jobs'.
_RECORD_DOC = {"output.@class": {"$in": list(RECORD_DOCUMENTS)}}


def list_campaigns(store: JobStore) -> pd.DataFrame:
    """Every submitted campaign, newest first (columns: ``CAMPAIGN_COLUMNS``)."""
    docs = list(registry(store).find({}, {"_id": 0}, sort=[("submitted", -1)]))
    frame = pd.DataFrame(docs, columns=list(CAMPAIGN_COLUMNS))
    return frame.reset_index(drop=True)


def _stage_documents(
    store: JobStore, campaign: str | None, properties: list[str], load: bool | dict = False
) -> Iterable[dict[str, Any]]:
    criteria: dict[str, Any] = dict(_RECORD_DOC)
    if campaign is not None:
        criteria["metadata.campaign"] = campaign
    store.connect()
    return store.query(criteria, properties=properties, load=load)


def _latest_records(
    store: JobStore, campaign: str | None, stage: str | None = None
) -> dict[tuple[str, str], tuple[dict, str, int]]:
    """``{(campaign, candidate_id): (record, job uuid, position)}`` of the latest record
    of each candidate (or its record at ``stage``)."""
    latest: dict[tuple[str, str], tuple[dict, str, int]] = {}
    rank: dict[tuple[str, str], tuple[int, str]] = {}
    props = ["output.candidates", "output.stage", "completed_at"]
    # A campaign-wide job keeps its records in the data store (see makers.schemas):
    # load those blobs only, not the structures.
    for doc in _stage_documents(store, campaign, props, load={"data": ["candidates"]}):
        output = doc["output"]
        if stage is not None and output["stage"] != stage:
            continue
        for position, record in enumerate(output["candidates"]):
            key = (record["campaign"], record["candidate_id"])
            order = (_STAGE_ORDER.get(record["stage"], -1), str(doc.get("completed_at", "")))
            if key not in rank or order > rank[key]:
                rank[key] = order
                latest[key] = (record, doc["uuid"], position)
    return latest


def load_candidates(store: JobStore, campaign: str | None = None, **filters: Any) -> pd.DataFrame:
    """One row per candidate, the latest state of each across stages.

    Parameters
    ----------
    store
        The campaign's JobStore.
    campaign
        Campaign id, or None for all campaigns.
    **filters
        ``chemsys``, ``composition`` (or ``reduced_formula``), ``e_d_min``, ``e_d_max``,
        ``spacegroup`` (number or symbol), ``symmetric``, ``stage``, ``dft_state``.

    Returns
    -------
    pandas.DataFrame
        Columns ``CANDIDATE_COLUMNS`` (docs/results.md); missing values are NaN/None.
    """
    unknown = set(filters) - _FILTERS
    if unknown:
        raise InputError(
            f"unknown result filter(s) {', '.join(sorted(unknown))}",
            hint=f"known: {', '.join(sorted(_FILTERS))}",
        )
    latest = _latest_records(store, campaign)
    frame = pd.DataFrame([record for record, _, _ in latest.values()])
    for column in CANDIDATE_COLUMNS:
        if column not in frame:
            frame[column] = None
    frame = frame[list(CANDIDATE_COLUMNS)]
    for column in ("e_d", "e_d_r2scan", "energy_per_atom", "de_uncond", "de_inpaint"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    frame = _apply_filters(frame, filters)
    return frame.sort_values(["campaign", "candidate_id"]).reset_index(drop=True)


_FILTERS = {
    "chemsys",
    "composition",
    "reduced_formula",
    "e_d_min",
    "e_d_max",
    "spacegroup",
    "symmetric",
    "stage",
    "dft_state",
}


def _apply_filters(frame: pd.DataFrame, filters: dict[str, Any]) -> pd.DataFrame:
    from pymatgen.core import Composition

    mask = np.ones(len(frame), dtype=bool)
    given = {k: v for k, v in filters.items() if v is not None}
    if "chemsys" in given:
        wanted = "-".join(sorted(str(given["chemsys"]).split("-")))
        mask &= frame["chemsys"].to_numpy() == wanted
    formula = given.get("composition", given.get("reduced_formula"))
    if formula is not None:
        try:
            reduced = Composition(formula).reduced_formula
        except Exception as exc:  # pymatgen raises several types for bad formulas
            raise InputError(f"cannot read composition {formula!r}: {exc}") from exc
        mask &= frame["reduced_formula"].to_numpy() == reduced
    if "e_d_min" in given:
        mask &= (frame["e_d"] >= float(given["e_d_min"])).to_numpy()
    if "e_d_max" in given:
        mask &= (frame["e_d"] <= float(given["e_d_max"])).to_numpy()
    if "spacegroup" in given:
        value = str(given["spacegroup"])
        if value.isdigit():
            mask &= (
                pd.to_numeric(frame["spacegroup_number"], errors="coerce") == int(value)
            ).to_numpy()
        else:
            mask &= (frame["spacegroup_symbol"] == value).to_numpy()
    if "symmetric" in given:
        mask &= (frame["symmetric"] == bool(given["symmetric"])).to_numpy()
    if "stage" in given:
        if given["stage"] not in STAGES:
            raise InputError(
                f"unknown stage {given['stage']!r}", hint=f"one of {', '.join(STAGES)}"
            )
        mask &= (frame["stage"] == given["stage"]).to_numpy()
    if "dft_state" in given:
        mask &= (frame["dft_state"] == str(given["dft_state"]).upper()).to_numpy()
    return frame[mask]


def load_structures(
    store: JobStore,
    campaign: str,
    candidate_ids: Iterable[str],
    stage: str = "final",
) -> dict[str, Structure]:
    """Structures of ``candidate_ids`` from the GridFS data store.

    Parameters
    ----------
    store
        The campaign's JobStore.
    campaign
        Campaign id.
    candidate_ids
        The candidates wanted.
    stage
        ``"final"`` (the last stage each candidate reached) or a stage name; candidates
        that did not reach it are left out.
    """
    from monty.json import MontyDecoder

    if stage != "final" and stage not in STAGES:
        raise InputError(f"unknown stage {stage!r}", hint=f"'final' or one of {', '.join(STAGES)}")
    wanted = set(candidate_ids)
    latest = _latest_records(store, campaign, None if stage == "final" else stage)
    by_job: dict[str, list[tuple[str, int]]] = {}
    for (_, cid), (_, uuid, position) in latest.items():
        if cid in wanted:
            by_job.setdefault(uuid, []).append((cid, position))
    structures: dict[str, Structure] = {}
    decoder = MontyDecoder()
    for uuid, members in by_job.items():
        doc = store.query_one(
            {"uuid": uuid, **_RECORD_DOC},
            properties=["output.structures"],
            load=True,
            sort={"index": -1},
        )
        blobs = doc["output"]["structures"]
        for cid, position in members:
            item = blobs[position]
            if item is not None:
                structures[cid] = decoder.process_decoded(item)
    return structures
