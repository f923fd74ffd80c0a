"""RePaint inpainting of the guests into each candidate's host framework (GPU job)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jobflow import Maker

from chggen_flows.core.generation.settings import InpaintSettings, SamplerSettings
from chggen_flows.makers.generate import checkpoint_path, score_model
from chggen_flows.makers.provenance import derived_seed, start_provenance
from chggen_flows.makers.schemas import (
    SYMMETRIC_GUESTS_ARM,
    CandidateRecord,
    Stage,
    StageDocument,
    finish_document,
    stage_job,
)

#: Suffix of the candidate id of a symmetric-guest copy (``guest_symmetry: compare``).
SYMMETRIC_COPY_SUFFIX = "-sym"


def guest_fields(candidate: Any) -> dict[str, Any]:
    """The record fields saying how an inpainted candidate's guests were left."""
    info = candidate.metadata.get("guest_symmetry")
    if info is None:
        return {"guest_symmetry": "free"}
    return {
        "guest_symmetry": "symmetric",
        "imposed_spacegroup": info["spacegroup_number"],
        "imposed_symbol": info["spacegroup_symbol"],
        "imposed_subgroup": info["subgroup"],
        "guest_displacement": info["max_displacement"],
    }


@dataclass
class InpaintMaker(Maker):
    """Re-insert each candidate's guests as noise and denoise them with the host fixed.

    Parameters
    ----------
    name
        Job name.
    checkpoint
        Score-model checkpoint; None uses the shipped model.
    device
        ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (checked against the visible GPUs).
    sampler
        The sampler's settings (a spec's ``sampler`` section).
    inpaint
        The RePaint settings (a spec's ``inpaint`` section: ``jump_length``,
        ``n_resample``, ``guest_symmetry``, ...). With
        ``guest_symmetry: compare`` each inpainted candidate also gets a copy with
        symmetric guests, ``<id>-sym`` in arm ``chggen:symmetric-guests``.
    seed
        Base seed for candidates without their own (host mode); each candidate's
        inpainting seed is derived from it (or from its generation seed) and its id.
    """

    name: str = "inpaint"
    checkpoint: str | None = None
    device: str = "auto"
    sampler: SamplerSettings = field(default_factory=SamplerSettings)
    inpaint: InpaintSettings = field(default_factory=InpaintSettings)
    seed: int = 0

    def __post_init__(self) -> None:
        # a stored Maker's plain dicts
        self.sampler = SamplerSettings.coerce(self.sampler)
        self.inpaint = InpaintSettings.coerce(self.inpaint)

    @stage_job()
    def make(self, previous: StageDocument, adapted: dict[str, Any] | None = None) -> StageDocument:
        """Inpaint every valid candidate of ``previous`` (a framework-stage document).

        ``adapted``: the campaign's adapt job output, as in ``GenerateMaker.make``.
        """
        from chggen_flows.core.device import resolve_device
        from chggen_flows.core.generation import inpaint
        from chggen_flows.core.generation.inpaint import symmetric_candidate
        from chggen_flows.makers.adapt import adaptation_inputs

        device = str(resolve_device(self.device))
        setting, adaptation = adaptation_inputs(self.checkpoint, adapted)
        pairs = previous.valid_pairs()
        seeds = [
            derived_seed(r.seed if r.seed is not None else self.seed, f"{r.candidate_id}/inpaint")
            for r, _ in pairs
        ]
        provenance = start_provenance(
            Stage.INPAINTED,
            {"sampler": self.sampler.given(), "inpaint": self.inpaint.given(), **adaptation},
            seeds=seeds,
            checkpoint=checkpoint_path(setting),
            device=device,
        )
        sampler, settings = self.sampler, self.inpaint
        results = []
        if pairs:
            results = inpaint(
                [s for _, s in pairs],
                [r.guest_counts or {} for r, _ in pairs],
                score_model(setting, device),
                sampler,
                settings,
                device=device,
                seeds=seeds,
            )
        done = {r.candidate_id: c for (r, _), c in zip(pairs, results, strict=True)}

        def inpainted(record: CandidateRecord, candidate: Any, **extra: Any) -> CandidateRecord:
            advanced = record.advance(Stage.INPAINTED, **extra, **guest_fields(candidate))
            if not candidate.valid:
                advanced = advanced.reject(f"inpainting: {candidate.reason}")
            return advanced

        records: list[CandidateRecord] = []
        structures: list[Any] = []
        for record, structure in zip(previous.candidates, previous.structures, strict=True):
            if not record.valid or structure is None:  # rejected before: carried unchanged
                records.append(record)
                structures.append(structure)
                continue
            candidate = done[record.candidate_id]
            records.append(inpainted(record, candidate))
            structures.append(candidate.structure)
            if settings.guest_symmetry == "compare" and candidate.valid:
                # the same sample with symmetric guests, so the arms differ in that alone
                twin = symmetric_candidate(candidate, record.guest_counts or {}, settings, sampler)
                records.append(
                    inpainted(
                        record,
                        twin,
                        candidate_id=record.candidate_id + SYMMETRIC_COPY_SUFFIX,
                        parent_id=record.candidate_id,
                        arm=SYMMETRIC_GUESTS_ARM,
                    )
                )
                structures.append(twin.structure)
        return finish_document(
            Stage.INPAINTED,
            previous.campaign,
            previous.batch_id,
            records,
            structures,
            provenance,
            model_calls=sum(int(c.metadata.get("model_calls", 0)) for c in results),
        )
