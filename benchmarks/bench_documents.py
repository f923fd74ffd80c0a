"""Largest MongoDB document of a campaign: the E_d stage's, at 10^4 and 10^5 candidates.

The E_d job gathers every batch (de-duplication compares candidates across batches), so
its output grows with the campaign. It is stored as jobflow stores it (``Job.run``
into a JobStore) twice: with the stage layout (``stage_job(campaign_wide=True)``:
records, structures and shortlist in the data store) and with the layout before
(only the structures in the data store). Synthetic records like a real campaign's
(every field a Li-Si record has after E_d), 10% of them shortlisted. Prints the BSON
size of the document-store document (MongoDB refuses documents over 16 MB) and of the
data-store blobs.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_documents.py [--sizes 10000 100000]
"""

from __future__ import annotations

import argparse
import time

import bson
from jobflow import JobStore, job
from maggma.stores import MemoryStore
from pymatgen.core import Lattice, Structure

from chggen_flows.makers.provenance import start_provenance
from chggen_flows.makers.schemas import CandidateRecord, StageDocument, finish_document, stage_job

LIMIT = 16 * 1024 * 1024


def ehull_document(n: int) -> StageDocument:
    """A synthetic E_d-stage document of ``n`` candidates."""
    structure = Structure(
        Lattice.hexagonal(4.4, 7.9),
        ["Li"] * 6 + ["Si"] * 2,
        [[i / 8, (i * 3 % 8) / 8, (i * 5 % 8) / 8] for i in range(8)],
    )
    records = [
        CandidateRecord(
            campaign="bench-00000001",
            candidate_id=f"Li3Si-fu2-L{i // 100:05d}-S{i % 100:03d}",
            formula="Li6 Si2",
            reduced_formula="Li3Si",
            chemsys="Li-Si",
            natoms=8,
            formula_units=2,
            lattice_type="hexagonal",
            stage="ehull",
            seed=1_000_000_007 * i % 2**32,
            volume_per_atom=15.44,
            v0_source="known phases: Li13Si4, Li15Si4",
            de_uncond=0.61,
            rmsd_uncond=0.72,
            spacegroup_uncond=1,
            symmetric_uncond=False,
            framework_found=True,
            framework_symprec=0.5,
            framework_angle_tolerance=15.0,
            framework_spacegroup=191,
            guest_counts={"Li": 6},
            de_inpaint=0.12,
            rmsd_inpaint=0.31,
            spacegroup_number=194,
            spacegroup_symbol="P6_3/mmc",
            symmetric=True,
            energy_per_atom=-2.91,
            e_d=0.001 * (i % 200),
            e_d_reference="offline-chgnet (GGA_GGA+U)",
            duplicate_of=None,
            below_threshold=i % 10 == 0,
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
        for r in records
        if r.below_threshold
    ]
    return finish_document(
        "ehull",
        "bench-00000001",
        "all",
        records,
        [structure] * n,
        start_provenance("ehull", {}),
        shortlist=shortlist,
    )


def stored_sizes(document: StageDocument, decorator) -> tuple[int, int, float]:
    """(document-store BSON bytes, data-store BSON bytes, seconds to store)."""

    @decorator
    def ehull() -> StageDocument:
        return document

    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    store.connect()
    start = time.perf_counter()
    ehull().run(store=store)
    seconds = time.perf_counter() - start
    (doc,) = list(store.docs_store.query({}))
    doc.pop("_id", None)
    blobs = sum(
        len(bson.encode({k: v for k, v in b.items() if k != "_id"}))
        for b in store.additional_stores["data"].query({})
    )
    return len(bson.encode(doc)), blobs, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    layouts = {
        "stage layout (records in the data store)": stage_job(campaign_wide=True),
        "before (structures only in the data store)": job(
            data=["structures"], output_schema=StageDocument
        ),
    }
    print(
        "| candidates | layout | document (MB) | data-store blobs (MB) | store time (s) | under 16 MB |"
    )
    print("|---|---|---|---|---|---|")
    for n in args.sizes:
        document = ehull_document(n)
        for name, decorator in layouts.items():
            doc_bytes, blob_bytes, seconds = stored_sizes(document, decorator)
            print(
                f"| {n:,} | {name} | {doc_bytes / 1e6:.3f} | {blob_bytes / 1e6:.1f} | "
                f"{seconds:.1f} | {'yes' if doc_bytes < LIMIT else 'NO'} |"
            )


if __name__ == "__main__":
    main()
