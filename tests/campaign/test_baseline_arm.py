"""A spec with ``baseline:`` gives both arms end to end: random-search candidates for the
same compositions and cells, through the same relaxation, symmetry and E_d jobs, each arm
de-duplicated on its own, DFT only for the generated arm, and the metrics per arm."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from jobflow import run_locally

from chggen_flows.campaign.build import build_flow
from chggen_flows.campaign.metrics import campaign_metrics
from chggen_flows.campaign.results import load_candidates
from chggen_flows.campaign.spec import CampaignSpec
from chggen_flows.errors import InputError
from tests.campaign.helpers import REFERENCE_CSV, tiny_checkpoint, tiny_spec

CAMPAIGN = "tiny-base-00000001"


def _spec(checkpoint, **baseline) -> CampaignSpec:
    raw = tiny_spec(
        checkpoint,
        stability={"reference": str(REFERENCE_CSV), "dft": False},
        baseline={"kind": "pyxtal", **baseline},
    )
    return CampaignSpec.model_validate(raw)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("model") / "tiny.pt")


def test_the_baseline_arm_is_routed_and_joins_the_e_d_job(checkpoint):
    plan = build_flow(_spec(checkpoint), CAMPAIGN)
    assert plan.n_candidates == 8  # 4 generated + 4 random, same compositions and cells
    stages = [(j.metadata["stage"], j.metadata.get("arm")) for j in plan.flow.jobs]
    assert stages.count(("generated", "baseline")) == 2  # one random-search job per batch
    baseline = [j for j in plan.flow.jobs if j.metadata.get("arm") == "baseline"]
    assert [j.metadata["stage"] for j in baseline] == ["generated", "relaxed", "classified"] * 2
    assert {j.config.manager_config["_category"] for j in baseline} == {"cpu"}
    ehull = next(j for j in plan.flow.jobs if j.metadata["stage"] == "ehull")
    assert {r.uuid for r in ehull.input_references} >= {baseline[2].uuid, baseline[5].uuid}


def test_bad_baseline_sections_are_refused_at_load(checkpoint):
    for section, message in (
        ({"kind": "pyxtl"}, "kind"),
        ({"max_attempt": 3}, "did you mean 'max_attempts'"),
        ({"min_distance": -1.0}, "min_distance"),
    ):
        raw = tiny_spec(checkpoint, baseline=section)
        with pytest.raises(ValueError, match=message):
            CampaignSpec.model_validate(raw)


def _run_both_arms(checkpoint, settings, tmp_path):
    """The tiny campaign with a PyXtal arm, run locally into the database, registered."""
    from chggen_flows.campaign.registry import registry
    from chggen_flows.db import get_job_store

    store = get_job_store(settings)
    plan = build_flow(_spec(checkpoint), CAMPAIGN)
    run_locally(plan.flow, store=store, ensure_success=True, root_dir=tmp_path)
    registry(store).insert_one(
        {
            "campaign": CAMPAIGN,
            "name": "tiny-base",
            "chemsys": "Li-Si",
            "mode": "unconditional",
            "submitted": datetime.now(UTC),
            "spec_hash": "0" * 64,
            "n_candidates": 8,
            "n_jobs": len(plan.flow.jobs),
            "n_batches": 2,
            "spec": {},
            "state": "submitted",
        }
    )
    return store


def test_both_arms_end_to_end_with_metrics(checkpoint, db_settings, tmp_path):
    store = _run_both_arms(checkpoint, db_settings, tmp_path)
    frame = load_candidates(store, CAMPAIGN)
    arms = frame.groupby("arm")["candidate_id"].apply(sorted).to_dict()
    assert set(arms) == {"chggen", "baseline:pyxtal"}
    assert [f"{c}-pyxtal" for c in arms["chggen"]] == arms["baseline:pyxtal"]
    random = frame[frame.arm == "baseline:pyxtal"]
    # through the same relaxation, classification and E_d as the generated arm
    assert set(random[random.valid].stage) == {"ehull"}
    assert random[random.valid].e_d.notna().all() and random.de_uncond.notna().any()
    assert random.framework_found.isna().all()  # no framework or inpainting stage
    assert (random.v0_source == frame[frame.arm == "chggen"].v0_source.iloc[0]).all()
    # each arm de-duplicated on its own; only generated candidates are shortlisted
    for _, row in frame[frame.duplicate_of.notna()].iterrows():
        assert frame.set_index("candidate_id").loc[row.duplicate_of, "arm"] == row.arm
    assert not random.below_threshold.fillna(False).astype(bool).any()

    metrics = campaign_metrics(store, CAMPAIGN)
    assert [a.arm for a in metrics.arms] == ["chggen", "baseline:pyxtal"]
    for arm in metrics.arms:
        # E_d for every candidate the pipeline kept; the metrics' validity also drops
        # kept ones with atoms too close (the tiny untrained model's samples may have)
        kept = int(frame[frame.arm == arm.arm].valid.sum())
        assert arm.n_candidates == 4 and arm.n_valid <= arm.n_with_e_d == kept
    table = metrics.to_frame()
    assert set(table.composition) == {"all", "Li3Si", "Li2Si"}


def test_results_metrics_cli(checkpoint, db_env, cli, tmp_path):
    store = _run_both_arms(checkpoint, db_env, tmp_path)
    res = cli("results", CAMPAIGN, "--metrics", "--json")
    assert res.exit_code == 0, res.stderr
    data = json.loads(res.stdout)
    assert [a["arm"] for a in data["arms"]] == ["chggen", "baseline:pyxtal"]
    res = cli("results", CAMPAIGN, "--metrics")
    assert res.exit_code == 0 and "baseline:pyxtal" in res.stdout and "SUN" in res.stdout
    res = cli("results", "--metrics")
    assert res.exit_code == 2 and "needs a campaign" in res.stderr
    with pytest.raises(InputError):
        campaign_metrics(store, "nothing-here")
