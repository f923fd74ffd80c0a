"""The random-search arm of a campaign: PyXtal (or random-position) structures for the
same compositions and cells as the generative arm (CPU job)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from jobflow import Maker
from pymatgen.core import Composition

from chggen_flows.core.baseline.random_search import BaselineSettings
from chggen_flows.makers.generate import generated_record, seed_requests
from chggen_flows.makers.provenance import start_provenance
from chggen_flows.makers.schemas import (
    CandidateRecord,
    CandidateSeed,
    Stage,
    StageDocument,
    baseline_arm,
    finish_document,
    stage_job,
)


@dataclass
class BaselineMaker(Maker):
    """Random-search candidates for a batch of seeds, shaped like generated ones.

    Each seed gives one structure from :func:`chggen_flows.core.baseline.random_search`
    at the campaign's V0 (the same known phases or regression as the generative arm), so
    the relaxation, symmetry and E_d jobs treat both arms alike.

    Parameters
    ----------
    name
        Job name.
    baseline
        The random search's settings (a spec's ``baseline`` section: ``kind``:
        ``pyxtal`` or ``random_positions``, ``spacegroups``, ...).
    v0
        Volume per atom override (A^3/atom); None: as the generative arm.
    reference
        The campaign's E_d reference, whose known phases give V0.
    """

    name: str = "baseline"
    baseline: BaselineSettings = field(default_factory=BaselineSettings)
    v0: float | None = None
    reference: str | None = "offline"

    def __post_init__(self) -> None:
        self.baseline = BaselineSettings.coerce(self.baseline)  # a stored Maker's dict

    @stage_job()
    def make(self, campaign: str, batch_id: str, seeds: Sequence[CandidateSeed]) -> StageDocument:
        """One random structure per seed; a seed PyXtal cannot fill is kept, rejected."""
        from chggen_flows.core.baseline import random_search
        from chggen_flows.errors import InputError

        settings = self.baseline
        arm = baseline_arm(settings.kind)
        provenance = start_provenance(
            Stage.GENERATED,
            {"baseline": self.baseline.given(), "v0": self.v0, "n_seeds": len(seeds)},
            seeds=[s.seed for s in seeds],
        )
        requests, hull = seed_requests(seeds, self.v0, self.reference)
        records, structures = [], []
        for seed, request in zip(seeds, requests, strict=True):
            comp = Composition(seed.composition)
            base = {
                "campaign": campaign,
                "candidate_id": seed.candidate_id,
                "reduced_formula": comp.reduced_formula,
                "chemsys": comp.chemical_system,
                "formula_units": seed.formula_units,
                "seed": seed.seed,
                "arm": arm,
            }
            try:
                (candidate,) = random_search([request], settings, phase_diagram=hull)
            except InputError as exc:  # every PyXtal attempt failed for this cell
                cell = comp * seed.formula_units
                record = CandidateRecord(formula=cell.formula, natoms=int(cell.num_atoms), **base)
                records.append(record.reject(f"baseline: {exc.message}"))
                structures.append(None)
                continue
            lattice = candidate.metadata.get("lattice_type")
            records.append(generated_record(campaign, seed, candidate, lattice, arm, "baseline"))
            structures.append(candidate.structure)
        return finish_document(
            Stage.GENERATED, campaign, batch_id, records, structures, provenance, arm=arm
        )
