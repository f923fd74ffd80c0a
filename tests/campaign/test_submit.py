"""Submission on a real SecantusDB server: registry, FireWorks specs, idempotency, bad specs."""

from __future__ import annotations

import re

import pytest

from chggen_flows.campaign.results import list_campaigns
from chggen_flows.campaign.spec import parse_spec
from chggen_flows.campaign.submit import submit_campaign
from chggen_flows.db import get_job_store, get_launchpad, init_database, store_database
from chggen_flows.errors import CheckpointError, InputError, ReferenceDataError
from tests.campaign.helpers import tiny_checkpoint, tiny_spec


@pytest.fixture
def db(db_settings):
    init_database(db_settings)
    return get_job_store(db_settings), get_launchpad(db_settings)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("model") / "tiny.pt")


def _written(store, launchpad) -> tuple[int, int]:
    campaigns = store_database(store)["campaigns"].count_documents({})
    return campaigns, launchpad.fireworks.count_documents({})


def test_submit_adds_routed_fireworks_once(db, checkpoint, tmp_path):
    store, launchpad = db
    spec = parse_spec(tiny_spec(checkpoint), "test", tmp_path)
    first = submit_campaign(spec, store, launchpad)
    assert first.created and first.n_candidates == 4 and first.n_jobs == 14
    fws = list(launchpad.fireworks.find({"spec.campaign": first.campaign}))
    assert len(fws) == 14
    categories = {fw["spec"]["stage"]: fw["spec"]["_category"] for fw in fws}
    assert categories["generated"] == categories["inpainted"] == "gpu"
    assert categories["relaxed"] == categories["ehull"] == "cpu"
    # the workflow carries no connection string: workers use their own JobStore
    assert all(fw["spec"]["_tasks"][0]["store"] is None for fw in fws)
    ready = [fw for fw in fws if fw["state"] == "READY"]
    assert {fw["spec"]["stage"] for fw in ready} == {"generated"}

    again = submit_campaign(spec, store, launchpad)
    assert not again.created and again.campaign == first.campaign
    assert launchpad.fireworks.count_documents({}) == 14

    renewed = submit_campaign(spec, store, launchpad, new=True)
    assert renewed.created and renewed.campaign == f"{first.campaign}-2"
    assert launchpad.fireworks.count_documents({}) == 28
    listed = list_campaigns(store)
    assert set(listed.campaign) == {first.campaign, renewed.campaign}
    assert set(listed.chemsys) == {"Li-Si"}


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        ({"compositions": ["Li2O"]}, InputError, "does not know element(s) O"),
        ({"guests": []}, InputError, "no guest species"),
        ({"compositions": ["Li3Si", "Si"]}, InputError, "needs both guest"),
        ({"guests": ["Na"], "compositions": ["Li3Si"]}, InputError, "needs both guest (Na)"),
    ],
)
def test_bad_specs_write_nothing(db, checkpoint, tmp_path, overrides, error, message):
    store, launchpad = db
    spec = parse_spec(tiny_spec(checkpoint, **overrides), "test", tmp_path)
    with pytest.raises(error, match=re.escape(message)):
        submit_campaign(spec, store, launchpad)
    assert _written(store, launchpad) == (0, 0)


def test_unreadable_checkpoint_and_missing_reference_data_write_nothing(db, tmp_path, checkpoint):
    store, launchpad = db
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    spec = parse_spec(tiny_spec(broken), "test", tmp_path)
    with pytest.raises(CheckpointError):
        submit_campaign(spec, store, launchpad)
    reference = tmp_path / "li_only.csv"
    reference.write_text("formula,energy_per_atom\nLi,-1.88\n")
    spec = parse_spec(
        tiny_spec(checkpoint, stability={"reference": str(reference)}), "test", tmp_path
    )
    with pytest.raises(ReferenceDataError, match="Si"):
        submit_campaign(spec, store, launchpad)
    assert _written(store, launchpad) == (0, 0)
