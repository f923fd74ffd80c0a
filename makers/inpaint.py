"""RePaint inpainting of the guests into each candidate's host framework (GPU job)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jobflow import Maker

from chggen_flows.makers.generate import checkpoint_path, score_model
from chggen_flows.makers.provenance import derived_seed, start_provenance
from chggen_flows.makers.schemas import (
    CandidateRecord,
    Stage,
    StageDocument,
    carry_rejected,
    finish_document,
    stage_job,
)


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
        ``auto``, ``cpu`` or ``cuda``.
    sampler
        Keyword arguments of :class:`chggen_flows.core.generation.SamplerSettings`.
    inpaint
        Keyword arguments of :class:`chggen_flows.core.generation.InpaintSettings`
        (``jump_length``, ``n_resample``).
    seed
        Base seed for candidates without their own (host mode); each candidate's
        inpainting seed is derived from it (or from its generation seed) and its id.
    """

    name: str = "inpaint"
    checkpoint: str | None = None
    device: str = "auto"
    sampler: dict[str, Any] = field(default_factory=dict)
    inpaint: dict[str, Any] = field(default_factory=dict)
    seed: int = 0

    @stage_job()
    def make(self, previous: StageDocument) -> StageDocument:
        """Inpaint every valid candidate of ``previous`` (a framework-stage document)."""
        from chggen_flows.core.device import resolve_device
        from chggen_flows.core.generation import InpaintSettings, SamplerSettings, inpaint

        device = str(resolve_device(self.device))
        pairs = previous.valid_pairs()
        seeds = [
            derived_seed(r.seed if r.seed is not None else self.seed, f"{r.candidate_id}/inpaint")
            for r, _ in pairs
        ]
        provenance = start_provenance(
            Stage.INPAINTED,
            {"sampler": self.sampler, "inpaint": self.inpaint},
            seeds=seeds,
            checkpoint=checkpoint_path(self.checkpoint),
            device=device,
        )
        results = []
        if pairs:
            results = inpaint(
                [s for _, s in pairs],
                [r.guest_counts or {} for r, _ in pairs],
                score_model(self.checkpoint, device),
                SamplerSettings(**self.sampler),
                InpaintSettings(**self.inpaint),
                device=device,
                seeds=seeds,
            )
        done = {r.candidate_id: c for (r, _), c in zip(pairs, results, strict=True)}

        def update(record: CandidateRecord, _: Any) -> tuple[CandidateRecord, Any]:
            candidate = done[record.candidate_id]
            advanced = record.advance(Stage.INPAINTED)
            if not candidate.valid:
                advanced = advanced.reject(f"inpainting: {candidate.reason}")
            return advanced, candidate.structure

        records, structures = carry_rejected(previous, update)
        return finish_document(
            Stage.INPAINTED,
            previous.campaign,
            previous.batch_id,
            records,
            structures,
            provenance,
            model_calls=sum(int(c.metadata.get("model_calls", 0)) for c in results),
        )
