"""From a validated spec to a jobflow Flow, top to bottom, in one pass.

:func:`build_flow` reads the spec once: :func:`stage_makers` turns its typed sections
into the stage Makers (each carries the core settings object its job uses),
:func:`candidate_batches` turns the search into candidate seeds and batches, and one
campaign Maker of ``makers/flows.py`` (:class:`CHGGenMaker`, or :class:`HostModeMaker`
in host mode) composes them into the Flow, routing every job by the stage table
(``makers/stages.py``) with the spec's ``routing`` overrides.

The fan-out is compositions x formula units x lattices x candidates per lattice; the
candidate list is cut into batches of ``spec.batch_size`` and every batch becomes one
chain of stage jobs (generate -> relax -> framework -> inpaint -> relax -> symmetry),
so the number of jobs grows with the number of batches, not of candidates. One E_d job
gathers all batches and feeds the DFT gate.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from jobflow import Flow, Maker
from pymatgen.core import Composition, Structure

from chggen_flows.campaign.spec import CampaignSpec
from chggen_flows.errors import InputError
from chggen_flows.makers.adapt import AdaptMaker
from chggen_flows.makers.baseline import BaselineMaker
from chggen_flows.makers.ehull import EhullMaker
from chggen_flows.makers.flows import CHGGenMaker, HostModeMaker
from chggen_flows.makers.framework import FrameworkMaker
from chggen_flows.makers.generate import GenerateMaker
from chggen_flows.makers.host_source import HostSourceMaker, HostTarget, host_info
from chggen_flows.makers.inpaint import InpaintMaker
from chggen_flows.makers.orderings import OrderingMaker
from chggen_flows.makers.provenance import derived_seed
from chggen_flows.makers.relax import RelaxMaker, relax_inpainted_maker
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
    kind = spec.baseline.kind
    return [
        seed.model_copy(
            update={
                "candidate_id": f"{seed.candidate_id}-{kind}",
                "seed": derived_seed(spec.seed, f"{seed.candidate_id}-{kind}"),
            }
        )
        for seed in candidate_seeds(spec)
    ]


def host_targets(spec: CampaignSpec) -> list[HostTarget]:
    """The host arms' targets: every composition x formula units (empty without a
    ``hosts`` section)."""
    if spec.hosts is None:
        return []
    return [
        {"composition": formula, "formula_units": n}
        for formula in spec.all_compositions()
        for n in spec.formula_units
    ]


def host_candidate_ids(
    spec: CampaignSpec, host: Structure, guests: dict[str, int] | None = None
) -> list[str]:
    """Ids of a host-mode campaign's candidates (host formula + guests + index)."""
    assert spec.host is not None
    guests = "".join(f"{el}{n}" for el, n in (guests or spec.host.guests or {}).items())
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
class CandidateBatches:
    """What a campaign searches, cut into batches (one chain of stage jobs each).

    ``batches`` holds candidate seeds (unconditional) or candidate ids (host mode, whose
    ``host`` and ``guests`` are set); ``baseline_batches`` the random-search arm's seeds.
    """

    batches: list[list[Any]]
    n_candidates: int
    chemsys: str
    baseline_batches: list[list[CandidateSeed]] = field(default_factory=list)
    host: Structure | None = None
    guests: dict[str, int] | None = None
    disordered: Structure | None = None
    host_source: dict[str, Any] | None = None
    host_targets: list[HostTarget] = field(default_factory=list)


def candidate_batches(spec: CampaignSpec) -> CandidateBatches:
    """The campaign's candidates in batches of (about) ``spec.batch_size``."""
    if spec.mode == "host":
        assert spec.host is not None
        given = read_host(spec.host.structure)
        host, guests, disordered, info = split_host(given, spec)
        ids = host_candidate_ids(spec, host, guests)
        return CandidateBatches(
            batches=chunk(ids, batch_size_for(len(ids), spec.batch_size)),
            n_candidates=len(ids),
            chemsys=(host.composition + Composition(guests)).chemical_system,
            host=host,
            guests=guests,
            disordered=disordered,
            host_source=info,
        )
    seeds, baseline = candidate_seeds(spec), baseline_seeds(spec)
    elements = sorted({el.symbol for f in spec.all_compositions() for el in Composition(f)})
    return CandidateBatches(
        batches=chunk(seeds, batch_size_for(len(seeds), spec.batch_size)),
        # the host arms' candidates are counted at run time (templates found then)
        n_candidates=len(seeds) + len(baseline),
        chemsys="-".join(elements),
        baseline_batches=chunk(baseline, batch_size_for(len(baseline), spec.batch_size)),
        host_targets=host_targets(spec),
    )


def split_host(
    structure: Structure, spec: CampaignSpec
) -> tuple[Structure, dict[str, int], Structure | None, dict[str, Any] | None]:
    """Host, guests, the disordered structure (or None) and the split's provenance of a
    host-mode spec: an ordered host takes the spec's guests; a disordered one gives its
    own (``core.hosts.host_from_structure``)."""
    from chggen_flows.core.hosts import host_from_structure

    assert spec.host is not None
    seed = host_from_structure(structure, spec.host.guests, spec.host.max_supercell)
    if seed.kind == "given":
        return seed.host, seed.guests, None, None
    return seed.host, seed.guests, structure, host_info(seed)


def stage_makers(spec: CampaignSpec) -> dict[str, Maker | None]:
    """Every stage Maker the spec configures, by the campaign Makers' field names.

    The one place a spec section reaches a Maker: each gets the typed settings object
    of its section (no dicts in between). ``dft`` is None when the spec turns DFT off;
    ``baseline`` without a ``baseline`` section, ``hosts`` without a ``hosts`` section,
    ``orderings`` without a ``host`` section.
    """
    model = {"checkpoint": spec.model.checkpoint, "device": spec.model.device}
    relax = {"relax": spec.relax, "device": spec.model.device}
    reference = spec.stability.reference
    return {
        "generate": GenerateMaker(
            **model, sampler=spec.sampler, v0=spec.v0.value, reference=reference
        ),
        "relax": RelaxMaker(**relax),
        "framework": FrameworkMaker(guests=spec.guests, framework=spec.framework),
        "inpaint": InpaintMaker(
            **model, sampler=spec.sampler, inpaint=spec.inpaint, seed=spec.seed
        ),
        "relax_inpaint": relax_inpainted_maker(**relax),
        "symmetry": SymmetryMaker(),
        "ehull": EhullMaker(reference=reference, threshold=spec.stability.dft_threshold),
        "dft": _dft_gate(spec),
        "baseline": None
        if spec.baseline is None
        else BaselineMaker(baseline=spec.baseline, v0=spec.v0.value, reference=reference),
        "hosts": None
        if spec.hosts is None
        else HostSourceMaker(
            hosts=spec.hosts,
            guests=spec.guests,
            v0=spec.v0.value,
            reference=reference,
            seed=spec.seed,
        ),
        "orderings": None
        if spec.host is None
        else OrderingMaker(
            max_supercell=spec.host.max_supercell,
            ewald=spec.host.ewald,
            enumeration_limit=spec.host.enumeration_limit,
        ),
        "adapt": _adapt_maker(spec),
    }


def _adapt_maker(spec: CampaignSpec) -> AdaptMaker | None:
    """The adaptation maker of a ``model.adapt`` section (None without one): it adapts
    ``model.checkpoint`` (the campaign's base model) on the model's device unless the
    section names its own."""
    adapt = spec.model.adapt
    if adapt is None:
        return None
    given = adapt.given()
    sources = given.pop("source")
    device = given.pop("device", spec.model.device)
    return AdaptMaker(sources=sources, base=spec.model.checkpoint, settings=given, device=device)


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


def _campaign_maker(cls: type, makers: dict[str, Any], routing: dict[str, str]) -> Any:
    """``cls`` (a campaign Maker) built from the stage makers it has fields for."""
    fields = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in makers.items() if k in fields}, routing=routing)


def build_flow(spec: CampaignSpec, campaign: str) -> CampaignPlan:
    """The campaign's Flow, with every job routed and tagged with the campaign id."""
    makers = stage_makers(spec)
    candidates = candidate_batches(spec)
    if candidates.host is not None:
        host_mode = _campaign_maker(HostModeMaker, makers, spec.routing)
        flow = host_mode.make(
            campaign,
            candidates.host,
            candidates.guests,
            candidates.batches,
            disordered=candidates.disordered,
            host_source=candidates.host_source,
            system=candidates.chemsys,
        )
    else:
        chggen = _campaign_maker(CHGGenMaker, makers, spec.routing)
        flow = chggen.make(
            campaign,
            candidates.batches,
            candidates.baseline_batches,
            host_targets=candidates.host_targets,
            system=candidates.chemsys,
        )
    flow.update_metadata({"campaign": campaign})
    return CampaignPlan(
        flow=flow,
        n_candidates=candidates.n_candidates,
        n_batches=len(candidates.batches),
        chemsys=candidates.chemsys,
    )


def _dft_gate(spec: CampaignSpec) -> Maker | None:
    """The DFT gate maker, or None when the spec turns DFT off."""
    if not spec.stability.dft or spec.stability.dft_max_candidates == 0:
        return None
    from chggen_flows.makers.dft import DFTGateMaker
    from chggen_flows.makers.relax import relax_settings

    # the E_d job applies dft_threshold (its shortlist); the gate takes that list. Its
    # VASP jobs' category is the campaign Maker's to set (routing key ``dft``).
    stability = spec.stability
    prescreen: dict[str, Any] = {}
    if stability.dft_prescreen_potential is not None:
        # the pre-screen relaxes as the campaign does (same fmax, steps, device)
        prescreen = {
            "prescreen_potential": stability.dft_prescreen_potential,
            "prescreen_threshold": stability.dft_prescreen_threshold,
            "prescreen_relax": relax_settings(spec.relax, spec.model.device),
        }
    return DFTGateMaker(threshold=None, max_candidates=stability.dft_max_candidates, **prescreen)
