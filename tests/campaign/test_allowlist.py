"""A worker runs only jobs of allowed packages; anything else FIZZLES unrun."""

from __future__ import annotations

from pathlib import Path

import pytest

from chggen_flows.campaign.allowlist import (
    JobNotAllowedError,
    check_spec,
    fworker_query,
    job_function,
    refusal_of,
    refusals,
)

REPO = Path(__file__).resolve().parents[2]


def _write_marker(path: str) -> str:
    """A job function outside the allowed packages: leaves a file if it ever runs."""
    Path(path).write_text("ran")
    return path


def _jobflow_fw_spec(function, *args) -> dict:
    """The stored spec of the Firework jobflow makes for ``function(*args)``."""
    from jobflow import job
    from jobflow.managers.fireworks import job_to_firework

    fw = job_to_firework(job(function)(*args), store=None)
    return fw.to_dict()["spec"]


def test_refusals_name_the_function_and_task():
    from jobflow.core.job import store_inputs

    assert refusals(_jobflow_fw_spec(store_inputs, 1)) == []
    spec = _jobflow_fw_spec(_write_marker, "/nonexistent")
    assert job_function(spec) == f"{__name__}._write_marker"
    assert refusals(spec) == [
        f"its function {__name__}._write_marker is outside chggen_flows, atomate2, jobflow"
    ]
    assert refusals(spec, extra=["tests"]) == []  # the user's addition
    script = {"_tasks": [{"_fw_name": "ScriptTask", "script": ["true"]}]}
    assert "task 0 is 'ScriptTask'" in refusals(script)[0]
    smuggled = _jobflow_fw_spec(store_inputs, {"@module": "os", "@class": "system"})
    assert any("names module os" in r for r in refusals(smuggled))
    with pytest.raises(JobNotAllowedError, match=r"refused to run job 7: .*nothing was run"):
        check_spec(script, fw_id=7)


def test_a_real_worker_fizzles_foreign_jobs_and_runs_allowed_ones(db_env, tmp_path, cli):
    db_settings = db_env
    from fireworks import Firework, FWorker, ScriptTask, Workflow
    from jobflow import job
    from jobflow.core.job import store_inputs
    from jobflow.managers.fireworks import job_to_firework

    from chggen_flows.campaign.registry import registry
    from chggen_flows.campaign.resume import resume_campaign
    from chggen_flows.campaign.status import campaign_jobs, campaign_status
    from chggen_flows.campaign.worker import run_worker
    from chggen_flows.db import get_job_store, get_launchpad, init_database

    init_database(db_settings)
    launchpad = get_launchpad(db_settings)
    marker_fn = tmp_path / "function-ran"
    marker_sh = tmp_path / "script-ran"
    campaign = {"campaign": "allowlist-test"}
    foreign = job_to_firework(job(_write_marker)(str(marker_fn)), store=None)
    script = Firework(ScriptTask.from_str(f"touch {marker_sh}"), name="script")
    allowed = job_to_firework(store_inputs(42), store=None)
    for fw in (foreign, script, allowed):
        fw.spec.update(campaign)
        launchpad.add_wf(Workflow([fw]))

    # plain FireWorks workers (launchpad_configs/ FWorker files) never check them out
    query = {**fworker_query(), "spec.campaign": "allowlist-test"}
    matched = launchpad.fireworks.find(query, {"fw_id": 1})
    assert [d["fw_id"] for d in matched] == [allowed.fw_id]
    for path in sorted(REPO.glob("launchpad_configs/*/my_fworker_*.yaml")):
        query = FWorker.from_file(str(path)).query
        assert {k: query[k] for k in fworker_query()} == fworker_query(), path

    report = run_worker(db_settings, campaign="allowlist-test", launch_dir=tmp_path / "l")

    assert not marker_fn.exists() and not marker_sh.exists()  # nothing foreign ran
    states = {fw["name"]: fw["state"] for fw in campaign_jobs(launchpad, "allowlist-test")}
    assert states == {foreign.name: "FIZZLED", "script": "FIZZLED", allowed.name: "COMPLETED"}
    assert report.completed == 1 and len(report.refused) == 2
    for fw_id in report.refused:
        message = refusal_of(launchpad.fireworks.find_one({"fw_id": fw_id}))
        assert message is not None and "nothing was run" in message

    # status lists them, resume never re-runs them; a job added later is flagged unrun
    store = get_job_store(db_settings)
    registry(store).insert_one({"campaign": "allowlist-test", "n_candidates": 0})
    late = job_to_firework(job(_write_marker)(str(marker_fn)), store=None)
    late.spec.update(campaign)
    launchpad.add_wf(Workflow([late]))
    status = campaign_status(store, launchpad, "allowlist-test")
    assert sorted(r.fw_id for r in status.refused) == sorted([*report.refused, late.fw_id])
    assert status.failures == []
    assert any("a worker will refuse it" in r.reason for r in status.refused)
    plan = resume_campaign(store, launchpad, "allowlist-test")
    assert plan.rerun == [] and plan.refused == sorted(report.refused)
    assert plan.would_refuse == [late.fw_id]
    assert {fw["fw_id"]: fw["state"] for fw in campaign_jobs(launchpad, "allowlist-test")}[
        report.refused[0]
    ] == "FIZZLED"
    # the CLI says so too
    shown = " ".join(cli("status", "allowlist-test").stdout.split())
    assert "Refused jobs" in shown and "a worker will refuse it" in shown
    said = cli("resume", "allowlist-test", "--expiration", "0")
    assert said.exit_code == 0 and "not re-running 3 job(s) naming code outside" in said.stdout
    # with the package allowed by the user, status no longer flags the unrun job
    status = campaign_status(store, launchpad, "allowlist-test", [__name__.split(".")[0]])
    assert late.fw_id not in [r.fw_id for r in status.refused]
