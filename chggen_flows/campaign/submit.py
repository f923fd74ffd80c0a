"""Submit a campaign: validate everything, build the Flow, add it to the LaunchPad once.

Everything that can be wrong with a spec (elements the model does not know, a missing
checkpoint, reference data lacking an element, ...) is checked before the first write,
so a bad spec leaves the database untouched. The same spec submitted twice returns the
existing campaign (matched by the spec's hash) unless ``new=True``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pymatgen.core import Composition

from chggen_flows.campaign.build import CampaignPlan, build_flow
from chggen_flows.campaign.registry import registry
from chggen_flows.campaign.spec import CampaignSpec
from chggen_flows.errors import CampaignError, InputError

if TYPE_CHECKING:
    from fireworks import LaunchPad
    from jobflow import JobStore

    from chggen_flows.core.stability import ReferenceProvider


@dataclass
class Submission:
    """Outcome of :func:`submit_campaign`."""

    campaign: str
    created: bool
    n_candidates: int
    n_jobs: int
    n_batches: int
    chemsys: str


def spec_elements(spec: CampaignSpec) -> set[str]:
    """Every element a campaign's structures can contain."""
    if spec.mode == "host":
        from chggen_flows.campaign.build import read_host

        assert spec.host is not None
        host = read_host(spec.host.structure)
        # a disordered host's composition holds its guests (partially occupied species)
        return {el.symbol for el in host.composition} | set(spec.host.guests or {})
    return {el.symbol for f in spec.all_compositions() for el in Composition(f)}


def check_spec(spec: CampaignSpec) -> ReferenceProvider:
    """Checks that need more than the spec file: model vocabulary, guests, reference data.

    The E_d reference is resolved for the spec's potential (``relax.potential``): an
    offline hull of a potential other than ``chgnet`` is built here on first use (with a
    progress bar on a terminal) and cached, and a hull that does not fit the potential
    (another potential's, or a DFT hull on another functional) is refused here, before
    anything is written, instead of inside the E_d job.

    Returns
    -------
    ReferenceProvider
        The campaign's E_d reference (its ``label`` is what the records will carry).

    Raises
    ------
    CheckpointError
        The checkpoint is missing or unreadable.
    InputError
        An element the model was not trained on, or a composition without guests.
    ReferenceDataError
        The E_d reference lacks an element of the campaign.
    PotentialMismatchError
        The reference was not made by (or is not on the functional of) the potential.
    """
    from chggen_flows.core.model.checkpoint import read_checkpoint, resolve_checkpoint
    from chggen_flows.core.stability import check_reference_potential, get_reference

    path = resolve_checkpoint(spec.model.checkpoint)
    payload = read_checkpoint(path)
    vocabulary = set(payload.get("config", {}).get("elements", ()))
    elements = spec_elements(spec)
    unknown = sorted(elements - vocabulary)
    if unknown:
        raise InputError(
            f"the score model {path} does not know element(s) {', '.join(unknown)}",
            hint=f"it was trained on {', '.join(sorted(vocabulary))}; use another checkpoint",
        )
    if spec.mode == "unconditional":
        if not spec.guests:
            raise InputError(
                "no guest species: 'guests' names the species removed to find the host "
                "framework (e.g. [Li])",
                hint="add e.g. 'guests: [Li]' to the spec",
            )
        for formula in spec.all_compositions():
            present = {el.symbol for el in Composition(formula)}
            if not present & set(spec.guests) or not present - set(spec.guests):
                raise InputError(
                    f"composition {formula} needs both guest ({', '.join(spec.guests)}) and "
                    "host species",
                    hint="drop it or change 'guests'",
                )
    potential = spec.relax.potential
    provider = get_reference(spec.stability.reference, potential=potential)
    check_reference_potential(potential, provider)
    provider.entries(sorted(elements))
    prescreen = spec.stability.dft_prescreen_potential
    if spec.stability.dft and prescreen is not None:
        # the gate's pre-screen hull: built (first use) and checked here, not in the gate
        screen = get_reference("offline", potential=prescreen)
        check_reference_potential(prescreen, screen)
        screen.entries(sorted(elements))
    return provider


def campaign_id(spec: CampaignSpec, taken: set[str], new: bool) -> str:
    """``<name>-<hash8>``; with ``new`` a suffix keeps resubmissions apart."""
    base = f"{spec.name}-{spec.spec_hash()[:8]}"
    if not new or base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def submit_campaign(
    spec: CampaignSpec,
    store: JobStore,
    launchpad: LaunchPad,
    new: bool = False,
    checked: bool = False,
) -> Submission:
    """Validate ``spec``, then add its workflow to ``launchpad`` (idempotent by spec hash).

    Parameters
    ----------
    spec
        A validated spec (see :func:`chggen_flows.campaign.spec.load_spec`).
    store
        The JobStore whose database holds the campaign registry.
    launchpad
        Where the workflow goes.
    new
        Submit again even if the same spec was submitted before.
    checked
        :func:`check_spec` already passed (callers that prepare the database between
        the checks and the submission, as the CLI does, skip the second check).

    Returns
    -------
    Submission
        ``created`` is False when an existing campaign was returned.
    """
    from jobflow.managers.fireworks import flow_to_workflow

    if not checked:
        check_spec(spec)
    spec_hash = spec.spec_hash()
    coll = registry(store)
    existing = coll.find_one({"spec_hash": spec_hash}, {"_id": 0}, sort=[("submitted", -1)])
    if existing is not None and not new:
        return Submission(
            existing["campaign"],
            False,
            existing["n_candidates"],
            existing["n_jobs"],
            existing["n_batches"],
            existing["chemsys"],
        )
    taken = {d["campaign"] for d in coll.find({"spec_hash": spec_hash}, {"campaign": 1})}
    cid = campaign_id(spec, taken, new)
    plan: CampaignPlan = build_flow(spec, cid)
    # store=None: workers use their own JOB_STORE (jobflow settings / chggen settings), so
    # no connection string is written into the workflow.
    workflow = flow_to_workflow(plan.flow, store=None, name=cid, metadata={"campaign": cid})
    doc: dict[str, Any] = {
        "campaign": cid,
        "name": spec.name,
        "chemsys": plan.chemsys,
        "mode": spec.mode,
        "submitted": datetime.now(UTC),
        "spec_hash": spec_hash,
        "n_candidates": plan.n_candidates,
        "n_jobs": plan.n_jobs,
        "n_batches": plan.n_batches,
        "spec": spec.model_dump(mode="json"),
        "state": "submitting",
    }
    coll.insert_one(doc)
    try:
        id_map = launchpad.add_wf(workflow)
    except Exception as exc:
        coll.delete_one({"campaign": cid})
        raise CampaignError(
            f"adding the workflow of {cid} to the LaunchPad failed: {exc}",
            hint="check the database with `chggen db status` and submit again",
        ) from exc
    coll.update_one(
        {"campaign": cid}, {"$set": {"state": "submitted", "fw_ids": sorted(id_map.values())}}
    )
    return Submission(cid, True, plan.n_candidates, plan.n_jobs, plan.n_batches, plan.chemsys)
