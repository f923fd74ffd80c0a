"""``chggen run``: a local worker that only takes jobs of its categories."""

from __future__ import annotations

import pytest

from chggen_flows.db import get_launchpad
from tests.campaign.helpers import fw_states, tiny_checkpoint, tiny_spec, write_spec


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("model") / "tiny.pt")


def test_worker_runs_only_its_category_and_stops_at_max_jobs(cli, db_env, checkpoint, tmp_path):
    submitted = cli("campaign", "submit", write_spec(tmp_path, tiny_spec(checkpoint)))
    campaign = submitted.stdout.split("submitted ")[1].split()[0]
    launchpad = get_launchpad(db_env)

    # only the generation jobs (gpu) are READY: a cpu worker finds nothing to do
    res = cli("run", "--category", "cpu")
    assert res.exit_code == 0, res.stderr
    assert "0 job(s) completed" in res.stdout
    assert "COMPLETED" not in fw_states(launchpad, campaign).values()

    res = cli("run", "--category", "gpu", "--max-jobs", "1")
    assert res.exit_code == 0, res.stderr
    assert "1 job(s) completed, 0 failed" in res.stdout
    done = [fw for fw in launchpad.fireworks.find({"state": "COMPLETED"})]
    assert len(done) == 1 and done[0]["spec"]["_category"] == "gpu"
    assert done[0]["spec"]["stage"] == "generated"
    # its child (a cpu relaxation) is now READY, the other batch's generation still READY
    ready = {fw["spec"]["stage"] for fw in launchpad.fireworks.find({"state": "READY"})}
    assert ready == {"generated", "relaxed"}


def test_unknown_category_exits_2(cli, db_env):
    res = cli("run", "--category", "quantum")
    assert res.exit_code == 2 and "unknown worker category" in res.stderr


def test_help(cli):
    res = cli("run", "--help")
    assert res.exit_code == 0 and "--max-jobs" in res.stdout and "--category" in res.stdout


@pytest.fixture
def no_vasp(monkeypatch):
    """A machine without VASP: atomate2's VASP_CMD not on PATH, no POTCAR directory."""
    from atomate2 import SETTINGS as ATOMATE2_SETTINGS
    from pymatgen.core import SETTINGS as PMG_SETTINGS

    monkeypatch.setattr(ATOMATE2_SETTINGS, "VASP_CMD", "vasp_std_not_installed")
    monkeypatch.delitem(PMG_SETTINGS, "PMG_VASP_PSP_DIR", raising=False)


def _add_script_fw(launchpad, campaign: str, category: str | None) -> int:
    """A trivial job of the category: jobflow's own ``store_inputs`` (a chggen worker
    refuses FireWorks' ScriptTask, see chggen_flows.campaign.allowlist)."""
    from jobflow.core.job import store_inputs
    from jobflow.managers.fireworks import job_to_firework

    fw = job_to_firework(store_inputs(True), store=None)
    fw.spec.update({"campaign": campaign, **({"_category": category} if category else {})})
    fw.name = f"{category}-job"
    return next(iter(launchpad.add_wf(fw).values()))


def test_default_worker_skips_vasp_without_vasp_and_says_so(cli, db_env, no_vasp):
    from chggen_flows.db import init_database

    init_database(db_env)
    launchpad = get_launchpad(db_env)
    ids = {c: _add_script_fw(launchpad, "vasp-skip", c) for c in ("vasp", "cpu", None)}
    res = cli("run", "--campaign", "vasp-skip")
    assert res.exit_code == 0, res.stderr
    out = " ".join(res.stdout.split())
    assert "not taking vasp jobs: no VASP_CMD/POTCARs configured" in out
    assert "vasp_std_not_installed" in out and "PMG_VASP_PSP_DIR" in out
    assert "2 job(s) completed, 0 failed" in out
    state = {c: launchpad.get_fw_by_id(i).state for c, i in ids.items()}
    assert state == {"vasp": "READY", "cpu": "COMPLETED", None: "COMPLETED"}


def test_explicit_vasp_without_vasp_exits_2_with_a_hint(cli, db_env, no_vasp):
    res = cli("run", "--category", "vasp")
    assert res.exit_code == 2
    err = " ".join(res.stderr.split())
    assert "cannot take vasp jobs" in err and "ATOMATE2_VASP_CMD" in err
    assert "PMG_VASP_PSP_DIR" in err


def test_vasp_counts_as_configured_with_a_command_on_path_and_potcars(
    monkeypatch, tmp_path, no_vasp
):
    from atomate2 import SETTINGS as ATOMATE2_SETTINGS
    from pymatgen.core import SETTINGS as PMG_SETTINGS

    from chggen_flows.campaign.worker import plan_categories, vasp_problems

    assert plan_categories([]).exclude == ["vasp"]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("srun", "vasp_std"):
        (bin_dir / name).write_text("#!/bin/sh\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")
    monkeypatch.setattr(ATOMATE2_SETTINGS, "VASP_CMD", "srun -n 4 vasp_gam")
    assert vasp_problems() == [
        "VASP_CMD 'srun -n 4 vasp_gam': vasp_gam not found on PATH",
        "PMG_VASP_PSP_DIR (POTCARs) is not set",
    ]
    monkeypatch.setattr(ATOMATE2_SETTINGS, "VASP_CMD", "srun -n 4 vasp_std")
    monkeypatch.setitem(PMG_SETTINGS, "PMG_VASP_PSP_DIR", str(tmp_path))
    assert vasp_problems() == []
    plan = plan_categories([])
    assert plan.categories == [] and plan.exclude == []
    assert plan_categories(["vasp"]).categories == ["vasp"]


def test_gpu_jobs_without_cuda_run_on_the_cpu_and_it_is_said(monkeypatch, no_vasp):
    from chggen_flows.campaign import worker

    monkeypatch.setattr(worker, "cuda_available", lambda: False)
    assert "no CUDA GPU visible: gpu jobs run on the CPU" in worker.plan_categories(["gpu"]).notes
    assert worker.plan_categories(["cpu"]).notes == []
    monkeypatch.setattr(worker, "cuda_available", lambda: True)
    assert worker.plan_categories(["gpu"]).notes == []


def test_gpu_worker_envs_bind_one_gpu_each():
    from chggen_flows.campaign.worker import gpu_worker_count, gpu_worker_envs, visible_gpus
    from chggen_flows.errors import InputError

    base = {"PATH": "/bin", "CHGGEN_MONGO_URI": "mongodb://h/"}
    envs = gpu_worker_envs(4, base, threads=None)
    assert [e["CUDA_VISIBLE_DEVICES"] for e in envs] == ["0", "1", "2", "3"]
    assert all(e["PATH"] == "/bin" and e["CHGGEN_MONGO_URI"] == "mongodb://h/" for e in envs)
    assert all(1 <= int(e["CHGGEN_THREADS"]) <= 8 for e in envs)
    # a threads setting of the user is left to the children's own settings
    assert "CHGGEN_THREADS" not in gpu_worker_envs(2, base, threads=4)[0]
    # SLURM (or the user) chose the GPUs: each child gets one of those, UUIDs too
    slurm = {**base, "CUDA_VISIBLE_DEVICES": "4,5,GPU-ab12,7"}
    assert visible_gpus(slurm) == ["4", "5", "GPU-ab12", "7"]
    assert gpu_worker_count("auto", slurm) == 4
    assert [e["CUDA_VISIBLE_DEVICES"] for e in gpu_worker_envs(3, slurm)] == ["4", "5", "GPU-ab12"]
    with pytest.raises(InputError, match="lists 4 GPU"):
        gpu_worker_envs(8, slurm)
    assert gpu_worker_count("auto", {"CUDA_VISIBLE_DEVICES": ""}) == 1
    assert gpu_worker_count("auto", {"CUDA_VISIBLE_DEVICES": "0,-1,1"}) == 1
    assert gpu_worker_count("2", base) == 2
    for bad in ("0", "-1", "four"):
        with pytest.raises(InputError, match="not a positive number"):
            gpu_worker_count(bad, base)


def test_gpus_per_node_starts_one_bound_child_per_gpu(cli, db_env, monkeypatch, no_vasp):
    from chggen_flows.campaign import worker

    started: list[tuple[list[str], dict[str, str]]] = []

    def fake_run(argvs, envs):
        started.extend(zip(argvs, envs, strict=True))
        return [0] * len(argvs)

    monkeypatch.setattr(worker, "run_gpu_workers", fake_run)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    res = cli("run", "-c", "gpu", "--gpus-per-node", "auto", "--campaign", "x", "-n", "3")
    assert res.exit_code == 0, res.stderr
    assert "2 GPU workers done" in res.stdout
    assert [env["CUDA_VISIBLE_DEVICES"] for _, env in started] == ["2", "3"]
    argv, env = started[0]
    assert argv[:8] == [
        "run",
        "--category",
        "gpu",
        "--max-jobs",
        "3",
        "--campaign",
        "x",
        "--worker-label",
    ]
    assert env["CHGGEN_MONGO_URI"] == db_env.mongo_uri.get_secret_value()

    monkeypatch.setattr(worker, "run_gpu_workers", lambda argvs, envs: [0, 3])
    res = cli("run", "-c", "gpu", "--gpus-per-node", "2")
    assert res.exit_code == 3 and "1 exited with an error" in res.stdout


def test_gpu_children_run_the_chggen_entry_point():
    import os

    from chggen_flows.campaign.worker import run_gpu_workers

    envs = [{**os.environ, "CUDA_VISIBLE_DEVICES": str(i)} for i in range(2)]
    assert run_gpu_workers([["--version"], ["--bogus-option"]], envs) == [0, 2]


def test_worker_library_settings_are_set_for_the_session_and_restored():
    import jobflow
    from fireworks.core import rocket
    from maggma.stores import MemoryStore

    from chggen_flows.campaign.worker import PING_SECONDS, worker_library_settings

    before = jobflow.SETTINGS.JOB_STORE, rocket.PING_TIME_SECS
    store = jobflow.JobStore(MemoryStore())
    with worker_library_settings(store):
        assert jobflow.SETTINGS.JOB_STORE is store and rocket.PING_TIME_SECS == PING_SECONDS
    after = jobflow.SETTINGS.JOB_STORE, rocket.PING_TIME_SECS
    assert after == before
