"""Reliability of real campaigns: real SecantusDB server, real worker processes.

Every test runs the tiny 4-candidate Li-Si campaign (2 batches, 14 jobs + the DFT jobs
added by the gate) with an untrained tiny score model and 3-step relaxations, so the
pipeline's plumbing is exercised end to end in about a minute per test.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

import pytest
from pydantic import SecretStr

from chggen_flows.campaign.results import load_candidates, load_structures
from chggen_flows.campaign.resume import resume_campaign
from chggen_flows.campaign.spec import parse_spec
from chggen_flows.campaign.status import campaign_status
from chggen_flows.campaign.submit import submit_campaign
from chggen_flows.db import EmbeddedServer, get_job_store, get_launchpad, init_database
from chggen_flows.makers.schemas import STAGES
from chggen_flows.settings import Settings
from tests.campaign.helpers import (
    fw_states,
    stage_documents,
    start_worker,
    tiny_checkpoint,
    tiny_spec,
    wait_for,
)

pytestmark = pytest.mark.slow

EXPECTED_IDS = {
    "Li3Si-fu2-L000-S000",
    "Li3Si-fu2-L000-S001",
    "Li2Si-fu2-L000-S000",
    "Li2Si-fu2-L000-S001",
}
WORKER = ("--category", "gpu", "--category", "cpu")
WORKER_TIMEOUT = 400


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("model") / "tiny.pt")


def _submit(settings: Settings, checkpoint, tmp_path):
    init_database(settings)
    store, launchpad = get_job_store(settings), get_launchpad(settings)
    spec = parse_spec(tiny_spec(checkpoint), "test", tmp_path)
    return store, launchpad, submit_campaign(spec, store, launchpad).campaign


def _running_job(launchpad, campaign: str, stages: tuple[str, ...]) -> bool:
    return (
        launchpad.fireworks.count_documents(
            {"spec.campaign": campaign, "state": "RUNNING", "spec.stage": {"$in": list(stages)}}
        )
        > 0
    )


def _assert_complete_without_duplicates(store, launchpad, campaign: str) -> None:
    """Every submitted job completed exactly once; every candidate is there exactly once."""
    staged = list(
        launchpad.fireworks.find({"spec.campaign": campaign, "spec.stage": {"$exists": True}})
    )
    assert len(staged) == 14
    assert {fw["state"] for fw in staged} == {"COMPLETED"}
    # one StageDocument per (stage, batch): no stage ran twice for a batch
    docs = stage_documents(store, campaign)
    keys = Counter((d["output"]["stage"], d["output"]["batch_id"]) for d in docs)
    assert set(keys.values()) == {1}
    assert len(keys) == 2 * 6 + 1
    frame = load_candidates(store, campaign)
    assert set(frame.candidate_id) == EXPECTED_IDS
    assert frame.candidate_id.is_unique
    for row in frame.itertuples():
        # a candidate either went all the way or says why it stopped
        assert row.stage in ("ehull", "dft") or (not row.valid and row.rejected_reason)


@pytest.mark.timeout(600)
def test_end_to_end_with_two_parallel_workers(db_settings, checkpoint, tmp_path):
    store, launchpad, campaign = _submit(db_settings, checkpoint, tmp_path)
    workers = [
        start_worker(db_settings, *WORKER, log=tmp_path / f"worker{i}.log") for i in range(2)
    ]
    codes = [w.wait(timeout=WORKER_TIMEOUT) for w in workers]
    assert codes == [0, 0], [(tmp_path / f"worker{i}.log").read_text()[-2000:] for i in range(2)]

    _assert_complete_without_duplicates(store, launchpad, campaign)
    # two workers in parallel never ran the same job twice: one launch per job
    fw_ids = [fw for fw, state in fw_states(launchpad, campaign).items() if state == "COMPLETED"]
    launches = Counter(
        launch["fw_id"]
        for launch in launchpad.launches.find({"fw_id": {"$in": fw_ids}}, {"fw_id": 1})
    )
    assert set(launches.values()) == {1}

    frame = load_candidates(store, campaign)
    assert STAGES.index("ehull") <= min(STAGES.index(s) for s in frame[frame.valid].stage)
    assert frame.e_d.notna().sum() == frame.valid.sum()
    assert (frame.e_d_reference.dropna().str.contains("li_si_reference.csv")).all()
    # the gate sent the two lowest-E_d unique candidates to r2SCAN: VASP jobs now wait
    # for a VASP worker, routed by the gate and not by its own cpu category
    gated = frame[frame.dft_state == "WAITING"]
    assert len(gated) == 2 and set(gated.stage) == {"dft"}
    added = list(
        launchpad.fireworks.find({"spec.campaign": campaign, "spec.stage": {"$exists": False}})
    )
    categories = Counter(fw["spec"].get("_category") for fw in added)
    assert categories["vasp"] >= 2 and "cpu" not in categories and "gpu" not in categories
    assert {fw["state"] for fw in added} <= {"READY", "WAITING"}
    status = campaign_status(store, launchpad, campaign)
    assert status.jobs_by_category["vasp"].get("COMPLETED", 0) == 0
    assert not status.failures

    structures = load_structures(store, campaign, frame.candidate_id)
    assert set(structures) == EXPECTED_IDS
    for row in frame.itertuples():
        assert structures[row.candidate_id].composition.reduced_formula == row.reduced_formula
    generated = load_structures(store, campaign, ["Li3Si-fu2-L000-S000"], stage="generated")
    assert len(generated["Li3Si-fu2-L000-S000"]) == 8


@pytest.mark.timeout(600)
def test_killed_worker_then_resume_completes(db_env, checkpoint, tmp_path, cli):
    store, launchpad, campaign = _submit(db_env, checkpoint, tmp_path)
    worker = start_worker(db_env, *WORKER, log=tmp_path / "killed.log")
    assert wait_for(lambda: _running_job(launchpad, campaign, ("relaxed",)), timeout=300)
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=30)
    lost = [fw for fw, state in fw_states(launchpad, campaign).items() if state == "RUNNING"]
    assert len(lost) == 1
    # the kill can land while the worker holds its workflow's write lock (seen in CI):
    # leave the lock behind, as such a kill does, so resume must cope with it every time
    launchpad.workflows.update_one({"nodes": lost[0]}, {"$set": {"locked": True}})

    dry = cli("resume", campaign, "--dry-run", "--expiration", "0")
    assert dry.exit_code == 0, dry.stderr
    assert "would re-run 1 job(s)" in dry.stdout
    assert fw_states(launchpad, campaign)[lost[0]] == "RUNNING"  # dry run changed nothing

    done = cli("resume", campaign, "--expiration", "0")
    assert done.exit_code == 0, done.stderr
    assert f"1 lost run(s) [{lost[0]}]" in done.stdout
    assert fw_states(launchpad, campaign)[lost[0]] == "READY"

    worker = start_worker(db_env, *WORKER, log=tmp_path / "resumed.log")
    assert worker.wait(timeout=WORKER_TIMEOUT) == 0
    _assert_complete_without_duplicates(store, launchpad, campaign)
    again = cli("resume", campaign, "--expiration", "0")
    assert "no lost or failed jobs" in again.stdout


@pytest.mark.timeout(600)
def test_database_killed_mid_campaign_then_resume(checkpoint, tmp_path):
    server = EmbeddedServer(tmp_path / "db")
    info = server.start()
    # fail fast once the server is gone (pymongo waits 30 s per operation by default)
    uri = f"{info.uri}&serverSelectionTimeoutMS=4000&connectTimeoutMS=4000"
    settings = Settings(
        mongo_uri=uri,
        database="killed",
        launchpad_database="killed_fw",
        data_dir=tmp_path / "data",
        device="cpu",
    )
    try:
        store, launchpad, campaign = _submit(settings, checkpoint, tmp_path)
        log = tmp_path / "worker.log"
        worker = start_worker(settings, *WORKER, log=log)
        assert wait_for(lambda: _running_job(launchpad, campaign, ("relaxed",)), timeout=300)
        os.kill(info.pid, signal.SIGKILL)
        code = worker.wait(timeout=300)
        assert code == 2, log.read_text()[-3000:]
        assert "lost the database" in log.read_text()

        # Same storage; a new port (the old one lingers in TIME_WAIT): workflows hold no
        # connection string, so only the settings change.
        info = server.start()
        settings = settings.model_copy(update={"mongo_uri": SecretStr(info.uri)})
        store, launchpad = get_job_store(settings), get_launchpad(settings)
        plan = resume_campaign(store, launchpad, campaign, expiration_secs=0)
        assert plan.rerun
        worker = start_worker(settings, *WORKER, log=tmp_path / "after.log")
        assert worker.wait(timeout=WORKER_TIMEOUT) == 0
        _assert_complete_without_duplicates(store, launchpad, campaign)
    finally:
        server.stop()
