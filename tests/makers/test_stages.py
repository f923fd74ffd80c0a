"""Stage makers run for real with jobflow (tiny score model, no CHGNet): outputs, seeds,
provenance and the structures in the data store."""

from __future__ import annotations

import pytest
from jobflow import Flow, JobStore, run_locally
from maggma.stores import MemoryStore

from chggen_flows.makers.framework import FrameworkMaker
from chggen_flows.makers.generate import GenerateMaker
from chggen_flows.makers.inpaint import InpaintMaker
from chggen_flows.makers.provenance import file_sha256
from chggen_flows.makers.schemas import StageDocument
from chggen_flows.makers.symmetry import SymmetryMaker
from tests.campaign.helpers import li3si_seeds, tiny_checkpoint

SAMPLER = {"n_levels": 4, "n_corrector": 1}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("model") / "tiny.pt")


def _seeds():
    return li3si_seeds(3, lattice_seed=11, first_seed=100)


def _run(flow: Flow) -> tuple[JobStore, dict]:
    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    responses = run_locally(flow, store=store, ensure_success=True)
    return store, responses


def test_generate_framework_inpaint_symmetry_chain(checkpoint, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = {"checkpoint": str(checkpoint), "device": "cpu"}
    gen = GenerateMaker(**model, sampler=SAMPLER, v0=20.0).make("c", "b0", _seeds())
    frame = FrameworkMaker(guests=["Li"], framework={"ladder": [[0.5, 15], [2.0, 30]]}).make(
        gen.output
    )
    paint = InpaintMaker(
        **model, sampler=SAMPLER, inpaint={"jump_length": 2, "n_resample": 1}
    ).make(frame.output)
    sym = SymmetryMaker().make(paint.output)
    store, responses = _run(Flow([gen, frame, paint, sym]))

    generated: StageDocument = responses[gen.uuid][1].output
    assert [r.stage for r in generated.candidates] == ["generated"] * 3
    # the three candidates share one lattice (same lattice seed), each has its own seed
    lattices = {tuple(s.lattice.abc) for s in generated.structures}
    assert len(lattices) == 1
    assert generated.structures[0].volume == pytest.approx(8 * 20.0)
    assert [r.seed for r in generated.candidates] == [100, 101, 102]
    assert generated.provenance.checkpoint_sha256 == file_sha256(checkpoint)
    assert generated.provenance.seeds == [100, 101, 102] and generated.provenance.device == "cpu"

    framed: StageDocument = responses[frame.uuid][1].output
    assert any(r.valid for r in framed.candidates)  # fixed seeds: one framework is found
    for record, structure in zip(framed.candidates, framed.structures, strict=True):
        if record.valid:
            assert record.framework_found and record.guest_counts
            assert "Li" not in structure.composition
        else:
            assert record.rejected_reason.startswith(("framework", "generation"))

    painted: StageDocument = responses[paint.uuid][1].output
    assert any(r.stage == "inpainted" and r.valid for r in painted.candidates)
    for record, structure in zip(painted.candidates, painted.structures, strict=True):
        if record.valid and record.stage == "inpainted":
            assert structure.composition.reduced_formula == "Li3Si"
    final: StageDocument = responses[sym.uuid][1].output
    assert {r.candidate_id for r in final.candidates} == {s.candidate_id for s in _seeds()}

    # the structures went to the data store, the records stayed in the documents
    doc = store.query_one({"uuid": gen.uuid}, load=False)
    assert "blob_uuid" in doc["output"]["structures"]
    assert doc["output"]["candidates"][0]["candidate_id"] == "Li3Si-fu2-L000-S000"


def test_generation_is_reproducible(checkpoint, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    maker = GenerateMaker(checkpoint=str(checkpoint), device="cpu", sampler=SAMPLER, v0=20.0)
    first = maker.make("c", "b0", _seeds()[:1])
    second = maker.make("c", "b0", _seeds()[:1])
    _, responses = _run(Flow([first, second]))
    a = responses[first.uuid][1].output.structures[0]
    b = responses[second.uuid][1].output.structures[0]
    assert a == b


def test_host_mode_inpaints_the_guests_into_the_given_host(checkpoint, tmp_path, monkeypatch):
    from pymatgen.core import Lattice, Structure

    from chggen_flows.makers.framework import HostFrameworkMaker

    monkeypatch.chdir(tmp_path)
    host = Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.43), ["Si"], [[0, 0, 0]])
    ids = ["Si8+Li4-S0000", "Si8+Li4-S0001"]
    start = HostFrameworkMaker().make("h", "b0", host, {"Li": 4}, ids)
    paint = InpaintMaker(
        checkpoint=str(checkpoint),
        device="cpu",
        sampler=SAMPLER,
        seed=5,
        inpaint={"jump_length": 2, "n_resample": 1},
    ).make(start.output)
    _, responses = _run(Flow([start, paint]))
    framework: StageDocument = responses[start.uuid][1].output
    assert [r.mode for r in framework.candidates] == ["host", "host"]
    assert framework.candidates[0].reduced_formula == "LiSi2"
    assert framework.candidates[0].framework_spacegroup == 227
    painted: StageDocument = responses[paint.uuid][1].output
    for record, structure in zip(painted.candidates, painted.structures, strict=True):
        assert record.stage == "inpainted"
        # the host's 8 Si sites are kept exactly, 4 Li were added
        assert structure.composition["Li"] == 4 and structure.composition["Si"] == 8
        for site, original in zip(structure[:8], host, strict=True):
            assert site.distance(original) < 1e-6
    # per-candidate seeds: the two candidates differ
    assert painted.structures[0] != painted.structures[1]
    assert len(set(painted.provenance.seeds)) == 2


def test_generate_takes_v0_from_the_known_phases_of_the_reference(
    checkpoint, tmp_path, monkeypatch
):
    """``v0: auto``: Li3Si cells get the volume of the nearest known Li-Si phases of the
    offline hull (not the regression), and each record says so."""
    from pymatgen.core import Composition

    from chggen_flows.core.generation import estimate_v0
    from chggen_flows.makers.generate import volume_hull

    monkeypatch.chdir(tmp_path)
    gen = GenerateMaker(checkpoint=str(checkpoint), device="cpu", sampler=SAMPLER).make(
        "c", "b0", _seeds()
    )
    _, responses = _run(Flow([gen]))
    doc: StageDocument = responses[gen.uuid][1].output
    (source,) = {r.v0_source for r in doc.candidates}
    assert source == "known phases: Li13Si4, Li15Si4"
    expected = estimate_v0(
        Composition("Li3Si"), phase_diagram=volume_hull("offline", Composition("Li3Si"))
    )
    assert doc.structures[0].volume == pytest.approx(8 * expected.volume_per_atom)
    assert expected.volume_per_atom > 1.05 * estimate_v0(Composition("Li3Si")).volume_per_atom
    # no set for the system, or an MP reference: the regression answers
    assert volume_hull("offline", Composition("LiZn")) is None
    assert volume_hull("mp", Composition("Li3Si")) is None


def test_framework_fan_out_makes_one_branch_per_host(tmp_path, monkeypatch):
    """``mode: fan_out``: each further host is its own candidate, named after the host."""
    import numpy as np
    from pymatgen.core import Lattice, Structure

    from chggen_flows.makers.provenance import start_provenance
    from chggen_flows.makers.schemas import CandidateRecord, finish_document

    monkeypatch.chdir(tmp_path)
    # antifluorite Li2O, rattled: the O host is fcc, lower groups are found on the way
    li2o = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(4.61), ["O", "Li"], [[0, 0, 0], [0.25, 0.25, 0.25]]
    )
    rng = np.random.default_rng(0)
    for i in range(len(li2o)):  # 0.08 A rattle: fcc at rung 0.5, Cm (8) on the way
        li2o.translate_sites([i], rng.normal(size=3) * 0.08 / np.sqrt(3), frac_coords=False)
    record = CandidateRecord(
        campaign="c",
        candidate_id="Li2O-x",
        formula=li2o.formula,
        reduced_formula="Li2O",
        chemsys="Li-O",
        natoms=len(li2o),
        formula_units=4,
        stage="relaxed",
    )
    doc = finish_document("relaxed", "c", "b0", [record], [li2o], start_provenance("relaxed", {}))
    job = FrameworkMaker(guests=["Li"], framework={"mode": "fan_out", "max_hosts": 3}).make(doc)
    _, responses = _run(Flow([job]))
    out: StageDocument = responses[job.uuid][1].output
    ids = [r.candidate_id for r in out.candidates]
    assert ids == ["Li2O-x", "Li2O-x-H1sg8"]
    assert all(i.startswith("Li2O-x-H") for i in ids[1:])
    assert out.candidates[0].framework_spacegroup == 225  # most symmetric first
    assert [r.framework_rank for r in out.candidates] == list(range(len(ids)))
    assert {r.parent_id for r in out.candidates[1:]} == {"Li2O-x"}
    assert len({r.framework_spacegroup for r in out.candidates}) == len(ids)
    assert all(r.framework_mode == "fan_out" for r in out.candidates)
    assert all(r.framework_max_displacement < 0.6 for r in out.candidates)
