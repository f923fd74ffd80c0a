"""No document grows with the campaign: the campaign-wide E_d job keeps its records and
shortlist in the data store (MongoDB stops at 16 MB per document)."""

from __future__ import annotations

import bson
from jobflow import JobStore, job
from maggma.stores import MemoryStore
from pymatgen.core import Lattice, Structure

from chggen_flows.makers.provenance import start_provenance
from chggen_flows.makers.schemas import CandidateRecord, StageDocument, finish_document, stage_job


def _ehull_document(n: int) -> StageDocument:
    structure = Structure(Lattice.cubic(4.2), ["Li", "Si"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    records = [
        CandidateRecord(
            campaign="c",
            candidate_id=f"Li3Si-fu2-L{i // 100:03d}-S{i % 100:03d}",
            formula="Li6 Si2",
            reduced_formula="Li3Si",
            chemsys="Li-Si",
            natoms=8,
            formula_units=2,
            stage="ehull",
            e_d=0.01 * (i % 50),
            e_d_reference="offline-chgnet (GGA_GGA+U)",
            rejected_reason=None,
            v0_source="known phases: Li13Si4, Li15Si4",
            energy_per_atom=-2.9,
        )
        for i in range(n)
    ]
    shortlist = [
        {
            "candidate_id": r.candidate_id,
            "structure": structure,
            "e_d": r.e_d,
            "record": r.model_dump(),
        }
        for r in records[: n // 10]
    ]
    return finish_document(
        "ehull",
        "c",
        "all",
        records,
        [structure] * n,
        start_provenance("ehull", {}),
        shortlist=shortlist,
    )


def _stored_size(decorator, n: int) -> int:
    document = _ehull_document(n)

    @decorator
    def ehull() -> StageDocument:
        return document

    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    store.connect()
    ehull().run(store=store)
    (doc,) = list(store.docs_store.query({}))
    doc.pop("_id", None)
    return len(bson.encode(doc))


def test_e_d_document_stays_small_at_ten_thousand_candidates():
    n = 10_000
    bounded = _stored_size(stage_job(campaign_wide=True), n)
    assert bounded < 100_000  # a few kB: provenance, summary and blob references
    # the layout before (only the structures in the data store) grew with the campaign
    inline = _stored_size(job(data=["structures"], output_schema=StageDocument), n)
    assert inline > 40 * bounded and inline > 4_000_000
    # and the records still come back in full from the data store
    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    store.connect()
    document = _ehull_document(100)

    @stage_job(campaign_wide=True)
    def ehull() -> StageDocument:
        return document

    ehull().run(store=store)
    loaded = store.query_one({}, properties=["output.candidates"], load={"data": ["candidates"]})
    assert len(loaded["output"]["candidates"]) == 100
