"""The shipped FireWorks/jobflow configs load with the real FireWorks and jobflow classes."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
import yaml

CONFIGS = Path(__file__).resolve().parents[2] / "launchpad_configs"
URI = "mongodb://user:secret@db.example.org:27017/?authSource=admin"


def _load(path: Path) -> dict:
    """The YAML with ${CHGGEN_MONGO_URI} filled in, as `envsubst` does."""
    return yaml.safe_load(string.Template(path.read_text()).safe_substitute(CHGGEN_MONGO_URI=URI))


@pytest.mark.parametrize("site", ["nersc", "laptop"])
def test_configs_are_complete_and_load(site):
    from fireworks import FWorker, LaunchPad
    from fireworks.user_objects.queue_adapters.common_adapter import CommonAdapter
    from jobflow import JobStore

    folder = CONFIGS / site
    launchpad = LaunchPad.from_dict(_load(folder / "my_launchpad.yaml"))
    assert launchpad.host == URI and launchpad.uri_mode
    assert launchpad.name == "chggen_fireworks"
    for category in ("gpu", "cpu", "vasp"):
        assert FWorker.from_dict(_load(folder / f"my_fworker_{category}.yaml")).category == category
        adapter = CommonAdapter.from_dict(_load(folder / f"my_qadapter_{category}.yaml"))
        assert adapter.q_type == "SLURM"
        assert f"my_fworker_{category}.yaml" in adapter["rocket_launch"]
        script = adapter.get_script_str(str(folder))
        assert "#SBATCH --job-name=chggen" in script
    store = JobStore.from_dict_spec(_load(folder / "jobflow.yaml")["JOB_STORE"])
    assert "data" in store.additional_stores
    # the URI is never written into the files themselves
    assert all("secret" not in p.read_text() for p in folder.iterdir())


def test_nersc_templates_route_to_gpu_and_cpu_nodes():
    from fireworks.user_objects.queue_adapters.common_adapter import CommonAdapter

    gpu = CommonAdapter.from_dict(_load(CONFIGS / "nersc" / "my_qadapter_gpu.yaml"))
    script = gpu.get_script_str(".")
    assert "#SBATCH --constraint=gpu" in script and "#SBATCH --gpus-per-node=4" in script
    assert "#SBATCH --account=" in script and "#SBATCH --qos=regular" in script
    # four GPUs, four workers: one rlaunch per task, each task bound to one GPU
    assert "#SBATCH --ntasks=4" in script
    assert "srun --ntasks 4 --cpus-per-task 32 --gpus-per-task 1 rlaunch" in script
    cpu = CommonAdapter.from_dict(_load(CONFIGS / "nersc" / "my_qadapter_cpu.yaml"))
    assert "#SBATCH --constraint=cpu" in cpu.get_script_str(".")
    vasp = CommonAdapter.from_dict(_load(CONFIGS / "nersc" / "my_qadapter_vasp.yaml"))
    assert "module load vasp" in vasp.get_script_str(".")
