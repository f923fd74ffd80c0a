"""CHGNet relaxation of a batch of candidates (after generation and after inpainting)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from jobflow import Maker

from chggen_flows.core.relax.records import RelaxSettings
from chggen_flows.makers.provenance import start_provenance
from chggen_flows.makers.schemas import (
    CandidateRecord,
    Stage,
    StageDocument,
    carry_rejected,
    finish_document,
    stage_job,
)


def _finite(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


@lru_cache(maxsize=4)
def _relaxer(settings: Any) -> Any:
    """One BatchRelaxer (and so one CHGNet load) per settings and worker process."""
    from chggen_flows.core.relax import BatchRelaxer

    return BatchRelaxer(settings)


def relax_settings(relax: RelaxSettings, device: str) -> RelaxSettings:
    """The settings a relaxation job uses: ``relax`` on the job's device, unless the
    spec's ``relax`` section sets ``device`` itself."""
    if "device" in relax.model_fields_set:
        return relax
    return relax.model_copy(update={"device": device})


@dataclass
class RelaxMaker(Maker):
    """Relax every valid candidate of a batch with CHGNet (cell and positions).

    Parameters
    ----------
    name
        Job name.
    stage
        ``"relaxed"`` after unconditional generation (fills ``de_uncond``,
        ``rmsd_uncond``) or ``"relaxed_inpaint"`` after inpainting (``de_inpaint``,
        ``rmsd_inpaint``, ``energy_per_atom``).
    relax
        The relaxation's settings (a spec's ``relax`` section: ``fmax``, ``max_steps``,
        ``min_distance``, ``batch_size``, ...); its ``device``, when not set, is the
        job's.
    device
        ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (checked against the visible GPUs).
    """

    name: str = "relax"
    stage: Literal["relaxed", "relaxed_inpaint"] = "relaxed"
    relax: RelaxSettings = field(default_factory=RelaxSettings)
    device: str = "auto"

    def __post_init__(self) -> None:
        self.relax = RelaxSettings.coerce(self.relax)  # a stored Maker's plain dict

    @stage_job()
    def make(self, previous: StageDocument) -> StageDocument:
        """Relax the batch in ``previous``; rejected candidates are carried unchanged."""
        from chggen_flows.core.device import resolve_device

        device = str(resolve_device(self.device))
        settings = relax_settings(self.relax, device)
        provenance = start_provenance(self.stage, {"relax": self.relax.given()}, device=device)
        pairs = previous.valid_pairs()
        # symmetric guests keep their imposed group (ASE FixSymmetry algebra)
        fixed = [rec.guest_symmetry == "symmetric" for rec, _ in pairs]
        results = []
        if pairs:
            relaxer = _relaxer(settings)
            potential = relaxer.potential
            provenance.inputs["potential"] = {
                "name": potential.name,
                "version": potential.version,
                "weights_checksum": potential.weights_checksum,
            }
            results = relaxer.relax([s for _, s in pairs], fix_symmetry=fixed)
        relaxed = {rec.candidate_id: res for (rec, _), res in zip(pairs, results, strict=True)}

        def update(record: CandidateRecord, _: Any) -> tuple[CandidateRecord, Any]:
            result = relaxed[record.candidate_id]
            return self._update(record, result), result.structure

        records, structures = carry_rejected(previous, update)
        n_converged = sum(bool(r.converged) for r in results)
        return finish_document(
            self.stage,
            previous.campaign,
            previous.batch_id,
            records,
            structures,
            provenance,
            n_converged=n_converged,
            chgnet_steps=sum(int(r.n_steps or 0) for r in results),
        )

    def _update(self, record: CandidateRecord, result: Any) -> CandidateRecord:
        if result.rejected_reason is not None:
            return record.reject(f"relaxation: {result.rejected_reason}")
        de, rmsd = _finite(result.de), _finite(result.rmsd)
        energy = _finite(result.final_energy_per_atom)
        potential = result.potential or record.potential
        if self.stage == "relaxed":
            return record.advance(
                self.stage,
                de_uncond=de,
                rmsd_uncond=rmsd,
                energy_per_atom=energy,
                potential=potential,
            )
        return record.advance(
            self.stage,
            de_inpaint=de,
            rmsd_inpaint=rmsd,
            energy_per_atom=energy,
            symmetry_held=result.symmetry_held,
            potential=potential,
        )


def relax_inpainted_maker(**kwargs: Any) -> RelaxMaker:
    """The relaxation after inpainting (one definition for both modes and the spec)."""
    return RelaxMaker(name="relax inpainted", stage=Stage.RELAXED_INPAINT, **kwargs)
