"""``chggen db migrate``: stored ``makers.*`` names of old campaigns, rewritten once.

Campaigns submitted before the makers became ``chggen_flows.makers`` are made here from
a campaign submitted now, by renaming its modules back with plain text replacement of
the stored JSON (what the old code wrote: the same modules under the old package name).
"""

from __future__ import annotations

import re

import gridfs
import pytest
from bson import json_util
from monty.json import MontyDecoder
from pymongo import MongoClient

from chggen_flows.campaign.spec import parse_spec
from chggen_flows.campaign.submit import submit_campaign
from chggen_flows.db import get_job_store, get_launchpad, init_database
from chggen_flows.db.migrate import (
    check_module_names,
    current_module,
    migrate_module_names,
    rename_modules,
)
from chggen_flows.db.stores import DATA_COLLECTION, DATA_STORE_NAME, OUTPUTS_COLLECTION
from chggen_flows.makers.schemas import CandidateSeed
from tests.campaign.helpers import li3si_seeds, tiny_checkpoint, tiny_spec

CURRENT = '"@module": "chggen_flows.makers'
LEGACY = '"@module": "makers'
LEGACY_NAME = re.compile(r'"@module": "makers[."]')


def test_current_module_renames_only_the_legacy_package():
    assert current_module("makers.relax") == "chggen_flows.makers.relax"
    assert current_module("makers") == "chggen_flows.makers"
    for name in ("chggen_flows.makers.relax", "makers_extra.x", "jobflow.core.job", "mymakers"):
        assert current_module(name) is None


def test_rename_modules_walks_nested_documents_and_counts():
    job = {
        "@module": "jobflow.core.job",
        "function": {
            "@module": "makers.relax",
            "@callable": "RelaxMaker.make",
            "@bound": {"@module": "makers.relax", "@class": "RelaxMaker", "name": "relax"},
        },
        "function_args": [[{"@module": "makers.schemas", "@class": "CandidateSeed"}], 3],
        "name": "makers.relax",  # a plain value, not a module reference: kept
    }
    renamed, count = rename_modules(job)
    assert count == 3
    assert renamed["function"]["@module"] == "chggen_flows.makers.relax"
    assert renamed["function"]["@bound"]["@module"] == "chggen_flows.makers.relax"
    assert renamed["function_args"][0][0]["@module"] == "chggen_flows.makers.schemas"
    assert renamed["@module"] == "jobflow.core.job" and renamed["name"] == "makers.relax"
    assert job["function"]["@module"] == "makers.relax"  # the input is not modified
    assert rename_modules(renamed) == (renamed, 0)


def _legacy_names(db) -> int:
    """Legacy ``@module`` names in every document and GridFS blob of a database."""
    total = 0
    for name in db.list_collection_names():
        if name.endswith(".chunks"):
            continue
        if name.endswith(".files"):
            bucket = gridfs.GridFSBucket(db, bucket_name=name[: -len(".files")])
            for entry in db[name].find({}):
                total += len(
                    LEGACY_NAME.findall(bucket.open_download_stream(entry["_id"]).read().decode())
                )
        else:
            total += sum(len(LEGACY_NAME.findall(json_util.dumps(d))) for d in db[name].find({}))
    return total


def make_legacy(db) -> int:
    """Rename ``chggen_flows.makers`` back to ``makers`` in every document of ``db`` (as
    the campaign's documents were before the rename); returns how many names."""
    for name in db.list_collection_names():
        if name.endswith(".chunks"):
            continue
        if name.endswith(".files"):
            bucket = gridfs.GridFSBucket(db, bucket_name=name[: -len(".files")])
            for entry in list(db[name].find({})):
                text = bucket.open_download_stream(entry["_id"]).read().decode()
                if CURRENT in text:
                    bucket.delete(entry["_id"])
                    bucket.upload_from_stream_with_id(
                        entry["_id"],
                        "",
                        text.replace(CURRENT, LEGACY).encode(),
                        metadata=entry.get("metadata"),
                    )
        else:
            for document in db[name].find({}):
                text = json_util.dumps(document)
                if CURRENT in text:
                    db[name].replace_one(
                        {"_id": document["_id"]}, json_util.loads(text.replace(CURRENT, LEGACY))
                    )
    return _legacy_names(db)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("model") / "tiny.pt")


@pytest.fixture
def legacy_campaign(db_env, checkpoint, tmp_path):
    """A submitted tiny campaign plus one job output with a GridFS blob, all under the
    legacy names; returns (settings, campaign, legacy names per database)."""
    settings = db_env
    init_database(settings)
    store, launchpad = get_job_store(settings), get_launchpad(settings)
    spec = parse_spec(tiny_spec(checkpoint), "test", tmp_path)
    campaign = submit_campaign(spec, store, launchpad).campaign
    seeds = li3si_seeds(2, lattice_seed=1, first_seed=10)
    store.connect()
    output = {"uuid": "old-job", "index": 1, "output": {"seeds": seeds, "first": seeds[0]}}
    store.update(output, key=["uuid", "index"], save={DATA_STORE_NAME: ["seeds"]})
    store.close()
    client: MongoClient = MongoClient(settings.mongo_uri.get_secret_value())
    legacy = {
        name: make_legacy(client[name]) for name in (settings.database, settings.launchpad_database)
    }
    client.close()
    return settings, campaign, legacy


def test_migrate_dry_run_counts_then_rewrites_once(legacy_campaign, cli):
    settings, campaign, legacy = legacy_campaign
    # the JobStore's output document, its GridFS blob and every FireWork's job
    assert legacy[settings.database] >= 3 and legacy[settings.launchpad_database] >= 14
    client: MongoClient = MongoClient(settings.mongo_uri.get_secret_value())
    jobs, lpad = client[settings.database], client[settings.launchpad_database]

    # a worker refuses the legacy jobs (they would load with a dict as their function)
    refused = cli("run", "--category", "cpu", "--max-jobs", "1")
    assert refused.exit_code == 2, refused.stdout + refused.stderr
    assert "14 FireWorks name their jobs by the module makers.*" in refused.stderr
    assert "chggen db migrate" in refused.stderr
    assert lpad["launches"].count_documents({}) == 0

    dry = cli("db", "migrate", "--dry-run")
    assert dry.exit_code == 0, dry.stdout + dry.stderr
    assert f"{settings.launchpad_database}.fireworks: 14 documents" in dry.stdout
    assert f"{settings.database}.{OUTPUTS_COLLECTION}: 1 documents" in dry.stdout
    assert f"{settings.database}.{DATA_COLLECTION}.files: 1 documents" in dry.stdout
    assert "nothing written" in dry.stdout
    assert _legacy_names(jobs) == legacy[settings.database]
    assert _legacy_names(lpad) == legacy[settings.launchpad_database]

    counts = migrate_module_names(settings)
    assert sum(c.names for c in counts) == sum(legacy.values())
    assert _legacy_names(jobs) == _legacy_names(lpad) == 0
    assert jobs[f"{DATA_COLLECTION}.files"].count_documents({}) == 1  # replaced, not doubled
    check_module_names(lpad["fireworks"])  # what the worker checks: no error now

    again = cli("db", "migrate")
    assert again.exit_code == 0 and "nothing to migrate" in again.stdout
    client.close()

    # the jobs load as Makers of chggen_flows.makers, the outputs as its documents
    launchpad = get_launchpad(settings)
    for fw in launchpad.fireworks.find({"spec.campaign": campaign}, {"fw_id": 1}):
        job = launchpad.get_fw_by_id(fw["fw_id"]).tasks[0]["job"]
        maker = job.function.__self__
        assert type(maker).__module__.startswith("chggen_flows.makers."), type(maker)
    store = get_job_store(settings)
    store.connect()
    # as a job reading it through an OutputReference decodes it
    output = MontyDecoder().process_decoded(store.get_output("old-job", load=True))
    store.close()
    assert isinstance(output["first"], CandidateSeed)
    assert [seed.seed for seed in output["seeds"]] == [10, 11]
    assert all(isinstance(seed, CandidateSeed) for seed in output["seeds"])


def test_migrate_on_a_database_without_legacy_names_writes_nothing(db_env, cli):
    init_database(db_env)
    result = cli("db", "migrate")
    assert result.exit_code == 0 and "nothing to migrate" in result.stdout
    assert migrate_module_names(db_env) == []


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_half_run_old_campaign_is_refused_then_migrated_and_completed(
    db_settings, checkpoint, tmp_path
):
    """A campaign whose first jobs ran under the old names: its outputs (stage documents,
    GridFS structures) feed the later jobs, run by real worker processes after migrate."""
    from chggen_flows.campaign.results import load_candidates
    from tests.campaign.helpers import fw_states, start_worker
    from tests.campaign.test_reliability import (
        EXPECTED_IDS,
        WORKER,
        WORKER_TIMEOUT,
        _assert_complete_without_duplicates,
    )

    init_database(db_settings)
    store, launchpad = get_job_store(db_settings), get_launchpad(db_settings)
    spec = parse_spec(tiny_spec(checkpoint), "test", tmp_path)
    campaign = submit_campaign(spec, store, launchpad).campaign
    log = tmp_path / "worker.log"
    first = start_worker(db_settings, *WORKER, "--max-jobs", "4", log=log)
    assert first.wait(timeout=WORKER_TIMEOUT) == 0, log.read_text()[-2000:]
    done = [fw for fw, state in fw_states(launchpad, campaign).items() if state == "COMPLETED"]
    assert len(done) == 4

    client: MongoClient = MongoClient(db_settings.mongo_uri.get_secret_value())
    jobs = client[db_settings.database]
    assert make_legacy(jobs) > 0 and make_legacy(client[db_settings.launchpad_database]) > 0
    assert jobs[OUTPUTS_COLLECTION].count_documents({"output.@module": "makers.schemas"}) == 4

    refused = start_worker(db_settings, *WORKER, log=log)
    assert refused.wait(timeout=WORKER_TIMEOUT) == 2, log.read_text()[-2000:]
    assert "chggen db migrate" in log.read_text()
    assert sorted(
        fw for fw, s in fw_states(launchpad, campaign).items() if s == "COMPLETED"
    ) == sorted(done)

    assert sum(count.documents for count in migrate_module_names(db_settings)) > 0
    client.close()
    last = start_worker(db_settings, *WORKER, log=log)
    assert last.wait(timeout=WORKER_TIMEOUT) == 0, log.read_text()[-2000:]
    _assert_complete_without_duplicates(store, launchpad, campaign)
    assert set(load_candidates(store, campaign).candidate_id) == EXPECTED_IDS
