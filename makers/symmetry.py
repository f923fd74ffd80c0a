"""Final space group of each relaxed, inpainted candidate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jobflow import Maker

from chggen_flows.core.symmetry import PAPER_ANGLE_TOLERANCE, PAPER_SYMPREC
from chggen_flows.makers.provenance import start_provenance
from chggen_flows.makers.schemas import (
    CandidateRecord,
    Stage,
    StageDocument,
    carry_rejected,
    finish_document,
    stage_job,
)


@dataclass
class SymmetryMaker(Maker):
    """Classify the symmetry of every valid candidate at a small tolerance.

    A candidate is ``symmetric`` (the paper's success criterion) when its space group at
    ``symprec`` / ``angle_tolerance`` is neither P1 nor P-1.

    Parameters
    ----------
    name
        Job name.
    symprec
        Distance tolerance in A (paper: 0.1).
    angle_tolerance
        Angle tolerance in degrees (paper: 10).
    """

    name: str = "symmetry"
    symprec: float = PAPER_SYMPREC
    angle_tolerance: float = PAPER_ANGLE_TOLERANCE

    @stage_job()
    def make(self, previous: StageDocument) -> StageDocument:
        """Add ``spacegroup_number``, ``spacegroup_symbol`` and ``symmetric`` to each record."""
        from chggen_flows.core.symmetry import classify_symmetry

        provenance = start_provenance(
            Stage.CLASSIFIED, {"symprec": self.symprec, "angle_tolerance": self.angle_tolerance}
        )

        def classify(record: CandidateRecord, structure: Any) -> tuple[CandidateRecord, Any]:
            info = classify_symmetry(
                structure, symprec=self.symprec, angle_tolerance=self.angle_tolerance
            )
            advanced = record.advance(
                Stage.CLASSIFIED,
                spacegroup_number=info.number,
                spacegroup_symbol=info.symbol,
                symmetric=info.symmetric,
            )
            return advanced, structure

        records, structures = carry_rejected(previous, classify)
        return finish_document(
            Stage.CLASSIFIED,
            previous.campaign,
            previous.batch_id,
            records,
            structures,
            provenance,
            n_symmetric=sum(bool(r.symmetric) for r in records),
        )
