"""Unconditional generation of a batch of candidates (GPU job)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from jobflow import Maker
from pymatgen.core import Composition

from makers.provenance import start_provenance
from makers.schemas import CandidateRecord, CandidateSeed, StageDocument, finish_document, stage_job

#: Pearson-symbol letter -> crystal family (hR is the rhombohedral lattice, "trigonal").
_FAMILIES = {
    "a": "triclinic",
    "m": "monoclinic",
    "o": "orthorhombic",
    "t": "tetragonal",
    "hP": "hexagonal",
    "hR": "trigonal",
    "c": "cubic",
}


def crystal_family(pearson: str) -> str:
    """Crystal family of a Pearson symbol (``"hR"`` -> ``"trigonal"``, ``"cF"`` -> ``"cubic"``)."""
    return _FAMILIES.get(pearson[:2], _FAMILIES.get(pearson[:1], pearson))


@lru_cache(maxsize=2)
def score_model(checkpoint: str | None, device: str) -> Any:
    """The score model, loaded once per worker process and checkpoint."""
    from chggen_flows.core.model import load_score_model

    return load_score_model(checkpoint, device=device)


def volume_hull(reference: str | None, composition: Composition) -> Any:
    """The reference hull whose known phases give V0, or None (then the regression)."""
    from chggen_flows.errors import ChggenError

    if reference is None or reference in ("mp", "mp-r2scan"):
        return None
    try:
        return _provider(reference).phase_diagram([el.symbol for el in composition.elements])
    except ChggenError:  # no set for this system: the regression answers
        return None


@lru_cache(maxsize=4)
def _provider(reference: str) -> Any:
    from chggen_flows.core.stability import get_reference

    return get_reference(reference)


def checkpoint_path(checkpoint: str | None) -> str:
    """The checkpoint actually used (the shipped one when None), for provenance."""
    from chggen_flows.core.model import default_checkpoint_path

    return str(checkpoint or default_checkpoint_path())


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
        ``auto``, ``cpu`` or ``cuda``.
    sampler
        Keyword arguments of :class:`chggen_flows.core.generation.SamplerSettings`.
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
    sampler: dict[str, Any] = field(default_factory=dict)
    v0: float | None = None
    reference: str | None = "offline"

    @stage_job()
    def make(self, campaign: str, batch_id: str, seeds: Sequence[CandidateSeed]) -> StageDocument:
        """Generate one candidate per seed; invalid ones are kept, marked with the reason."""
        from chggen_flows.core.device import resolve_device
        from chggen_flows.core.generation import (
            GenerationRequest,
            SamplerSettings,
            estimate_v0,
            generate,
            sample_lattice,
        )

        device = str(resolve_device(self.device))
        checkpoint = checkpoint_path(self.checkpoint)
        provenance = start_provenance(
            "generated",
            {"sampler": self.sampler, "v0": self.v0, "n_seeds": len(seeds)},
            seeds=[s.seed for s in seeds],
            checkpoint=checkpoint,
            device=device,
        )
        requests, lattice_types, v0s = [], [], []
        lattices: dict[int, tuple[Any, str]] = {}
        v0_cache: dict[str, Any] = {}
        for seed in seeds:
            comp = Composition(seed.composition)
            if seed.composition not in v0_cache:
                hull = None if self.v0 is not None else volume_hull(self.reference, comp)
                v0_cache[seed.composition] = estimate_v0(comp, None, self.v0, hull)
            v0 = v0_cache[seed.composition]
            natoms = int(comp.num_atoms) * seed.formula_units
            if seed.lattice_seed not in lattices:
                rng = np.random.default_rng(seed.lattice_seed)
                lattices[seed.lattice_seed] = sample_lattice(natoms * v0.volume_per_atom, rng)
            lattice, kind = lattices[seed.lattice_seed]
            requests.append(
                GenerationRequest(comp, seed.formula_units, lattice=lattice, seed=seed.seed)
            )
            lattice_types.append(crystal_family(kind))
            v0s.append(v0)
        model = score_model(self.checkpoint, device)
        generated = generate(requests, model, SamplerSettings(**self.sampler), device=device)

        records, structures = [], []
        for seed, candidate, kind, v0 in zip(seeds, generated, lattice_types, v0s, strict=True):
            comp = candidate.structure.composition
            record = CandidateRecord(
                campaign=campaign,
                candidate_id=seed.candidate_id,
                formula=comp.formula,
                reduced_formula=comp.reduced_formula,
                chemsys=comp.chemical_system,
                natoms=len(candidate.structure),
                formula_units=seed.formula_units,
                lattice_type=kind,
                seed=seed.seed,
                volume_per_atom=v0.volume_per_atom,
                v0_source=v0.label,
            )
            if not candidate.valid:
                record = record.reject(f"generation: {candidate.reason}")
            records.append(record)
            structures.append(candidate.structure)
        return finish_document("generated", campaign, batch_id, records, structures, provenance)
