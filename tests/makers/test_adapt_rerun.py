"""A campaign's adapt job re-run (``chggen resume`` after a failure) does not start over:
its default folder is the campaign's, under the data directory, not the launch folder,
so a finished run is reused and an interrupted one resumed (tiny model, CPU, seconds)."""

from __future__ import annotations

import json
import shutil

from jobflow import JobStore, run_locally
from maggma.stores import MemoryStore

from chggen_flows.core.model.adapt import RESULT, RUN
from chggen_flows.makers.adapt import AdaptDocument, AdaptMaker, default_workdir
from tests.campaign.helpers import tiny_checkpoint
from tests.campaign.test_adapt_campaign import CIFS, TINY_ADAPT


def _run(maker: AdaptMaker) -> AdaptDocument:
    job = maker.make("camp", "Li-Si")
    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    responses = run_locally(job, store=store, ensure_success=True)
    return AdaptDocument.model_validate(responses[job.uuid][1].output)


def test_a_rerun_adapt_job_reuses_or_resumes_its_run(tmp_path, monkeypatch):
    monkeypatch.setenv("CHGGEN_DATA_DIR", str(tmp_path / "data"))
    source = tmp_path / "known"
    source.mkdir()
    for cif in CIFS:
        shutil.copy(cif, source / cif.name)
    base = tiny_checkpoint(tmp_path / "tiny.pt")
    maker = AdaptMaker(sources=[str(source)], base=str(base), settings=TINY_ADAPT, device="cpu")
    folder = default_workdir("camp", "Li-Si")
    assert folder == tmp_path / "data" / "adapt" / "camp" / "Li-Si"

    monkeypatch.chdir(tmp_path)  # launch folders differ between runs; the run folder not
    first = _run(maker)
    assert first.status == "adapted", first.message
    assert (folder / RESULT).is_file()

    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    again = _run(maker)  # finished before: the stored result, not a second training
    assert again.result == first.result  # same wall time and steps: read, not retrained
    assert again.checkpoint_sha256 == first.checkpoint_sha256

    # interrupted after its last training checkpoint, before writing its result
    (folder / RESULT).unlink()
    history = json.loads((folder / RUN / "history.json").read_text())
    resumed = _run(maker)
    assert resumed.status == "adapted"
    assert resumed.result["steps"] == first.result["steps"]  # no step beyond the budget
    after = json.loads((folder / RUN / "history.json").read_text())
    assert after == history  # the finished epochs (their times too) were not trained again
