"""``inpaint.guest_symmetry: compare`` in the stage makers: every inpainted candidate gets
a symmetric-guest copy in its own arm, and the second relaxation keeps its group."""

from __future__ import annotations

from jobflow import Flow, JobStore, run_locally
from maggma.stores import MemoryStore
from pymatgen.core import Lattice, Structure

from chggen_flows.makers.framework import HostFrameworkMaker
from chggen_flows.makers.inpaint import SYMMETRIC_COPY_SUFFIX, InpaintMaker
from chggen_flows.makers.relax import RelaxMaker
from chggen_flows.makers.schemas import CHGGEN_ARM, SYMMETRIC_GUESTS_ARM, StageDocument
from tests.campaign.helpers import tiny_checkpoint


def test_compare_mode_adds_symmetric_copies_that_keep_their_group(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    checkpoint = tiny_checkpoint(tmp_path / "tiny.pt")
    host = Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.43), ["Si"], [[0, 0, 0]])
    ids = ["Si8+Li4-S0000", "Si8+Li4-S0001"]
    start = HostFrameworkMaker().make("h", "b0", host, {"Li": 4}, ids)
    paint = InpaintMaker(
        checkpoint=str(checkpoint),
        device="cpu",
        sampler={"n_levels": 4, "n_corrector": 1},
        inpaint={"jump_length": 2, "n_resample": 1, "guest_symmetry": "compare"},
        seed=5,
    ).make(start.output)
    relax = RelaxMaker(stage="relaxed_inpaint", relax={"max_steps": 5}, device="cpu").make(
        paint.output
    )
    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    responses = run_locally(Flow([start, paint, relax]), store=store, ensure_success=True)

    painted: StageDocument = responses[paint.uuid][1].output
    valid = [r.candidate_id for r in painted.candidates if r.arm == CHGGEN_ARM and r.valid]
    copies = [r for r in painted.candidates if r.arm == SYMMETRIC_GUESTS_ARM]
    assert valid and [c.candidate_id for c in copies] == [v + SYMMETRIC_COPY_SUFFIX for v in valid]
    by_id = dict(zip((r.candidate_id for r in painted.candidates), painted.structures, strict=True))
    for copy in copies:
        assert copy.parent_id + SYMMETRIC_COPY_SUFFIX == copy.candidate_id
        assert copy.guest_symmetry == "symmetric" and copy.imposed_spacegroup is not None
        assert copy.guest_displacement is not None and copy.guest_displacement <= 0.5
        structure = by_id[copy.candidate_id]
        assert structure.composition == by_id[copy.parent_id].composition
        for site, original in zip(structure[:8], host, strict=True):  # host unchanged
            assert site.distance(original) < 1e-6
    assert {r.guest_symmetry for r in painted.candidates if r.arm == CHGGEN_ARM} == {"free"}

    relaxed: StageDocument = responses[relax.uuid][1].output
    for record in relaxed.candidates:
        if not record.valid:
            continue
        if record.arm == SYMMETRIC_GUESTS_ARM:
            assert record.symmetry_held is True
        else:
            assert record.symmetry_held is None
