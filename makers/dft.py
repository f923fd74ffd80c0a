"""Gated r2SCAN DFT through atomate2, and the r2SCAN E_d of its results.

:class:`DFTGateMaker` makes a job that, when it runs, picks the candidates with an
E_d (from the campaign's potential) below the threshold, optionally re-relaxes and
re-ranks them with an r2SCAN-level potential (the pre-screen, ``prescreen_potential:
chgnet-r2scan``), and adds one atomate2 Materials Project meta-GGA
(r2SCAN) relax + static flow per candidate to the running workflow (jobflow
``Response(addition=...)``), followed by an :class:`R2SCANEdMaker` job that computes
their r2SCAN E_d against an r2SCAN reference. Because the decision is taken at run
time, the gate works inside a campaign whose E_d values do not exist yet when the
campaign is submitted.

Candidate input (:class:`DFTCandidate`): ``candidate_id`` (str), ``structure``
(pymatgen Structure or its dict) and ``e_d`` (E_d from the campaign's potential,
eV/atom); plain dicts with these keys are accepted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from atomate2.vasp.flows.mp import MPMetaGGADoubleRelaxStaticMaker
from atomate2.vasp.powerups import update_user_incar_settings, update_user_kpoints_settings
from jobflow import Flow, Job, Maker, Response, job
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pymatgen.core import Structure
from pymatgen.entries.computed_entries import ComputedEntry

from chggen_flows.core.relax.potentials import check_potential
from chggen_flows.core.relax.records import RelaxSettings
from chggen_flows.core.stability import (
    R2SCAN,
    EdRecord,
    EntriesReference,
    ReferenceProvider,
    check_reference_potential,
    compute_e_d,
    get_reference,
)
from chggen_flows.errors import InputError, ReferenceDataError
from chggen_flows.makers.schemas import DEFAULT_DFT_THRESHOLD, CandidateRecord, Stage

DEFAULT_THRESHOLD = DEFAULT_DFT_THRESHOLD  # eV/atom (kept as this module's name for it)


class DFTCandidate(BaseModel):
    """A candidate offered to the DFT gate."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    candidate_id: str
    structure: Structure
    e_d: float = Field(
        description="E_d from the campaign's potential against that potential's hull, eV/atom"
    )
    record: CandidateRecord | None = Field(
        None, description="The candidate's campaign record (the E_d stage's), if any."
    )

    @field_validator("structure", mode="before")
    @classmethod
    def _structure(cls, value: Any) -> Structure:
        return Structure.from_dict(value) if isinstance(value, dict) else value


class Prescreen(BaseModel):
    """The gate's pre-screen: the shortlist re-relaxed and ranked by another potential.

    With ``chgnet-r2scan`` the candidates sent to r2SCAN VASP are ranked on an
    r2SCAN-level E_d (against the same potential's hull), i.e. on the functional the
    DFT will use, and start VASP from that potential's relaxed structure.
    """

    potential: str = Field(description="potential that re-relaxed the shortlist")
    reference: str = Field(description="its hull, e.g. 'offline-chgnet-r2scan (r2SCAN)'")
    threshold: float | None = Field(
        None, description="eV/atom on the pre-screen's scale; None ranks without dropping"
    )
    e_d: dict[str, float] = Field(
        default_factory=dict, description="candidate id -> pre-screen E_d, eV/atom"
    )
    dropped: dict[str, str] = Field(
        default_factory=dict, description="candidate id -> why the pre-screen dropped it"
    )


class GateDecision(BaseModel):
    """What the gate did (the gate job's own output).

    Like every stage's document it carries the records of the candidates it moved on
    (``stage`` ``dft``, ``dft_state`` ``WAITING``) and their structures, so readers take
    the DFT state from the records instead of patching it in.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    threshold: float | None
    selected: list[str] = Field(
        description="candidate ids sent to r2SCAN, lowest E_d first (the pre-screen's E_d "
        "when there is one)"
    )
    skipped: list[str] = Field(
        description="candidate ids at or above the threshold, dropped by the pre-screen or "
        "beyond max_candidates"
    )
    prescreen: Prescreen | None = Field(None, description="the pre-screen, when configured")
    reference_phases: int = Field(0, description="reference phases run with r2SCAN too")
    stage: str = Stage.DFT.value
    candidates: list[CandidateRecord] = Field(default_factory=list)
    structures: list[Structure | None] = Field(default_factory=list)


class R2SCANEdDoc(EdRecord):
    """r2SCAN E_d of one candidate (the :class:`R2SCANEdMaker` job's output items)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    candidate_id: str
    energy: float = Field(description="r2SCAN total energy of the final static, eV")
    structure: Structure


class R2SCANEdDocument(BaseModel):
    """Output of the r2SCAN E_d job: one result per candidate and, where the gate passed
    them on, the candidates' records at ``dft_state`` ``COMPLETED`` with ``e_d_r2scan``."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    stage: str = Stage.DFT.value
    results: list[R2SCANEdDoc]
    candidates: list[CandidateRecord] = Field(default_factory=list)
    structures: list[Structure | None] = Field(default_factory=list)


def as_candidates(candidates: Sequence[DFTCandidate | dict[str, Any]]) -> list[DFTCandidate]:
    """Validate gate input (dicts or :class:`DFTCandidate`); InputError when malformed."""
    try:
        return [DFTCandidate.model_validate(c) for c in candidates]
    except ValueError as exc:
        raise InputError(
            f"invalid DFT gate candidates: {exc}",
            hint="each candidate needs candidate_id, structure and e_d",
        ) from exc


@dataclass
class R2SCANEdMaker(Maker):
    """Job computing r2SCAN E_d from atomate2 outputs against an r2SCAN reference.

    Parameters
    ----------
    name
        Job name.
    reference
        ``"mp-r2scan"`` (Materials Project r2SCAN entries, needs ``MP_API_KEY`` on the
        worker), the path of an r2SCAN entries file (JSON or CSV; read as r2SCAN unless
        its entries' ``run_type`` says otherwise, which is refused), or ``None`` to use
        only the campaign's own r2SCAN runs of reference phases.
    cache_dir
        Disk cache of MP responses on the worker.
    """

    name: str = "r2SCAN E_d"
    reference: str | None = "mp-r2scan"
    cache_dir: str | None = None

    @job(data="structures")
    def make(
        self,
        candidate_ids: list[str],
        energies: list[float],
        structures: list[Structure],
        reference_energies: list[float] | None = None,
        reference_structures: list[Structure] | None = None,
        records: list[CandidateRecord] | None = None,
    ) -> R2SCANEdDocument:
        """r2SCAN E_d of each candidate (inputs are the static runs' outputs).

        Parameters
        ----------
        candidate_ids, energies, structures
            One per candidate: id, final r2SCAN total energy (eV) and structure.
        reference_energies, reference_structures
            The campaign's own r2SCAN runs of reference phases (added to the reference).
        records
            The candidates' campaign records (from the gate), completed here.
        """
        own = [
            ComputedEntry(
                s.composition, e, entry_id=f"campaign-r2scan-{i}", parameters={"run_type": "r2SCAN"}
            )
            for i, (e, s) in enumerate(
                zip(reference_energies or [], reference_structures or [], strict=True)
            )
        ]
        elements = sorted({el.symbol for s in structures for el in s.composition.elements})
        if self.reference is None:
            provider = EntriesReference(own, "campaign-r2scan", R2SCAN)
        else:
            # A file given as the r2SCAN reference is read as r2SCAN unless its entries
            # say otherwise (then it is refused below or by the file reader).
            base = get_reference(
                self.reference,
                cache_dir=self.cache_dir and Path(self.cache_dir),
                functional=R2SCAN,
            )
            if base.functional != R2SCAN:
                raise ReferenceDataError(
                    f"reference {base.label!r} is {base.functional}, not r2SCAN",
                    hint="use mp-r2scan or an r2SCAN entries file for the DFT stage",
                )
            label = base.label + ("+campaign-r2scan" if own else "")
            provider = EntriesReference(base.entries(elements) + own, label, R2SCAN)
        ed = compute_e_d(
            [(s.composition, e / len(s)) for s, e in zip(structures, energies, strict=True)],
            provider,
        )
        results = [
            R2SCANEdDoc(**rec.model_dump(), candidate_id=cid, energy=e, structure=s)
            for rec, cid, e, s in zip(ed, candidate_ids, energies, structures, strict=True)
        ]
        by_id = {r.candidate_id: r for r in results}
        # records arrive as dicts when the job was read back from the LaunchPad
        records = [CandidateRecord.model_validate(r) for r in records or []]
        completed = [
            record.advance(
                Stage.DFT, dft_state="COMPLETED", e_d_r2scan=by_id[record.candidate_id].e_d
            )
            for record in records
            if record.candidate_id in by_id
        ]
        return R2SCANEdDocument(
            results=results,
            candidates=completed,
            structures=[by_id[r.candidate_id].structure for r in completed],
        )


@dataclass
class DFTGateMaker(Maker):
    """Send candidates below an E_d threshold to r2SCAN (atomate2 MP meta-GGA makers).

    Parameters
    ----------
    name
        Name of the gate job.
    threshold
        Candidates with ``e_d < threshold`` (eV/atom) get DFT. The paper used 0.1;
        its discussion (and docs/dft.md) recommends 0.03.
    max_candidates
        At most this many (lowest E_d first); ``None`` for all.
    dft_maker
        atomate2 flow maker for one candidate (relax + static); default
        ``MPMetaGGADoubleRelaxStaticMaker`` (PBEsol pre-relax, r2SCAN relax, r2SCAN
        static).
    incar_updates, kpoints_updates
        User INCAR / KPOINTS settings applied with atomate2's powerups.
    worker_category
        FireWorks category of the VASP jobs (``manager_config["_category"]``), so they
        run on a VASP worker; ``None`` leaves them unrouted.
    ed_maker
        Computes the r2SCAN E_d of the results; ``None`` to skip.
    prescreen_potential
        Re-relax the candidates below the threshold with this potential and rank them on
        its E_d against its own hull before ``max_candidates`` is applied; the VASP
        runs start from its relaxed structures. ``"chgnet-r2scan"`` ranks on the
        functional the DFT uses. ``None`` (default): rank on the given E_d.
    prescreen_threshold
        Drop candidates whose pre-screen E_d is at or above this (eV/atom, on the
        pre-screen potential's scale); ``None`` ranks without dropping.
    prescreen_reference
        The pre-screen's hull: ``"offline"`` (the potential's offline hull, built on
        first use), ``"mp-r2scan"`` or an entries file on the potential's functional.
    prescreen_relax
        Relaxation settings of the pre-screen (their ``potential`` is replaced by
        ``prescreen_potential``, a checkpoint path dropped).
    """

    name: str = "r2SCAN gate"
    threshold: float | None = DEFAULT_THRESHOLD
    max_candidates: int | None = None
    dft_maker: Maker = field(default_factory=MPMetaGGADoubleRelaxStaticMaker)
    incar_updates: dict[str, Any] = field(default_factory=dict)
    kpoints_updates: dict[str, Any] = field(default_factory=dict)
    worker_category: str | None = "vasp"
    ed_maker: R2SCANEdMaker | None = field(default_factory=R2SCANEdMaker)
    prescreen_potential: str | None = None
    prescreen_threshold: float | None = None
    prescreen_reference: str = "offline"
    prescreen_relax: RelaxSettings = field(default_factory=RelaxSettings)

    def __post_init__(self) -> None:
        if self.threshold is not None and not math.isfinite(self.threshold):
            raise InputError(f"invalid E_d threshold {self.threshold!r}", hint="e.g. 0.03 eV/atom")
        if self.max_candidates is not None and self.max_candidates < 0:
            raise InputError(f"max_candidates must be >= 0, got {self.max_candidates}")
        if self.prescreen_potential is not None:
            check_potential(self.prescreen_potential)
        if self.prescreen_threshold is not None and not math.isfinite(self.prescreen_threshold):
            raise InputError(
                f"invalid pre-screen threshold {self.prescreen_threshold!r}",
                hint="e.g. 0.1 eV/atom, or leave it out to rank only",
            )

    def make(
        self,
        candidates: Sequence[DFTCandidate | dict[str, Any]],
        reference_structures: Sequence[Structure] | None = None,
    ) -> Job:
        """The gate job; it decides at run time which candidates get DFT.

        Parameters
        ----------
        candidates
            :class:`DFTCandidate` records or dicts (or an OutputReference to them).
        reference_structures
            Reference phases of the system to run with the same r2SCAN settings, so the
            r2SCAN hull is the campaign's own (optional).

        Returns
        -------
        Job
            Outputs a :class:`GateDecision`; adds the DFT flows and the E_d job.
        """
        gate = self.gate(candidates, list(reference_structures or []))
        gate.name = self.name
        # The gate's own manager config (e.g. a CPU worker set by the campaign) must not
        # be copied onto the VASP jobs it adds: they carry their own category.
        gate.config.pass_manager_config = False
        return gate

    @job(data="structures")
    def gate(
        self,
        candidates: Sequence[DFTCandidate | dict[str, Any]],
        reference_structures: list[Structure],
    ) -> Response:
        """Run-time body of the gate (see :meth:`make`)."""
        records = as_candidates(candidates)
        # threshold None: the candidates were chosen upstream (a campaign's E_d job
        # shortlists them), so the threshold is applied once
        below = sorted(
            (c for c in records if self.threshold is None or c.e_d < self.threshold),
            key=lambda c: c.e_d,
        )
        prescreen = None
        if self.prescreen_potential is not None and below:
            below, prescreen = self._prescreen(below)
        selected = below[: self.max_candidates] if self.max_candidates is not None else below
        chosen = {c.candidate_id for c in selected}
        waiting = [c for c in selected if c.record is not None]
        decision = GateDecision(
            threshold=self.threshold,
            selected=[c.candidate_id for c in selected],
            skipped=[c.candidate_id for c in records if c.candidate_id not in chosen],
            prescreen=prescreen,
            reference_phases=len(reference_structures) if selected else 0,
            candidates=[c.record.advance(Stage.DFT, dft_state="WAITING") for c in waiting],
            structures=[c.structure for c in waiting],
        )
        if not selected:
            return Response(output=decision)

        maker = self._configured_dft_maker()
        flows = [self._dft_flow(maker, c.structure, f"r2SCAN {c.candidate_id}") for c in selected]
        ref_flows = [
            self._dft_flow(maker, s, f"r2SCAN reference {s.composition.reduced_formula}")
            for s in reference_structures
        ]
        jobs: list[Flow | Job] = [*flows, *ref_flows]
        output = None
        if self.ed_maker is not None:
            ed_job = self.ed_maker.make(
                candidate_ids=[c.candidate_id for c in selected],
                energies=[f.output.output.energy for f in flows],
                structures=[f.output.structure for f in flows],
                reference_energies=[f.output.output.energy for f in ref_flows],
                reference_structures=[f.output.structure for f in ref_flows],
                records=decision.candidates,
            )
            jobs.append(ed_job)
            output = ed_job.output
        return Response(output=decision, addition=Flow(jobs, output=output, name="r2SCAN DFT"))

    def prescreen_provider(self) -> ReferenceProvider:
        """The pre-screen's hull, checked against its potential (built on first use)."""
        assert self.prescreen_potential is not None
        provider = get_reference(self.prescreen_reference, potential=self.prescreen_potential)
        check_reference_potential(self.prescreen_potential, provider)
        return provider

    def _prescreen(self, candidates: list[DFTCandidate]) -> tuple[list[DFTCandidate], Prescreen]:
        """Re-relax ``candidates`` with the pre-screen potential; rank them on its E_d."""
        from chggen_flows.core.relax import BatchRelaxer

        potential = self.prescreen_potential
        provider = self.prescreen_provider()
        settings = self.prescreen_relax.model_copy(
            update={"potential": potential, "model_path": None}
        )
        with BatchRelaxer(settings) as relaxer:
            relaxed = relaxer.relax([c.structure for c in candidates], progress=False)
        report = Prescreen(
            potential=potential,
            reference=f"{provider.label} ({provider.functional})",
            threshold=self.prescreen_threshold,
        )
        ok = [(c, r) for c, r in zip(candidates, relaxed, strict=True) if r.ok]
        for c, r in zip(candidates, relaxed, strict=True):
            if not r.ok:
                report.dropped[c.candidate_id] = f"not relaxed: {r.rejected_reason}"
        ed = compute_e_d(
            [(r.structure.composition, r.final_energy_per_atom) for _, r in ok],
            provider,
            potential=potential,
        )
        kept = []
        for (c, r), e in zip(ok, ed, strict=True):
            report.e_d[c.candidate_id] = e.e_d
            if self.prescreen_threshold is not None and e.e_d >= self.prescreen_threshold:
                report.dropped[c.candidate_id] = (
                    f"pre-screen E_d {e.e_d:+.3f} >= {self.prescreen_threshold} eV/atom"
                )
                continue
            kept.append(c.model_copy(update={"structure": r.structure}))
        kept.sort(key=lambda c: report.e_d[c.candidate_id])
        return kept, report

    def _configured_dft_maker(self) -> Maker:
        maker = self.dft_maker
        if self.incar_updates:
            maker = update_user_incar_settings(maker, self.incar_updates)
        if self.kpoints_updates:
            maker = update_user_kpoints_settings(maker, self.kpoints_updates)
        return maker

    def _dft_flow(self, maker: Maker, structure: Structure, name: str) -> Flow:
        flow = maker.make(structure)
        flow.name = name
        if self.worker_category:
            flow.update_config(
                {"manager_config": {"_category": self.worker_category}},
                attributes="manager_config",
            )
        return flow
