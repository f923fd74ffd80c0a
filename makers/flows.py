"""Flow makers chaining the CHGGen stages, and the routing of their jobs to workers.

``CHGGenMaker`` is the unconditional pipeline (generate -> relax -> framework -> inpaint
-> relax -> symmetry per batch, then E_d over all batches and the DFT gate);
``HostModeMaker`` starts from a user's host and guests (inpaint -> relax -> symmetry ->
E_d -> gate), the paper's intercalation use case.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from jobflow import Flow, Job, Maker
from pymatgen.core import Structure

from makers.ehull import EhullMaker
from makers.framework import FrameworkMaker, HostFrameworkMaker
from makers.generate import GenerateMaker
from makers.inpaint import InpaintMaker
from makers.relax import RelaxMaker
from makers.schemas import CandidateSeed
from makers.symmetry import SymmetryMaker


@dataclass
class StageRouting:
    """The FireWorks ``_category`` of each stage's jobs (``gpu``, ``cpu`` or ``vasp``).

    The generation and inpainting jobs want a GPU, the relaxations run well on either,
    symmetry and E_d are light CPU work, and the jobs the DFT gate adds are VASP runs.
    """

    generate: str = "gpu"
    relax: str = "cpu"
    framework: str = "cpu"
    inpaint: str = "gpu"
    symmetry: str = "cpu"
    ehull: str = "cpu"
    dft: str = "vasp"

    @classmethod
    def stages(cls) -> list[str]:
        """Names of the routed stages."""
        return [f.name for f in fields(cls)]


def route(job: Job, category: str, stage: str, batch: str | None = None) -> Job:
    """Send ``job`` to workers of ``category`` and tag it with its stage and batch.

    ``dynamic=False``: the category belongs to this job only. Jobs it creates at run time
    (the DFT gate's VASP flows) must not inherit it; they get their own category from the
    gate maker.
    """
    job.update_config({"manager_config": {"_category": category}}, dynamic=False)
    job.update_metadata({"stage": stage, **({"batch": batch} if batch else {})}, dynamic=False)
    return job


def _tail(
    first: Job,
    makers: dict[str, Maker],
    routing: StageRouting,
    batch_id: str,
) -> list[Job]:
    """inpaint -> relax -> symmetry for one batch, starting from a framework job."""
    inpaint = route(makers["inpaint"].make(first.output), routing.inpaint, "inpainted", batch_id)
    relax = route(
        makers["relax_inpaint"].make(inpaint.output), routing.relax, "relaxed_inpaint", batch_id
    )
    symmetry = route(
        makers["symmetry"].make(relax.output), routing.symmetry, "classified", batch_id
    )
    return [inpaint, relax, symmetry]


def _finish(
    jobs: list[Job],
    finals: list[Job],
    campaign: str,
    ehull_maker: EhullMaker,
    dft: Maker | None,
    routing: StageRouting,
    name: str,
) -> Flow:
    ehull = route(ehull_maker.make([j.output for j in finals], campaign), routing.ehull, "ehull")
    jobs.append(ehull)
    if dft is not None:
        # The gate itself is light CPU work. The VASP jobs it adds carry the DFT category
        # set by the gate maker (``worker_category``); the gate does not pass its own
        # manager config on (``pass_manager_config=False``), so nothing leaks.
        jobs.append(route(dft.make(ehull.output.shortlist), routing.ehull, "dft"))
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
        Worker category per stage.
    """

    name: str = "chggen"
    generate: GenerateMaker = field(default_factory=GenerateMaker)
    relax: RelaxMaker = field(default_factory=RelaxMaker)
    framework: FrameworkMaker = field(default_factory=FrameworkMaker)
    inpaint: InpaintMaker = field(default_factory=InpaintMaker)
    relax_inpaint: RelaxMaker = field(
        default_factory=lambda: RelaxMaker(name="relax inpainted", stage="relaxed_inpaint")
    )
    symmetry: SymmetryMaker = field(default_factory=SymmetryMaker)
    ehull: EhullMaker = field(default_factory=EhullMaker)
    dft: Maker | None = None
    routing: StageRouting = field(default_factory=StageRouting)

    def make(self, campaign: str, batches: list[list[CandidateSeed]]) -> Flow:
        """One chain of stage jobs per batch of seeds, then E_d and the DFT gate."""
        jobs: list[Job] = []
        finals: list[Job] = []
        for index, seeds in enumerate(batches):
            batch_id = f"b{index:04d}"
            r = self.routing
            gen = route(
                self.generate.make(campaign, batch_id, seeds), r.generate, "generated", batch_id
            )
            relax = route(self.relax.make(gen.output), r.relax, "relaxed", batch_id)
            frame = route(self.framework.make(relax.output), r.framework, "framework", batch_id)
            tail = _tail(frame, vars(self), r, batch_id)
            jobs.extend([gen, relax, frame, *tail])
            finals.append(tail[-1])
        return _finish(jobs, finals, campaign, self.ehull, self.dft, self.routing, self.name)


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
        Worker category per stage.
    """

    name: str = "chggen host"
    inpaint: InpaintMaker = field(default_factory=InpaintMaker)
    relax_inpaint: RelaxMaker = field(
        default_factory=lambda: RelaxMaker(name="relax inpainted", stage="relaxed_inpaint")
    )
    symmetry: SymmetryMaker = field(default_factory=SymmetryMaker)
    ehull: EhullMaker = field(default_factory=EhullMaker)
    dft: Maker | None = None
    routing: StageRouting = field(default_factory=StageRouting)

    def make(
        self,
        campaign: str,
        host: Structure,
        guests: dict[str, int],
        batches: list[list[str]],
    ) -> Flow:
        """One chain per batch of candidate ids, all inpainting ``guests`` into ``host``."""
        jobs: list[Job] = []
        finals: list[Job] = []
        for index, ids in enumerate(batches):
            batch_id = f"b{index:04d}"
            start = HostFrameworkMaker().make(campaign, batch_id, host, guests, ids)
            route(start, self.routing.framework, "framework", batch_id)
            tail = _tail(start, vars(self), self.routing, batch_id)
            jobs.extend([start, *tail])
            finals.append(tail[-1])
        return _finish(jobs, finals, campaign, self.ehull, self.dft, self.routing, self.name)
