"""Flow makers chaining the CHGGen stages, and the routing of their jobs to workers.

``CHGGenMaker`` is the unconditional pipeline (generate -> relax -> framework -> inpaint
-> relax -> symmetry per batch, then E_d over all batches and the DFT gate);
``HostModeMaker`` starts from a user's host and guests (inpaint -> relax -> symmetry ->
E_d -> gate), the paper's intercalation use case.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

from jobflow import Flow, Job, Maker
from pymatgen.core import Structure

from chggen_flows.makers.adapt import AdaptMaker
from chggen_flows.makers.baseline import BaselineMaker
from chggen_flows.makers.ehull import EhullMaker
from chggen_flows.makers.framework import FrameworkMaker, HostFrameworkMaker
from chggen_flows.makers.generate import GenerateMaker
from chggen_flows.makers.host_source import HostSourceMaker, HostTarget
from chggen_flows.makers.inpaint import InpaintMaker
from chggen_flows.makers.orderings import ORDERING_KINDS, OrderingMaker
from chggen_flows.makers.relax import RelaxMaker, relax_inpainted_maker
from chggen_flows.makers.schemas import CandidateSeed, Stage
from chggen_flows.makers.stages import DEFAULT_ROUTING, resolve_routing
from chggen_flows.makers.substitution import SubstitutionMaker
from chggen_flows.makers.symmetry import SymmetryMaker

__all__ = [
    "DEFAULT_ROUTING",  # the stage table's, re-exported where the flows are built
    "CHGGenMaker",
    "HostModeMaker",
    "relax_inpainted_maker",
    "resolve_routing",
    "route",
]


def route(job: Job, category: str, stage: str, batch: str | None = None) -> Job:
    """Send ``job`` to workers of ``category`` and tag it with its stage and batch.

    ``dynamic=False``: the category belongs to this job only. Jobs it creates at run time
    (the DFT gate's VASP flows) must not inherit it; they get their own category from the
    gate maker.
    """
    job.update_config({"manager_config": {"_category": category}}, dynamic=False)
    tags = {"stage": str(stage), **({"batch": batch} if batch else {})}
    job.update_metadata(tags, dynamic=False)
    return job


#: The ``stage`` tag of the adapt job (it leaves no candidate records).
ADAPT_STAGE = "adapt"


def _adapt_job(
    adapt: AdaptMaker | None, campaign: str, system: str | None, routing: Mapping[str, str]
) -> Job | None:
    """The campaign's adapt job (before every generate and inpaint job), or None."""
    if adapt is None:
        return None
    if not system:
        raise ValueError("an adapt maker needs the campaign's chemical system")
    return route(adapt.make(campaign, system), routing["adapt"], ADAPT_STAGE)


def _adapted(adapt: Job | None) -> dict:
    """The keyword argument that hands the adapt job's output to a generate or inpaint
    job; none without adaptation (so those jobs are exactly as before)."""
    return {} if adapt is None else {"adapted": adapt.output}


def _tail(
    first: Job,
    inpaint: InpaintMaker,
    relax_inpaint: RelaxMaker,
    symmetry: SymmetryMaker,
    routing: Mapping[str, str],
    batch_id: str,
    adapt: Job | None = None,
) -> list[Job]:
    """inpaint -> relax -> symmetry for one batch, starting from a framework job."""
    painted = route(
        inpaint.make(first.output, **_adapted(adapt)), routing["inpaint"], Stage.INPAINTED, batch_id
    )
    relaxed = route(
        relax_inpaint.make(painted.output), routing["relax"], Stage.RELAXED_INPAINT, batch_id
    )
    classified = route(
        symmetry.make(relaxed.output), routing["symmetry"], Stage.CLASSIFIED, batch_id
    )
    return [painted, relaxed, classified]


def _plain_arm(
    first: Job,
    relax: RelaxMaker,
    symmetry: SymmetryMaker,
    routing: Mapping[str, str],
    batch_id: str,
    arm: str,
) -> list[Job]:
    """relax -> symmetry after a job whose structures are final (no inpainting): the
    baselines' chain, every job tagged with its arm."""
    relaxed = route(relax.make(first.output), routing["relax"], Stage.RELAXED, batch_id)
    sym = route(symmetry.make(relaxed.output), routing["symmetry"], Stage.CLASSIFIED, batch_id)
    jobs = [first, relaxed, sym]
    for j in jobs:
        j.update_metadata({"arm": arm}, dynamic=False)
    return jobs


def _finish(
    jobs: list[Job],
    finals: list[Job],
    campaign: str,
    ehull_maker: EhullMaker,
    dft: Maker | None,
    routing: Mapping[str, str],
    name: str,
) -> Flow:
    ehull = route(
        ehull_maker.make([j.output for j in finals], campaign), routing["ehull"], Stage.EHULL
    )
    jobs.append(ehull)
    if dft is not None:
        # The gate is routed as ``dft_gate``; the VASP jobs it adds at run time as
        # ``dft``, through the gate maker's ``worker_category`` (the gate does not pass
        # its own manager config on, ``pass_manager_config=False``, so nothing leaks).
        if hasattr(dft, "worker_category"):
            dft = dataclasses.replace(dft, worker_category=routing["dft"])
        jobs.append(route(dft.make(ehull.output.shortlist), routing["dft_gate"], Stage.DFT))
    return Flow(jobs, output=ehull.output, name=name)


@dataclass
class CHGGenMaker(Maker):
    """The unconditional CHGGen pipeline over batches of candidates.

    Parameters
    ----------
    name
        Flow name.
    generate, relax, framework, inpaint, relax_inpaint, symmetry, ehull
        The stage makers.
    dft
        The DFT gate maker (``makers.dft.DFTGateMaker``) or None to stop at E_d.
    routing
        Worker category overrides per routing key (the stage table,
        :mod:`chggen_flows.makers.stages`, gives the rest).
    baseline
        The random-search arm's maker (a spec's ``baseline`` section) or None.
    hosts
        The host arms' maker (a spec's ``hosts`` section) or None.
    substitution
        The plain-substitution arm's maker; None: made from ``hosts``' settings.
    adapt
        The adaptation maker (a spec's ``model.adapt``), or None: its job runs first and
        every generate and inpaint job (the host arms' too) uses the model it made.
    """

    name: str = "chggen"
    generate: GenerateMaker = field(default_factory=GenerateMaker)
    relax: RelaxMaker = field(default_factory=RelaxMaker)
    framework: FrameworkMaker = field(default_factory=FrameworkMaker)
    inpaint: InpaintMaker = field(default_factory=InpaintMaker)
    relax_inpaint: RelaxMaker = field(default_factory=relax_inpainted_maker)
    symmetry: SymmetryMaker = field(default_factory=SymmetryMaker)
    ehull: EhullMaker = field(default_factory=EhullMaker)
    dft: Maker | None = None
    routing: dict[str, str] = field(default_factory=dict)
    baseline: BaselineMaker | None = None
    hosts: HostSourceMaker | None = None
    substitution: SubstitutionMaker | None = None
    adapt: AdaptMaker | None = None

    def make(
        self,
        campaign: str,
        batches: list[list[CandidateSeed]],
        baseline_batches: list[list[CandidateSeed]] | None = None,
        host_targets: list[HostTarget] | None = None,
        system: str | None = None,
    ) -> Flow:
        """One chain of stage jobs per batch of seeds, then E_d and the DFT gate.

        With a ``baseline`` maker, each batch of ``baseline_batches`` becomes a
        random-search chain (baseline -> relax -> symmetry) that joins the same E_d job.
        With a ``hosts`` maker, the host arms its settings name run for every
        ``host_targets`` entry (composition, formula units) and join it too.
        With an ``adapt`` maker, one adapt job for ``system`` (e.g. ``"Li-Si"``) comes
        first and hands its model to every generate and inpaint job.
        """
        jobs: list[Job] = []
        finals: list[Job] = []
        r = resolve_routing(self.routing)
        adapt = _adapt_job(self.adapt, campaign, system, r)
        if adapt is not None:
            jobs.append(adapt)
        for index, seeds in enumerate(batches):
            batch_id = f"b{index:04d}"
            gen = route(
                self.generate.make(campaign, batch_id, seeds, **_adapted(adapt)),
                r["generate"],
                Stage.GENERATED,
                batch_id,
            )
            relax = route(self.relax.make(gen.output), r["relax"], Stage.RELAXED, batch_id)
            frame = route(
                self.framework.make(relax.output), r["framework"], Stage.FRAMEWORK, batch_id
            )
            tail = _tail(frame, self.inpaint, self.relax_inpaint, self.symmetry, r, batch_id, adapt)
            jobs.extend([gen, relax, frame, *tail])
            finals.append(tail[-1])
        if self.baseline is not None:
            for index, seeds in enumerate(baseline_batches or []):
                batch_id = f"r{index:04d}"
                base = route(
                    self.baseline.make(campaign, batch_id, seeds),
                    r["baseline"],
                    Stage.GENERATED,
                    batch_id,
                )
                chain = _plain_arm(base, self.relax, self.symmetry, r, batch_id, "baseline")
                jobs.extend(chain)
                finals.append(chain[-1])
        if self.hosts is not None and host_targets:
            self._host_arms(campaign, host_targets, r, jobs, finals, adapt)
        return _finish(jobs, finals, campaign, self.ehull, self.dft, r, self.name)

    def _host_arms(
        self,
        campaign: str,
        targets: list[HostTarget],
        r: Mapping[str, str],
        jobs: list[Job],
        finals: list[Job],
        adapt: Job | None = None,
    ) -> None:
        """The host arms of a spec's ``hosts`` section: one chain per arm over every
        target (host source -> inpaint -> relax -> symmetry; substitution -> relax ->
        symmetry), joining the same E_d job."""
        assert self.hosts is not None
        arms = self.hosts.hosts.arms
        for index, kind in enumerate(k for k in ("analogue", "frameworks") if k in arms):
            batch_id = f"h{index:04d}"
            start = route(
                self.hosts.make(campaign, batch_id, kind, targets),
                r["hosts"],
                Stage.FRAMEWORK,
                batch_id,
            )
            tail = _tail(start, self.inpaint, self.relax_inpaint, self.symmetry, r, batch_id, adapt)
            for j in (start, *tail):
                j.update_metadata({"arm": f"hosts:{kind}"}, dynamic=False)
            jobs.extend([start, *tail])
            finals.append(tail[-1])
        if "substitution" in arms:
            maker = self.substitution or SubstitutionMaker(
                hosts=self.hosts.hosts,
                guests=self.hosts.guests,
                v0=self.hosts.v0,
                reference=self.hosts.reference,
                seed=self.hosts.seed,
            )
            start = route(
                maker.make(campaign, "s0000", targets), r["substitution"], Stage.GENERATED, "s0000"
            )
            chain = _plain_arm(start, self.relax, self.symmetry, r, "s0000", "substitution")
            jobs.extend(chain)
            finals.append(chain[-1])


@dataclass
class HostModeMaker(Maker):
    """Host mode: a given host plus guests -> inpainting -> relax -> symmetry -> E_d -> gate.

    Parameters
    ----------
    name
        Flow name.
    inpaint, relax_inpaint, symmetry, ehull
        The stage makers.
    dft
        The DFT gate maker or None.
    routing
        Worker category overrides per routing key (the stage table,
        :mod:`chggen_flows.makers.stages`, gives the rest).
    relax
        The relaxation of the ordering baselines' structures.
    orderings
        A disordered host's baselines (Ewald, enumeration) or None.
    adapt
        The adaptation maker, or None (as in :class:`CHGGenMaker`).
    """

    name: str = "chggen host"
    inpaint: InpaintMaker = field(default_factory=InpaintMaker)
    relax_inpaint: RelaxMaker = field(default_factory=relax_inpainted_maker)
    symmetry: SymmetryMaker = field(default_factory=SymmetryMaker)
    ehull: EhullMaker = field(default_factory=EhullMaker)
    dft: Maker | None = None
    routing: dict[str, str] = field(default_factory=dict)
    relax: RelaxMaker = field(default_factory=RelaxMaker)
    orderings: OrderingMaker | None = None
    adapt: AdaptMaker | None = None

    def make(
        self,
        campaign: str,
        host: Structure,
        guests: dict[str, int],
        batches: list[list[str]],
        disordered: Structure | None = None,
        host_source: dict | None = None,
        system: str | None = None,
    ) -> Flow:
        """One chain per batch of candidate ids, all inpainting ``guests`` into ``host``
        (after an adapt job for ``system`` with an ``adapt`` maker).

        For a disordered host (``disordered``: the user's structure, ``host`` and
        ``guests`` its ordered split on the supercell, ``host_source`` how it was
        split), the candidates are arm ``hosts:disordered``, and with an ``orderings``
        maker its Ewald and enumeration baselines run on the same supercell
        (orderings -> relax -> symmetry) and join the same E_d job.
        """
        jobs: list[Job] = []
        finals: list[Job] = []
        r = resolve_routing(self.routing)
        adapt = _adapt_job(self.adapt, campaign, system, r)
        if adapt is not None:
            jobs.append(adapt)
        extra = (
            {} if disordered is None else {"arm": "hosts:disordered", "host_source": host_source}
        )
        for index, ids in enumerate(batches):
            batch_id = f"b{index:04d}"
            start = HostFrameworkMaker().make(campaign, batch_id, host, guests, ids, **extra)
            route(start, r["framework"], Stage.FRAMEWORK, batch_id)
            tail = _tail(start, self.inpaint, self.relax_inpaint, self.symmetry, r, batch_id, adapt)
            jobs.extend([start, *tail])
            finals.append(tail[-1])
        if disordered is not None and self.orderings is not None:
            prefix = batches[0][0].rsplit("-S", 1)[0] if batches and batches[0] else "host"
            for index, kind in enumerate(ORDERING_KINDS):
                if (kind == "ewald" and not self.orderings.ewald) or (
                    kind == "enumeration" and not self.orderings.enumeration_limit
                ):
                    continue
                batch_id = f"o{index:04d}"
                start = route(
                    self.orderings.make(campaign, batch_id, disordered, kind, prefix),
                    r["orderings"],
                    Stage.GENERATED,
                    batch_id,
                )
                chain = _plain_arm(start, self.relax, self.symmetry, r, batch_id, kind)
                jobs.extend(chain)
                finals.append(chain[-1])
        return _finish(jobs, finals, campaign, self.ehull, self.dft, r, self.name)
