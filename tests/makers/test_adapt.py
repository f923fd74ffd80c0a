"""AdaptMaker run for real with jobflow (tiny base model, CPU, seconds): the adapted
checkpoint goes to the data store and a later job loads it from there."""

from __future__ import annotations

from pathlib import Path

import torch
from jobflow import Flow, JobStore, job, run_locally
from maggma.stores import MemoryStore

from chggen_flows.core.model import ScoreModel, ScoreModelConfig, load_score_model
from chggen_flows.core.model.checkpoint import save_score_model
from chggen_flows.makers.adapt import AdaptDocument, AdaptMaker, checkpoint_setting
from chggen_flows.makers.provenance import file_sha256

HOSTS = Path(__file__).parents[1] / "test_data" / "hosts"
SOURCES = [str(HOSTS / "mp20_templates.csv"), str(HOSTS / "mpts52_templates.csv")]
ELEMENTS = ("Li", "Na", "K", "Cs", "V", "Cr", "Co", "Ni", "Cu", "Zn", "Cd", "In", "Sn", "P", "S")
TINY = {"max_steps": 6, "batch_size": 4, "min_related": 10, "min_val": 3, "lr": 2e-3,
        "warmup_steps": 1, "threads": 1, "exclude_formulas": ["ZnPS3"]}  # fmt: skip


@job
def load_adapted(document: dict, cache_dir: str) -> dict:
    """What a generate job does with the adaptation's output."""
    checkpoint = checkpoint_setting(document, cache_dir)
    model = load_score_model(checkpoint, device="cpu")
    return {"checkpoint": checkpoint, "elements": list(model.elements)}


def _base(path: Path) -> Path:
    torch.manual_seed(0)
    model = ScoreModel(ScoreModelConfig.preset("tiny", elements=ELEMENTS))
    return save_score_model(model, path, training={"sigma_min": 0.005, "sigma_max": 8.0})


def test_adapted_checkpoint_goes_through_the_data_store(tmp_path):
    base = _base(tmp_path / "base.pt")
    adapt = AdaptMaker(
        sources=SOURCES, base=str(base), settings=TINY, device="cpu",
        workdir=str(tmp_path / "run"),
    ).make("camp", "Zn-P-S")  # fmt: skip
    use = load_adapted(adapt.output, str(tmp_path / "cache"))
    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    responses = run_locally(Flow([adapt, use]), store=store, ensure_success=True)
    document = AdaptDocument.model_validate(responses[adapt.uuid][1].output)
    assert document.status == "adapted", document.message
    assert document.result["n_excluded"] == 1 and document.result["steps"] == 6
    # the checkpoint is in the data store, not in the job document
    assert store.additional_stores["data"].count() == 1
    stored = store.query_one({"uuid": adapt.uuid}, load=False)
    assert "content_b64" not in str(stored["output"]["checkpoint"])
    # the consumer got the very file the adaptation wrote
    loaded = responses[use.uuid][1].output
    assert Path(loaded["checkpoint"]).name == f"{document.checkpoint_sha256}.pt"
    assert file_sha256(loaded["checkpoint"]) == file_sha256(document.result["checkpoint"])
    assert loaded["elements"] == list(ELEMENTS)
    assert document.provenance.stage == "adapted"


def test_fallback_stores_no_checkpoint_and_names_the_base(tmp_path):
    base = _base(tmp_path / "base.pt")
    adapt = AdaptMaker(
        sources=SOURCES, base=str(base), settings={**TINY, "min_related": 20}, device="cpu",
        workdir=str(tmp_path / "run"),
    ).make("camp", "Zn-P-S")  # fmt: skip
    use = load_adapted(adapt.output, str(tmp_path / "cache"))
    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    responses = run_locally(Flow([adapt, use]), store=store, ensure_success=True)
    document = AdaptDocument.model_validate(responses[adapt.uuid][1].output)
    assert document.status == "fallback" and "fewer than 20" in document.message
    assert document.checkpoint is None
    assert responses[use.uuid][1].output["checkpoint"] == str(base)
