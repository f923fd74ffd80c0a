"""Unconditional generation of a batch of candidates (GPU job)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from jobflow import Maker
from pymatgen.core import Composition

from chggen_flows.core.generation.settings import SamplerSettings
from chggen_flows.makers.provenance import start_provenance
from chggen_flows.makers.schemas import (
    CHGGEN_ARM,
    CandidateRecord,
    CandidateSeed,
    Stage,
    StageDocument,
    finish_document,
    stage_job,
)


@lru_cache(maxsize=2)
def score_model(checkpoint: str | None, device: str) -> Any:
    """The score model, loaded once per worker process and checkpoint."""
    from chggen_flows.core.model import load_score_model

    return load_score_model(checkpoint, device=device)


def volume_hull(reference: str | None, elements: Sequence[str] | Composition) -> Any:
    """The reference hull whose known phases give V0, or None (then the regression)."""
    from chggen_flows.errors import ChggenError

    if reference is None or reference in ("mp", "mp-r2scan"):
        return None
    try:
        if isinstance(elements, Composition):
            elements = [el.symbol for el in elements.elements]
        return _provider(reference).phase_diagram(list(elements))
    except ChggenError:  # no set for this system: the regression answers
        return None


def seed_requests(
    seeds: Sequence[CandidateSeed], v0: float | None, reference: str | None
) -> tuple[list[Any], Any]:
    """One ``GenerationRequest`` per seed and the hull that gives their V0 (or None).

    Both arms build their cells here, so a candidate and its baseline twin share the
    lattice seed, the formula units and the volume.
    """
    from chggen_flows.core.generation import GenerationRequest

    elements = sorted({el.symbol for seed in seeds for el in Composition(seed.composition)})
    hull = None if v0 is not None or not seeds else volume_hull(reference, elements)
    requests = [
        GenerationRequest(
            Composition(seed.composition),
            seed.formula_units,
            v0=v0,
            seed=seed.seed,
            lattice_seed=seed.lattice_seed,
        )
        for seed in seeds
    ]
    return requests, hull


@lru_cache(maxsize=4)
def _provider(reference: str) -> Any:
    from chggen_flows.core.stability import get_reference

    return get_reference(reference)


def generated_record(
    campaign: str,
    seed: CandidateSeed,
    candidate: Any,
    lattice_type: str | None,
    arm: str = CHGGEN_ARM,
    stage_label: str = "generation",
) -> CandidateRecord:
    """The first record of a candidate from its sampled structure (either arm)."""
    comp = candidate.structure.composition
    meta = candidate.metadata
    record = CandidateRecord(
        campaign=campaign,
        candidate_id=seed.candidate_id,
        formula=comp.formula,
        reduced_formula=comp.reduced_formula,
        chemsys=comp.chemical_system,
        natoms=len(candidate.structure),
        formula_units=seed.formula_units,
        lattice_type=lattice_type,
        seed=seed.seed,
        volume_per_atom=meta["v0"],
        v0_source=meta["v0_source"],
        arm=arm,
    )
    return record if candidate.valid else record.reject(f"{stage_label}: {candidate.reason}")


def checkpoint_path(checkpoint: str | None) -> str:
    """The checkpoint actually used (the shipped one when None), for provenance."""
    from chggen_flows.core.model import resolve_checkpoint

    return str(resolve_checkpoint(checkpoint))


@dataclass
class GenerateMaker(Maker):
    """Sample new structures for a batch of candidate seeds with the score model.

    Candidates that share a lattice seed (same composition, formula units and lattice
    index) are sampled in the same random Bravais lattice at volume ``natoms x V0``;
    each has its own sampling seed.

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
    v0
        Volume per atom override (A^3/atom); None estimates it per composition: from the
        known phases of ``reference`` where it holds any, else the element regression.
    reference
        The campaign's E_d reference (``offline`` or an entries file). Materials Project
        references are not asked here (GPU nodes often have no network): the
        regression is used.
    """

    name: str = "generate"
    checkpoint: str | None = None
    device: str = "auto"
    sampler: SamplerSettings = field(default_factory=SamplerSettings)
    v0: float | None = None
    reference: str | None = "offline"

    def __post_init__(self) -> None:
        self.sampler = SamplerSettings.coerce(self.sampler)  # a stored Maker's plain dict

    @stage_job()
    def make(
        self,
        campaign: str,
        batch_id: str,
        seeds: Sequence[CandidateSeed],
        adapted: dict[str, Any] | None = None,
    ) -> StageDocument:
        """Generate one candidate per seed; invalid ones are kept, marked with the reason.

        ``adapted`` is the campaign's adapt job output (a ``model.adapt`` section): the
        model it adapted (or, on a fallback, the base) is used and named in the
        provenance.
        """
        from chggen_flows.core.device import resolve_device
        from chggen_flows.core.generation import generate
        from chggen_flows.makers.adapt import adaptation_inputs

        device = str(resolve_device(self.device))
        setting, adaptation = adaptation_inputs(self.checkpoint, adapted)
        checkpoint = checkpoint_path(setting)
        provenance = start_provenance(
            "generated",
            {
                "sampler": self.sampler.given(),
                "v0": self.v0,
                "n_seeds": len(seeds),
                **adaptation,
            },
            seeds=[s.seed for s in seeds],
            checkpoint=checkpoint,
            device=device,
        )
        # The core draws each lattice from the seed's lattice seed, so the candidates of
        # one lattice share it, and records V0 and its source once.
        requests, hull = seed_requests(seeds, self.v0, self.reference)
        model = score_model(setting, device)
        generated = generate(requests, model, self.sampler, device=device, phase_diagram=hull)

        records = [
            generated_record(campaign, seed, candidate, candidate.metadata["crystal_system"])
            for seed, candidate in zip(seeds, generated, strict=True)
        ]
        structures = [candidate.structure for candidate in generated]
        return finish_document(
            Stage.GENERATED,
            campaign,
            batch_id,
            records,
            structures,
            provenance,
            model_calls=sum(int(c.metadata.get("model_calls", 0)) for c in generated),
        )
