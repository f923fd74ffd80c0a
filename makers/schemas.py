"""Output documents of the CHGGen stage jobs (pydantic).

A stage job handles a batch of candidates and returns one :class:`StageDocument`: the
per-candidate :class:`CandidateRecord` list (small, stays in MongoDB) and the batch's
structures (large, routed to the GridFS data store by ``@job(data="structures")``). Each
stage copies the records it received and fills in its own fields, so the record written
by the last stage a candidate reached carries the candidate's whole history; that is what
``chggen results`` reads.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any, Literal

from jobflow import job
from pydantic import BaseModel, Field, field_validator
from pymatgen.core import Structure

from chggen_flows.makers.provenance import Provenance, finish_provenance


class Stage(StrEnum):
    """The stages a candidate goes through, in pipeline order (the one list of names)."""

    GENERATED = "generated"
    RELAXED = "relaxed"
    FRAMEWORK = "framework"
    INPAINTED = "inpainted"
    RELAXED_INPAINT = "relaxed_inpaint"
    CLASSIFIED = "classified"
    EHULL = "ehull"
    DFT = "dft"


#: E_d (eV/atom) below which a unique candidate goes to r2SCAN: the paper's gate (the
#: docs recommend 0.03). The one default, read by the spec, the E_d job and the gate.
DEFAULT_DFT_THRESHOLD = 0.1

#: Stage names in pipeline order; ``CandidateRecord.stage`` is always one of these.
STAGES: tuple[str, ...] = tuple(stage.value for stage in Stage)
#: Output fields every stage job sends to the data store (GridFS), not its document.
DATA_FIELDS: tuple[str, ...] = ("structures",)
#: What a campaign-wide job (E_d over every batch) sends there as well: its records and
#: shortlist grow with the campaign, and a MongoDB document stops at 16 MB.
CAMPAIGN_WIDE_DATA_FIELDS: tuple[str, ...] = (*DATA_FIELDS, "candidates", "shortlist")


#: Output classes whose ``candidates`` are campaign records, read by ``chggen results``:
#: every stage's document and the DFT jobs' (``makers.dft``).
RECORD_DOCUMENTS: tuple[str, ...] = ("StageDocument", "GateDecision", "R2SCANEdDocument")


def stage_job(campaign_wide: bool = False) -> Callable:
    """The decorator of every stage job's ``make``: a :class:`StageDocument` output whose
    structures (and, for a campaign-wide job, records and shortlist) go to the data
    store, so no document grows with the campaign.

    Parameters
    ----------
    campaign_wide
        True for a job that gathers every batch (the E_d stage).
    """
    data = CAMPAIGN_WIDE_DATA_FIELDS if campaign_wide else DATA_FIELDS
    return job(data=list(data), output_schema=StageDocument)


Mode = Literal["unconditional", "host"]

#: The arm of the generative pipeline's candidates (``CandidateRecord.arm``).
CHGGEN_ARM = "chggen"
#: With ``inpaint.guest_symmetry: compare``: the copies whose guests were made symmetric.
SYMMETRIC_GUESTS_ARM = "chggen:symmetric-guests"


def baseline_arm(kind: str) -> str:
    """The arm name of a baseline's candidates, e.g. ``baseline:pyxtal``."""
    return f"baseline:{kind}"


#: Prefix of the host arms' names: guests inpainted into hosts from a host source.
HOST_ARM_PREFIX = "hosts:"


def host_arm(kind: str) -> str:
    """The arm name of inpainted host-source candidates: ``hosts:analogue``,
    ``hosts:frameworks``, ``hosts:disordered``."""
    return f"{HOST_ARM_PREFIX}{kind}"


def is_pipeline_arm(arm: str | None) -> bool:
    """True for the unconditional pipeline's arms (generate -> framework -> inpaint):
    what the report's "unconditional vs inpainting" symmetry rates describe."""
    return arm is None or arm in (CHGGEN_ARM, SYMMETRIC_GUESTS_ARM)


def is_generated_arm(arm: str | None) -> bool:
    """True for the arms whose structures the model made (the DFT shortlist draws from
    them): the generative pipeline's and the host arms' (guests inpainted)."""
    return is_pipeline_arm(arm) or str(arm).startswith(HOST_ARM_PREFIX)


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
    arm: str = Field(
        CHGGEN_ARM,
        description="chggen; chggen:symmetric-guests for the symmetric copies of a "
        "guest_symmetry comparison; baseline:<kind> for the random-search arm and the "
        "host baselines (substitution, ewald, enumeration); hosts:<kind> for guests "
        "inpainted into hosts from a host source (analogue, frameworks, disordered).",
    )
    template: dict[str, Any] | None = Field(
        None,
        description="Analogue and substitution arms: the known structure whose framework "
        "is the host ({material_id, formula, spacegroup_number, spacegroup_symbol, ...}).",
    )
    host_source: dict[str, Any] | None = Field(
        None,
        description="Host arms: how the host was made (supercell, volume scaling, guest "
        "rounding, framework space group, Ewald energy...).",
    )
    stage: str = Stage.GENERATED.value
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
    framework_mode: str | None = None
    framework_rank: int | None = None
    framework_rung: int | None = None
    framework_max_displacement: float | None = None
    framework_rms_displacement: float | None = None
    framework_lattice_strain: float | None = None
    framework_ops_per_atom: float | None = None
    framework_cell: str | None = None
    framework_supercell: int | None = None
    framework_fallback: bool | None = Field(
        None,
        description="True when no rung of the ladder passed the displacement/strain bounds "
        "and the host is the one the paper's rule gives (modes highest and fan_out).",
    )
    parent_id: str | None = Field(
        None,
        description="fan_out hosts: the candidate whose framework this host is; "
        "symmetric-guest copies: the candidate they copy.",
    )
    guest_counts: dict[str, int] | None = None
    # inpainting and the second relaxation
    guest_symmetry: str | None = Field(
        None, description="free or symmetric: how the guests were left after inpainting."
    )
    imposed_spacegroup: int | None = Field(
        None, description="Symmetric guests: the space group imposed and kept in relaxation."
    )
    imposed_symbol: str | None = None
    imposed_subgroup: bool | None = Field(
        None, description="Symmetric guests: a proper subgroup of the host's group was needed."
    )
    guest_displacement: float | None = Field(
        None, description="Symmetric guests: largest guest move (Å) to the symmetric sites."
    )
    symmetry_held: bool | None = Field(
        None, description="Symmetric guests: the imposed group survived the relaxation."
    )
    de_inpaint: float | None = None
    rmsd_inpaint: float | None = None
    # final symmetry
    spacegroup_number: int | None = None
    spacegroup_symbol: str | None = None
    symmetric: bool | None = None
    # stability
    potential: str = Field(
        "chgnet",
        description="The interatomic potential that relaxed the candidate (its energy and "
        "E_d are that potential's); records written before the choice existed are chgnet.",
    )
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

    @field_validator("stage", mode="before")
    @classmethod
    def _stage_name(cls, value: Any) -> str:
        # plain str in documents (a Stage member would serialise as an enum object)
        if str(value) not in STAGES:
            raise ValueError(f"unknown stage {value!r}")
        return str(value)

    def advance(self, stage: str, **fields: Any) -> CandidateRecord:
        """A copy at ``stage`` with ``fields`` set (the record itself is not changed)."""
        # model_copy does not validate, so the stage check is called here
        return self.model_copy(update={"stage": self._stage_name(stage), **fields})

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


def carry_rejected(
    previous: StageDocument,
    process: Callable[[CandidateRecord, Structure], tuple[CandidateRecord, Structure | None]],
) -> tuple[list[CandidateRecord], list[Structure | None]]:
    """Apply ``process`` to every candidate of ``previous`` still in the running.

    Rejected candidates, and candidates without a structure, pass through unchanged, so
    a stage document always lists every candidate of its batch.
    """
    records: list[CandidateRecord] = []
    structures: list[Structure | None] = []
    for record, structure in zip(previous.candidates, previous.structures, strict=True):
        if record.valid and structure is not None:
            record, structure = process(record, structure)
        records.append(record)
        structures.append(structure)
    return records, structures


def merge_documents(documents: list[StageDocument]) -> tuple[list[CandidateRecord], list]:
    """Concatenate the candidates and structures of several batch documents."""
    records: list[CandidateRecord] = []
    structures: list[Structure | None] = []
    for doc in documents:
        records.extend(doc.candidates)
        structures.extend(doc.structures)
    return records, structures
