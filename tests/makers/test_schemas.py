"""Candidate records, stage documents and provenance."""

from __future__ import annotations

import pytest
from monty.json import MontyDecoder, jsanitize
from pymatgen.core import Lattice, Structure

from chggen_flows.makers.provenance import (
    derived_seed,
    file_sha256,
    finish_provenance,
    start_provenance,
)
from chggen_flows.makers.schemas import (
    STAGES,
    CandidateRecord,
    StageDocument,
    finish_document,
    merge_documents,
)


def _record(cid: str = "Li3Si-fu1-L000-S000") -> CandidateRecord:
    return CandidateRecord(
        campaign="c",
        candidate_id=cid,
        formula="Li3 Si1",
        reduced_formula="Li3Si",
        chemsys="Li-Si",
        natoms=4,
        formula_units=1,
    )


def test_advance_and_reject_copy_the_record():
    record = _record()
    relaxed = record.advance("relaxed", de_uncond=0.1)
    assert record.stage == "generated" and record.de_uncond is None
    assert relaxed.stage == "relaxed" and relaxed.de_uncond == 0.1
    rejected = relaxed.reject("framework: none")
    assert not rejected.valid and rejected.rejected_reason == "framework: none"
    assert rejected.stage == "relaxed" and rejected.de_uncond == 0.1
    with pytest.raises(ValueError, match="unknown stage"):
        record.advance("cooked")
    assert STAGES[0] == "generated" and STAGES[-1] == "dft"


def test_stage_document_round_trips_through_json_with_structures():
    structure = Structure(
        Lattice.cubic(4.0),
        ["Li", "Li", "Li", "Si"],
        [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
    )
    records = [_record("a"), _record("b").reject("generation: too close")]
    doc = finish_document(
        "generated",
        "c",
        "b0000",
        records,
        [structure, None],
        start_provenance("generated", {"x": 1}, seeds=[1, 2]),
    )
    assert doc.summary == {"n_candidates": 2, "n_valid": 1, "n_rejected": 1}
    assert doc.provenance.finished is not None and doc.provenance.wall_time_s >= 0
    assert [r.candidate_id for r, _ in doc.valid_pairs()] == ["a"]
    data = jsanitize(doc, strict=True, enum_values=True)
    back = MontyDecoder().process_decoded(data)
    assert isinstance(back, StageDocument)
    assert back.structures[0] == structure and back.structures[1] is None
    merged, structures = merge_documents([doc, back])
    assert len(merged) == len(structures) == 4


def test_provenance_records_checkpoint_hash_versions_and_device(tmp_path):
    checkpoint = tmp_path / "model.pt"
    checkpoint.write_bytes(b"weights")
    import hashlib

    prov = finish_provenance(start_provenance("inpainted", {"a": 1}, [5], checkpoint, "cpu"))
    assert prov.checkpoint_sha256 == hashlib.sha256(b"weights").hexdigest()
    assert prov.checkpoint_sha256 == file_sha256(checkpoint)
    assert {"chggen-flows", "torch", "pymatgen"} <= set(prov.versions)
    assert prov.device == "cpu" and prov.seeds == [5] and prov.hostname


def test_derived_seeds_are_stable_and_distinct():
    assert derived_seed(0, "a") == derived_seed(0, "a")
    assert len({derived_seed(0, k) for k in "abcdefgh"} | {derived_seed(1, "a")}) == 9
    assert 0 <= derived_seed(123, "x") < 2**31
