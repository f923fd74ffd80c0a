"""A campaign through a real SLURM queue: qlaunch -> sbatch -> rlaunch, and its faults.

The worker profile is rendered from the NERSC files in ``launchpad_configs/nersc``
exactly as a user does on Perlmutter (``${CHGGEN_MONGO_URI}`` substituted, as
``envsubst`` would), then adapted *here* to the one-node test cluster: no account,
QOS or constraint, one CPU per task, the machine's Python instead of ``module load``,
and ``gpu`` jobs taken by the CPU worker (no GPU here; they run on the CPU). The
results must equal those of ``chggen run`` on the same spec.

The faults follow each other on one campaign (to keep the time down), each followed by
``chggen resume``: a SLURM job killed at its wall time while a job runs, a job
``scancel``-ed while a job runs, then two SLURM workers queued at once that finish it.
"""

from __future__ import annotations

import os
import string
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml

from chggen_flows.campaign.results import load_candidates
from chggen_flows.campaign.spec import parse_spec
from chggen_flows.campaign.submit import submit_campaign
from chggen_flows.db import EmbeddedServer, get_job_store, get_launchpad, init_database
from chggen_flows.settings import Settings
from tests.campaign.helpers import (
    REPO,
    fw_states,
    start_worker,
    tiny_checkpoint,
    tiny_spec,
    wait_for,
)

NERSC = REPO / "launchpad_configs" / "nersc"
BIN = Path(sys.executable).parent
#: Columns that must be identical between the SLURM run and ``chggen run``.
RESULT_COLUMNS = ["candidate_id", "stage", "valid", "rejected_reason", "energy_per_atom", "e_d"]
CAMPAIGN_TIMEOUT = 420


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("model") / "tiny.pt")


def _server_settings(root: Path) -> tuple[EmbeddedServer, Settings]:
    """A fresh embedded server (authentication on, as by default) and settings for it."""
    server = EmbeddedServer(root / "db")
    info = server.start()
    settings = Settings(mongo_uri=info.uri, data_dir=root / "data", device="cpu")
    init_database(settings)
    return server, settings


def _submit(settings: Settings, checkpoint: Path, workdir: Path) -> str:
    store, launchpad = get_job_store(settings), get_launchpad(settings)
    spec = parse_spec(tiny_spec(checkpoint), "test", workdir)
    return submit_campaign(spec, store, launchpad).campaign


def _results(settings: Settings, campaign: str) -> pd.DataFrame:
    frame = load_candidates(get_job_store(settings), campaign)
    return frame[RESULT_COLUMNS].sort_values("candidate_id").reset_index(drop=True)


@pytest.fixture(scope="module")
def reference(checkpoint, tmp_path_factory):
    """The tiny campaign run by ``chggen run``: (campaign id, results)."""
    root = tmp_path_factory.mktemp("reference")
    server, settings = _server_settings(root)
    try:
        campaign = _submit(settings, checkpoint, root)
        worker = start_worker(
            settings, "--category", "gpu", "--category", "cpu", log=root / "worker.log"
        )
        assert worker.wait(timeout=CAMPAIGN_TIMEOUT) == 0, (root / "worker.log").read_text()
        yield campaign, _results(settings, campaign)
    finally:
        server.stop()


def render_profile(uri: str, config_dir: Path, walltime: str) -> dict:
    """The NERSC CPU worker profile, rendered for the local test cluster.

    Returns the paths of the qadapter, FWorker and LaunchPad files written to
    ``config_dir`` (mode 0700: the LaunchPad and jobflow files hold the password).
    """
    config_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    # As on Perlmutter: envsubst of ${CHGGEN_MONGO_URI} into the LaunchPad and jobflow files.
    for name in ("my_launchpad.yaml", "jobflow.yaml"):
        text = string.Template((NERSC / name).read_text()).safe_substitute(CHGGEN_MONGO_URI=uri)
        target = config_dir / name
        target.write_text(text)
        target.chmod(0o600)
    fworker = yaml.safe_load((NERSC / "my_fworker_cpu.yaml").read_text())
    # No GPU on the test node: this worker also takes the gpu jobs (they run on the CPU).
    fworker.update(name="local-cpu", category=["gpu", "cpu"])
    (config_dir / "my_fworker_cpu.yaml").write_text(yaml.safe_dump(fworker))
    adapter = yaml.safe_load((NERSC / "my_qadapter_cpu.yaml").read_text())
    for key in ("account", "qos", "constraint"):  # the test cluster has none of these
        adapter.pop(key)
    adapter.update(cpus_per_task=1, walltime=walltime, job_name="chggen-test")
    # The template's environment set-up, without `module load` / `source activate`.
    kept = [
        line
        for line in adapter["pre_rocket"].splitlines()
        if not line.startswith(("module ", "source "))
    ]
    env = [
        f"export FW_CONFIG_DIR={config_dir}",
        f"export PATH={BIN}:$PATH",  # bash -l resets PATH from /etc/profile
        f"export PYTHONPATH={os.environ.get('PYTHONPATH', '')}",
        "export CHGGEN_NO_PROGRESS=1",
    ]
    adapter["pre_rocket"] = "\n".join(env + kept)
    # Poll for children every 2 s instead of FireWorks' 60 s between rapidfire loops.
    adapter["rocket_launch"] += " --sleep 2"
    (config_dir / "my_qadapter_cpu.yaml").write_text(yaml.safe_dump(adapter))
    return {
        "q": config_dir / "my_qadapter_cpu.yaml",
        "w": config_dir / "my_fworker_cpu.yaml",
        "l": config_dir / "my_launchpad.yaml",
    }


def qlaunch(slurm, profile: dict, launch_dir: Path, *command: str) -> str:
    """Run FireWorks' ``qlaunch`` (non-reserved) with ``profile``; return its output."""
    launch_dir.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [
            str(BIN / "qlaunch"),
            "-q",
            profile["q"],
            "-w",
            profile["w"],
            "-l",
            profile["l"],
            *command,
        ],
        env=slurm.env,
        cwd=launch_dir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def _slurm_jobs(slurm) -> list[str]:
    return slurm.run(["squeue", "-h", "-o", "%i"]).stdout.split()


def _job_logs(launch_dir: Path) -> str:
    return "\n".join(
        f"--- {p}\n{p.read_text()[-3000:]}" for p in sorted(launch_dir.rglob("chggen-test-*"))
    )


def _running(launchpad, campaign: str) -> list[int]:
    return [fw for fw, state in fw_states(launchpad, campaign).items() if state == "RUNNING"]


def _resume(cli, monkeypatch, settings: Settings, campaign: str) -> str:
    monkeypatch.setenv("CHGGEN_MONGO_URI", settings.mongo_uri.get_secret_value())
    monkeypatch.setenv("CHGGEN_DATA_DIR", str(settings.data_dir))
    result = cli("resume", campaign, "--expiration", "0")
    assert result.exit_code == 0, result.stderr
    return result.stdout


@pytest.mark.timeout(1500)
def test_campaign_through_slurm_with_walltime_scancel_and_parallel_workers(
    slurm, reference, checkpoint, tmp_path, cli, isolated_env, monkeypatch
):
    ref_campaign, ref_results = reference
    server, settings = _server_settings(tmp_path)
    launches = tmp_path / "launches"
    try:
        campaign = _submit(settings, checkpoint, tmp_path)
        assert campaign == ref_campaign  # same spec, same id
        launchpad = get_launchpad(settings)
        uri = settings.mongo_uri.get_secret_value()

        # 1. wall time shorter than the work: SLURM kills the job while a job runs. The
        # tiny jobs take seconds on an idle machine, so the worker is frozen (SIGSTOP) as
        # soon as it has claimed its job: the job then outlasts the wall time on any machine.
        short = render_profile(uri, tmp_path / "fw-short", walltime="00:01:00")
        out = qlaunch(slurm, short, launches, "singleshot")
        (job,) = _slurm_jobs(slurm)
        assert wait_for(lambda: _running(launchpad, campaign), timeout=120, interval=0.05), (
            _job_logs(launches)
        )
        subprocess.run(["pkill", "-STOP", "-f", str(BIN / "rlaunch")], check=True)
        assert slurm.wait_idle(timeout=240), _job_logs(launches)
        assert slurm.jobs()[job] == "TIMEOUT", (slurm.jobs(), out, _job_logs(launches))
        lost = _running(launchpad, campaign)
        assert len(lost) == 1, fw_states(launchpad, campaign)  # the job it was running
        said = _resume(cli, monkeypatch, settings, campaign)
        assert f"1 lost run(s) {lost}" in said
        assert _running(launchpad, campaign) == []

        # 2. scancel of the worker job while a job runs
        normal = render_profile(uri, tmp_path / "fw", walltime="00:20:00")
        qlaunch(slurm, normal, launches, "singleshot")
        (job,) = _slurm_jobs(slurm)
        assert wait_for(lambda: _running(launchpad, campaign), timeout=240), _job_logs(launches)
        slurm.run(["scancel", job])
        assert slurm.wait_idle(timeout=60)
        assert slurm.jobs()[job] == "CANCELLED", slurm.jobs()
        time.sleep(1)
        lost = _running(launchpad, campaign)
        assert len(lost) == 1, fw_states(launchpad, campaign)
        said = _resume(cli, monkeypatch, settings, campaign)
        assert f"1 lost run(s) {lost}" in said

        # 3. two workers queued at once on the same campaign finish it (FireWorks' qlaunch
        # rapidfire would keep the queue fed and never return; two singleshots queue two)
        before = set(slurm.jobs())
        for _ in range(2):
            qlaunch(slurm, normal, launches, "singleshot")
        workers = set(slurm.jobs()) - before
        assert len(workers) == 2, slurm.jobs()
        assert slurm.wait_idle(timeout=CAMPAIGN_TIMEOUT), _job_logs(launches)
        jobs = slurm.jobs()
        assert [jobs[job] for job in workers] == ["COMPLETED", "COMPLETED"], _job_logs(launches)

        # complete: every job not waiting for VASP ran, each exactly once (its last run)
        staged = list(
            launchpad.fireworks.find({"spec.campaign": campaign, "spec.stage": {"$exists": True}})
        )
        assert {fw["state"] for fw in staged} == {"COMPLETED"}, _job_logs(launches)
        counted = Counter(
            launch["fw_id"]
            for launch in launchpad.launches.find(
                {"fw_id": {"$in": [fw["fw_id"] for fw in staged]}, "state": "COMPLETED"}
            )
        )
        assert set(counted.values()) == {1} and len(counted) == len(staged)
        assert _resume(cli, monkeypatch, settings, campaign).startswith(
            f"{campaign}: no lost or failed jobs"
        )
        # identical results to `chggen run`
        pd.testing.assert_frame_equal(_results(settings, campaign), ref_results)
    finally:
        server.stop()


def test_nersc_templates_render_and_pass_sbatch_test_only(slurm, tmp_path):
    """Each NERSC qadapter rendered by FireWorks is a script sbatch accepts, once the
    site-specific lines the test cluster lacks are taken out here (named below)."""
    from fireworks.utilities.fw_serializers import load_object_from_file

    not_here = ("account", "qos", "constraint", "gpus_per_node", "gpus_per_task")
    for path in sorted(NERSC.glob("my_qadapter_*.yaml")):
        adapter = load_object_from_file(str(path))
        script = adapter.get_script_str(str(tmp_path))
        assert script.startswith("#!/bin/bash")
        assert f"#SBATCH --account={adapter['account']}" in script
        assert f"#SBATCH --time={adapter['walltime']}" in script
        assert adapter["rocket_launch"] in script
        for key in not_here:
            adapter.pop(key, None)
        adapter.update(nodes=1, ntasks=1, cpus_per_task=1)
        local = tmp_path / f"{path.stem}.sh"
        local.write_text(adapter.get_script_str(str(tmp_path)))
        result = slurm.run(["sbatch", "--test-only", str(local)], check=False)
        assert result.returncode == 0 and "to start at" in result.stderr, (
            path.name,
            result.stderr,
            local.read_text(),
        )
