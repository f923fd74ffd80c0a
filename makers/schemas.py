"""Output documents of the CHGGen stage jobs (pydantic).

A stage job handles a batch of candidates and returns one :class:`StageDocument`: the
per-candidate :class:`CandidateRecord` list (small, stays in MongoDB) and the batch's
structures (large, routed to the GridFS data store by ``@job(data="structures")``). Each
stage copies the records it received and fills in its own fields, so the record written
by the last stage a candidate reached carries the candidate's whole history; that is what
``chggen results`` reads.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field
from pymatgen.core import Structure

from makers.provenance import Provenance, finish_provenance

#: Stages in pipeline order; ``CandidateRecord.stage`` is always one of these.
STAGES: tuple[str, ...] = (
    "generated",
    "relaxed",
    "framework",
    "inpainted",
    "relaxed_inpaint",
    "classified",
    "ehull",
    "dft",
)

Mode = Literal["unconditional", "host"]


class CandidateSeed(BaseModel):
    """What a generation job needs to make one candidate, reproducibly.

    Candidates sharing ``(reduced_formula, formula_units, lattice_index)`` are sampled in
    the same random lattice, drawn from ``lattice_seed``.
    """

    candidate_id: str
    composition: str = Field(description="Reduced formula of one formula unit, e.g. Li5Si2.")
    formula_units: int
    lattice_index: int
    sample_index: int
    lattice_seed: int
    seed: int


class CandidateRecord(BaseModel):
    """The state of one candidate after a stage. Fields of later stages stay None."""

    campaign: str
    candidate_id: str
    formula: str
    reduced_formula: str
    chemsys: str
    natoms: int
    formula_units: int
    lattice_type: str | None = None
    mode: Mode = "unconditional"
    stage: str = "generated"
    valid: bool = True
    rejected_reason: str | None = None
    seed: int | None = None
    volume_per_atom: float | None = None
    v0_source: str | None = None
    # first relaxation (of the unconditionally generated structure)
    de_uncond: float | None = None
    rmsd_uncond: float | None = None
    spacegroup_uncond: int | None = None
    symmetric_uncond: bool | None = None
    # host framework
    framework_found: bool | None = None
    framework_symprec: float | None = None
    framework_angle_tolerance: float | None = None
    framework_spacegroup: int | None = None
    guest_counts: dict[str, int] | None = None
    # inpainting and the second relaxation
    de_inpaint: float | None = None
    rmsd_inpaint: float | None = None
    # final symmetry
    spacegroup_number: int | None = None
    spacegroup_symbol: str | None = None
    symmetric: bool | None = None
    # stability
    energy_per_atom: float | None = None
    e_d: float | None = None
    e_d_reference: str | None = None
    e_d_warning: str | None = Field(
        None, description="Set when a known phase missing from the hull may lower it here."
    )
    duplicate_of: str | None = None
    below_threshold: bool | None = None
    # DFT
    dft_state: str | None = None
    e_d_r2scan: float | None = None

    def advance(self, stage: str, **fields: Any) -> CandidateRecord:
        """A copy at ``stage`` with ``fields`` set (the record itself is not changed)."""
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}")
        return self.model_copy(update={"stage": stage, **fields})

    def reject(self, reason: str, **fields: Any) -> CandidateRecord:
        """A copy marked invalid at its current stage, with the reason."""
        return self.model_copy(update={"valid": False, "rejected_reason": reason, **fields})


class StageDocument(BaseModel):
    """Output of one batch job of one stage.

    ``structures`` is aligned with ``candidates``: the structure each candidate has after
    this stage, or None when it was rejected before it got one. It is stored in the GridFS
    data store (one blob per job), not in the document store.
    """

    campaign: str
    stage: str
    batch_id: str
    candidates: list[CandidateRecord]
    structures: list[Structure | None]
    provenance: Provenance
    summary: dict[str, Any] = Field(default_factory=dict)
    shortlist: list[dict[str, Any]] = Field(
        default_factory=list,
        description="E_d stage only: the unique candidates below the DFT threshold, "
        "lowest E_d first, as {candidate_id, structure, e_d} (the DFT gate's input).",
    )

    def valid_pairs(self) -> list[tuple[CandidateRecord, Structure]]:
        """The (record, structure) pairs of candidates still in the running."""
        return [
            (record, structure)
            for record, structure in zip(self.candidates, self.structures, strict=True)
            if record.valid and structure is not None
        ]


def finish_document(
    stage: str,
    campaign: str,
    batch_id: str,
    records: list[CandidateRecord],
    structures: list[Structure | None],
    provenance: Provenance,
    shortlist: list[dict[str, Any]] | None = None,
    **summary: Any,
) -> StageDocument:
    """The stage's output document, with the provenance closed and a count summary."""
    counts = {
        "n_candidates": len(records),
        "n_valid": sum(r.valid for r in records),
        "n_rejected": sum(not r.valid for r in records),
    }
    return StageDocument(
        campaign=campaign,
        stage=stage,
        batch_id=batch_id,
        candidates=records,
        structures=structures,
        provenance=finish_provenance(provenance),
        summary={**counts, **summary},
        shortlist=shortlist or [],
    )


def merge_documents(documents: list[StageDocument]) -> tuple[list[CandidateRecord], list]:
    """Concatenate the candidates and structures of several batch documents."""
    records: list[CandidateRecord] = []
    structures: list[Structure | None] = []
    for doc in documents:
        records.extend(doc.candidates)
        structures.extend(doc.structures)
    return records, structures
