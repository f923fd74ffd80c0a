"""From a validated spec to a jobflow Flow: candidates, batches, stage makers, routing.

The fan-out is compositions x formula units x lattices x candidates per lattice; the
candidate list is cut into batches of ``spec.batch_size`` and every batch becomes one
chain of stage jobs (generate -> relax -> framework -> inpaint -> relax -> symmetry),
so the number of jobs grows with the number of batches, not of candidates. One E_d job
gathers all batches and feeds the DFT gate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from jobflow import Flow
from pymatgen.core import Composition, Structure

from chggen_flows.campaign.spec import CampaignSpec
from chggen_flows.errors import InputError
from chggen_flows.makers.baseline import BaselineMaker
from chggen_flows.makers.ehull import EhullMaker
from chggen_flows.makers.flows import (
    CHGGenMaker,
    HostModeMaker,
    relax_inpainted_maker,
    resolve_routing,
)
from chggen_flows.makers.framework import FrameworkMaker
from chggen_flows.makers.generate import GenerateMaker
from chggen_flows.makers.inpaint import InpaintMaker
from chggen_flows.makers.provenance import derived_seed
from chggen_flows.makers.relax import RelaxMaker
from chggen_flows.makers.schemas import CandidateSeed
from chggen_flows.makers.symmetry import SymmetryMaker


def candidate_seeds(spec: CampaignSpec) -> list[CandidateSeed]:
    """Every candidate of an unconditional campaign, in a stable order."""
    seeds = []
    for formula in spec.all_compositions():
        for n in spec.formula_units:
            for lattice in range(spec.lattices_per_composition):
                lattice_key = f"{formula}-fu{n}-L{lattice:03d}"
                for sample in range(spec.candidates_per_lattice):
                    cid = f"{lattice_key}-S{sample:03d}"
                    seeds.append(
                        CandidateSeed(
                            candidate_id=cid,
                            composition=formula,
                            formula_units=n,
                            lattice_index=lattice,
                            sample_index=sample,
                            lattice_seed=derived_seed(spec.seed, lattice_key),
                            seed=derived_seed(spec.seed, cid),
                        )
                    )
    return seeds


def baseline_seeds(spec: CampaignSpec) -> list[CandidateSeed]:
    """The random-search arm's candidates: one per generative candidate, same composition,
    formula units and lattice seed (``random_positions`` uses the same lattices), ids
    ``<id>-<kind>`` with their own seeds. Empty without a ``baseline`` section."""
    if spec.baseline is None:
        return []
    kind = spec.baseline.get("kind", "pyxtal")
    return [
        seed.model_copy(
            update={
                "candidate_id": f"{seed.candidate_id}-{kind}",
                "seed": derived_seed(spec.seed, f"{seed.candidate_id}-{kind}"),
            }
        )
        for seed in candidate_seeds(spec)
    ]


def host_candidate_ids(spec: CampaignSpec, host: Structure) -> list[str]:
    """Ids of a host-mode campaign's candidates (host formula + guests + index)."""
    assert spec.host is not None
    guests = "".join(f"{el}{n}" for el, n in spec.host.guests.items())
    prefix = f"{host.composition.reduced_formula}+{guests}"
    return [f"{prefix}-S{i:04d}" for i in range(spec.host.n_candidates)]


#: At most this many batches per campaign: each batch is 6 FireWorks jobs (5 in host
#: mode), and the LaunchPad's cost grows with the job count, so a 10^5-candidate
#: campaign is 2,402 jobs in batches of 250 rather than 3,002 in batches of 200.
MAX_BATCHES = 400


def batch_size_for(n_candidates: int, requested: int) -> int:
    """The batch size used: the spec's, grown only where it would exceed MAX_BATCHES."""
    return max(requested, math.ceil(n_candidates / MAX_BATCHES))


def chunk(items: list, size: int) -> list[list]:
    """Consecutive slices of at most ``size`` items."""
    return [items[i : i + size] for i in range(0, len(items), size)]


def read_host(path: str) -> Structure:
    """The host structure of a host-mode spec (CIF, POSCAR or pymatgen JSON)."""
    try:
        return Structure.from_file(path)
    except Exception as exc:  # pymatgen raises many types for unreadable files
        raise InputError(f"cannot read host structure {path}: {exc}") from exc


@dataclass
class CampaignPlan:
    """The Flow of a campaign and what it holds."""

    flow: Flow
    n_candidates: int
    n_batches: int
    chemsys: str

    @property
    def n_jobs(self) -> int:
        """Jobs in the Flow at submission (DFT jobs are added later, dynamically)."""
        return len(self.flow.jobs)


def routing(spec: CampaignSpec) -> dict[str, str]:
    """The worker category of each stage: the routing table with the spec's overrides."""
    return resolve_routing(spec.routing)


def stage_makers(spec: CampaignSpec) -> dict:
    """The stage makers configured from the spec (shared by both modes)."""
    model = {"checkpoint": spec.model.checkpoint, "device": spec.model.device}
    return {
        "inpaint": InpaintMaker(
            **model, sampler=spec.sampler, inpaint=spec.inpaint, seed=spec.seed
        ),
        "relax_inpaint": relax_inpainted_maker(relax=spec.relax, device=spec.model.device),
        "symmetry": SymmetryMaker(),
        "ehull": EhullMaker(
            reference=spec.stability.reference, threshold=spec.stability.dft_threshold
        ),
    }


def build_flow(spec: CampaignSpec, campaign: str) -> CampaignPlan:
    """The campaign's Flow, with every job routed and tagged with the campaign id."""
    common = stage_makers(spec)
    dft = _dft_gate(spec)
    if spec.mode == "host":
        assert spec.host is not None
        host = read_host(spec.host.structure)
        ids = host_candidate_ids(spec, host)
        batches = chunk(ids, batch_size_for(len(ids), spec.batch_size))
        maker = HostModeMaker(**common, dft=dft, routing=routing(spec))
        flow = maker.make(campaign, host, spec.host.guests, batches)
        chemsys = (host.composition + Composition(spec.host.guests)).chemical_system
        n_candidates = len(ids)
    else:
        seeds = candidate_seeds(spec)
        batches = chunk(seeds, batch_size_for(len(seeds), spec.batch_size))
        baseline = baseline_seeds(spec)
        baseline_batches = chunk(baseline, batch_size_for(len(baseline), spec.batch_size))
        model = {"checkpoint": spec.model.checkpoint, "device": spec.model.device}
        maker = CHGGenMaker(
            generate=GenerateMaker(
                **model,
                sampler=spec.sampler,
                v0=spec.v0.value,
                reference=spec.stability.reference,
            ),
            relax=RelaxMaker(relax=spec.relax, device=spec.model.device),
            framework=FrameworkMaker(guests=spec.guests, framework=spec.framework),
            **common,
            dft=dft,
            routing=routing(spec),
            baseline=None
            if spec.baseline is None
            else BaselineMaker(
                baseline=spec.baseline,
                v0=spec.v0.value,
                reference=spec.stability.reference,
            ),
        )
        flow = maker.make(campaign, batches, baseline_batches)
        elements = sorted({el.symbol for f in spec.all_compositions() for el in Composition(f)})
        chemsys = "-".join(elements)
        n_candidates = len(seeds) + len(baseline)
    flow.update_metadata({"campaign": campaign})
    return CampaignPlan(
        flow=flow, n_candidates=n_candidates, n_batches=len(batches), chemsys=chemsys
    )


def _dft_gate(spec: CampaignSpec):
    """The DFT gate maker, or None when the spec turns DFT off."""
    if not spec.stability.dft or spec.stability.dft_max_candidates == 0:
        return None
    from chggen_flows.makers.dft import DFTGateMaker

    return DFTGateMaker(
        # the E_d job applies dft_threshold (its shortlist); the gate takes that list
        threshold=None,
        max_candidates=spec.stability.dft_max_candidates,
        worker_category=spec.category("dft"),
    )
