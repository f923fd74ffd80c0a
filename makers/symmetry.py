"""Final space group of each relaxed, inpainted candidate."""

from __future__ import annotations

from dataclasses import dataclass

from jobflow import Maker, job

from makers.framework import ANGLE_TOLERANCE, SYMPREC
from makers.provenance import start_provenance
from makers.schemas import StageDocument, finish_document


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
    symprec: float = SYMPREC
    angle_tolerance: float = ANGLE_TOLERANCE

    @job(data="structures", output_schema=StageDocument)
    def make(self, previous: StageDocument) -> StageDocument:
        """Add ``spacegroup_number``, ``spacegroup_symbol`` and ``symmetric`` to each record."""
        from chggen_flows.core.symmetry import classify_symmetry

        provenance = start_provenance(
            "classified", {"symprec": self.symprec, "angle_tolerance": self.angle_tolerance}
        )
        records = []
        for record, structure in zip(previous.candidates, previous.structures, strict=True):
            if not record.valid or structure is None:
                records.append(record)
                continue
            info = classify_symmetry(
                structure, symprec=self.symprec, angle_tolerance=self.angle_tolerance
            )
            records.append(
                record.advance(
                    "classified",
                    spacegroup_number=info.number,
                    spacegroup_symbol=info.symbol,
                    symmetric=info.symmetric,
                )
            )
        return finish_document(
            "classified",
            previous.campaign,
            previous.batch_id,
            records,
            list(previous.structures),
            provenance,
            n_symmetric=sum(bool(r.symmetric) for r in records),
        )
