"""Host arms of a campaign: hosts from a structure source (analogue templates) or random
symmetric frameworks, each to receive the target's guests by inpainting (CPU job).

The job's output is a framework-stage document, like the framework job of the
generative arm, so the same inpaint -> relax -> symmetry chain and the same E_d job
follow. The search itself (:func:`analogue_search`) is shared with the plain-substitution
arm (``makers/substitution.py``), which must see the same templates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from jobflow import Maker
from pymatgen.core import Composition

from chggen_flows.core.hosts.settings import HostSourceSettings
from chggen_flows.makers.generate import volume_hull
from chggen_flows.makers.provenance import derived_seed, start_provenance
from chggen_flows.makers.schemas import (
    CandidateRecord,
    Stage,
    StageDocument,
    finish_document,
    host_arm,
    stage_job,
)

#: One target of the host arms: a composition (reduced formula) and formula units.
HostTarget = dict[str, Any]


def target_prefix(target: HostTarget) -> str:
    """The candidate-id prefix of a target: ``ZnPS3-fu2``."""
    return f"{target['composition']}-fu{int(target['formula_units'])}"


def target_v0(composition: str, v0: float | None, reference: str | None) -> float:
    """The campaign's V0 for ``composition``: the override, else the reference's known
    phases, else the element-volume regression (as the generative arm's cells)."""
    from chggen_flows.core.generation.volume import estimate_v0

    comp = Composition(composition)
    hull = None if v0 is not None else volume_hull(reference, comp)
    return estimate_v0(comp, override=v0, phase_diagram=hull).volume_per_atom


def load_templates(settings: HostSourceSettings) -> list[Any]:
    """The known structures of ``settings.source`` that pass its filters."""
    from chggen_flows.core.sources import SourceFilter, load_structures

    query = SourceFilter.build(
        include_elements=settings.include_elements,
        exclude_elements=settings.exclude_elements,
        exclude_formulas=settings.exclude_formulas,
        related_to=settings.related_to,
        max_e_above_hull=settings.max_e_above_hull,
    )
    return load_structures(list(settings.source or ()), query)


def analogue_search(
    target: HostTarget,
    entries: Sequence[Any],
    settings: HostSourceSettings,
    guests: Sequence[str],
    v0: float,
) -> Any:
    """The ranked analogue hosts of one target (``core.hosts.find_analogue_hosts``)."""
    from chggen_flows.core.hosts import AnalogueTarget, find_analogue_hosts

    analogue = AnalogueTarget.build(
        target["composition"], int(target["formula_units"]), guests=list(guests) or None
    )
    return find_analogue_hosts(
        analogue,
        entries,
        v0=v0,
        max_templates=settings.max_templates,
        max_linear_strain=settings.max_linear_strain,
        max_atoms=settings.max_atoms,
    )


def host_record(
    campaign: str,
    candidate_id: str,
    target: HostTarget,
    formula: Composition,
    arm: str,
    seed: int,
    **fields: Any,
) -> CandidateRecord:
    """The first record of a host-arm candidate (its cell's composition ``formula``)."""
    return CandidateRecord(
        campaign=campaign,
        candidate_id=candidate_id,
        formula=formula.formula,
        reduced_formula=formula.reduced_formula,
        chemsys=formula.chemical_system,
        natoms=int(formula.num_atoms),
        formula_units=int(target["formula_units"]),
        arm=arm,
        seed=seed,
        **fields,
    )


def framework_record(
    campaign: str,
    candidate_id: str,
    target: HostTarget,
    seed_host: Any,
    arm: str,
    seed: int,
    v0: float,
    **fields: Any,
) -> CandidateRecord:
    """The framework-stage record of a host-arm candidate: its host (a ``HostSeed``)
    found at volume ``v0`` per atom, its guests still to inpaint."""
    full = seed_host.host.composition + Composition(seed_host.guests)
    return host_record(
        campaign, candidate_id, target, full, arm, seed,
        stage=Stage.FRAMEWORK.value, volume_per_atom=round(v0, 4), framework_found=True,
        guest_counts=dict(seed_host.guests), **fields,
    )  # fmt: skip


def no_host(
    campaign: str, target: HostTarget, arm: str, suffix: str, reason: str
) -> CandidateRecord:
    """A rejected record saying why a target got no host (so the results show it)."""
    comp = Composition(target["composition"]) * int(target["formula_units"])
    cid = f"{target_prefix(target)}-{suffix}"
    return host_record(campaign, cid, target, comp, arm, 0).reject(reason)


@dataclass
class HostArmMaker(Maker):
    """The settings every host arm's maker carries (:class:`HostSourceMaker`,
    :class:`~chggen_flows.makers.substitution.SubstitutionMaker`).

    Parameters
    ----------
    name
        Job name.
    hosts
        The host arms' settings (source, filters, caps).
    guests
        Guest species (a spec's ``guests``; empty: the most electropositive element).
    v0
        Volume per atom override (Å^3/atom); None: as the generative arm.
    reference
        The campaign's E_d reference, whose known phases give V0.
    seed
        The campaign's seed; each candidate's is derived from it and its id.
    """

    name: str = "host arm"
    # default: the arm that needs no source (the template arms need ``source``)
    hosts: HostSourceSettings = field(
        default_factory=lambda: HostSourceSettings(arms=("frameworks",))
    )
    guests: list[str] = field(default_factory=list)
    v0: float | None = None
    reference: str | None = "offline"
    seed: int = 0

    def __post_init__(self) -> None:
        self.hosts = HostSourceSettings.coerce(self.hosts)  # a stored Maker's dict


@dataclass
class HostSourceMaker(HostArmMaker):
    """Hosts for a batch of targets, ready for inpainting (a spec's ``hosts`` section).

    Parameters
    ----------
    name
        Job name.
    hosts, guests, v0, reference, seed
        As :class:`HostArmMaker`'s.
    """

    name: str = "host source"

    @stage_job()
    def make(
        self, campaign: str, batch_id: str, kind: str, targets: list[HostTarget]
    ) -> StageDocument:
        """Framework-stage records of arm ``hosts:<kind>`` (``analogue`` or
        ``frameworks``) for every target; a target without a host gets one rejected
        record with the reason."""
        arm = host_arm(kind)
        provenance = start_provenance(
            Stage.FRAMEWORK,
            {"hosts": self.hosts.given(), "kind": kind, "guests": self.guests, "v0": self.v0},
        )
        entries = load_templates(self.hosts) if kind == "analogue" else []
        records: list[CandidateRecord] = []
        structures: list[Any] = []
        for target in targets:
            v0 = target_v0(target["composition"], self.v0, self.reference)
            if kind == "analogue":
                made = self._analogue(campaign, target, entries, v0, arm)
            else:
                made = self._frameworks(campaign, target, v0, arm)
            for record, structure in made:
                records.append(record)
                structures.append(structure)
        return finish_document(
            Stage.FRAMEWORK,
            campaign,
            batch_id,
            records,
            structures,
            provenance,
            n_templates=len(entries),
            n_hosts=sum(r.valid for r in records),
        )

    def _analogue(
        self, campaign: str, target: HostTarget, entries: list[Any], v0: float, arm: str
    ) -> list[tuple[CandidateRecord, Any]]:
        search = analogue_search(target, entries, self.hosts, self.guests, v0)
        if not search.hosts:
            reasons = "; ".join(f"{s.material_id}: {s.reason}" for s in search.skipped[:3])
            reason = f"hosts: no template of {len(entries)} matches the framework"
            reason += f" ({reasons})" if reasons else ""
            return [(no_host(campaign, target, arm, "T--", reason), None)]
        out = []
        for host in search.hosts:
            for k in range(self.hosts.candidates_per_host):
                template_key = f"T{host.rank:02d}-{host.template['material_id']}"
                cid = f"{target_prefix(target)}-{template_key}-S{k:03d}"
                seed = derived_seed(self.seed, cid)
                structure, start = self._guest_start(host, seed)
                record = framework_record(
                    campaign, cid, target, host.seed, arm, seed, v0,
                    template=json_ready(host.template),
                    host_source=host_info(host.seed) | start,
                )  # fmt: skip
                out.append((record, structure))
        return out

    def _guest_start(self, host: Any, seed: int) -> tuple[Any, dict[str, Any]]:
        """The host structure an analogue candidate is inpainted in (carrying where its
        guests begin, with ``guest_start_sigma``) and what its record says about it."""
        from chggen_flows.core.hosts import template_guest_start

        sigma = self.hosts.guest_start_sigma
        if sigma is None:
            return host.seed.host, {}
        start = template_guest_start(host, sigma, seed)
        if isinstance(start, str):
            return host.seed.host, {"guest_start": f"prior ({start})"}
        return start.attach(host.seed.host), {"guest_start": f"template sites, sigma {sigma:g} A"}

    def _frameworks(
        self, campaign: str, target: HostTarget, v0: float, arm: str
    ) -> list[tuple[CandidateRecord, Any]]:
        from chggen_flows.core.hosts import AnalogueTarget, random_frameworks
        from chggen_flows.errors import InputError

        analogue = AnalogueTarget.build(
            target["composition"], int(target["formula_units"]), guests=self.guests or None
        )
        prefix = target_prefix(target)
        try:
            seeds = random_frameworks(
                analogue,
                self.hosts.frameworks_per_target,
                v0=v0,
                seed=derived_seed(self.seed, f"{prefix}-frameworks"),
                guest_start_sigma=self.hosts.guest_start_sigma,
            )
        except InputError as exc:
            return [(no_host(campaign, target, arm, "F---", f"hosts: {exc.message}"), None)]
        out = []
        for index, host in enumerate(seeds):
            cid = f"{prefix}-F{index:03d}"
            record = framework_record(
                campaign, cid, target, host, arm, derived_seed(self.seed, cid), v0,
                framework_spacegroup=host.info.get("framework_spacegroup_obtained"),
                host_source=host_info(host),
            )  # fmt: skip
            out.append((record, host.host))
        return out


def json_ready(info: dict[str, Any]) -> dict[str, Any]:
    """``info`` with numpy scalars and tuples made plain (records are stored as JSON)."""
    import json

    def plain(value: Any) -> Any:
        return value.item() if hasattr(value, "item") else str(value)

    return json.loads(json.dumps(info, default=plain))


def host_info(seed: Any) -> dict[str, Any]:
    """A host seed's provenance for the record's ``host_source`` (the template has its
    own field)."""
    return json_ready({k: v for k, v in seed.metadata().items() if k != "template"})
