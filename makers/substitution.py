"""The plain-substitution arm: the analogue templates' exchangeable cations replaced one
for one by the target's guests, no inpainting (CPU job; the baseline of every analogue
host, so a campaign answers "did inpainting beat plain ion exchange?")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pymatgen.core import Composition

from chggen_flows.makers.host_source import (
    HostArmMaker,
    HostTarget,
    analogue_search,
    host_record,
    json_ready,
    load_templates,
    no_host,
    target_prefix,
    target_v0,
)
from chggen_flows.makers.provenance import derived_seed, start_provenance
from chggen_flows.makers.schemas import (
    CandidateRecord,
    Stage,
    StageDocument,
    baseline_arm,
    finish_document,
    stage_job,
)

#: The arm of the plain-substitution candidates.
SUBSTITUTION_ARM = baseline_arm("substitution")


@dataclass
class SubstitutionMaker(HostArmMaker):
    """Generated-stage records of the templates the analogue arm uses, ion-exchanged.

    The search is the analogue arm's (same settings, V0 and guests), so both arms see
    the same templates; a template whose counts do not allow a one-for-one exchange is
    kept as a rejected record with the reason.

    Parameters
    ----------
    name
        Job name.
    hosts, guests, v0, reference, seed
        As :class:`~chggen_flows.makers.host_source.HostArmMaker`'s.
    """

    name: str = "substitution"

    @stage_job()
    def make(self, campaign: str, batch_id: str, targets: list[HostTarget]) -> StageDocument:
        """One candidate per template of every target, as the analogue arm ranks them."""
        from chggen_flows.core.hosts import SkippedTemplate, substitute

        provenance = start_provenance(
            Stage.GENERATED, {"hosts": self.hosts.given(), "guests": self.guests, "v0": self.v0}
        )
        entries = load_templates(self.hosts)
        records: list[CandidateRecord] = []
        structures: list[Any] = []
        for target in targets:
            v0 = target_v0(target["composition"], self.v0, self.reference)
            search = analogue_search(target, entries, self.hosts, self.guests, v0)
            if not search.hosts:
                reason = f"substitution: no template of {len(entries)} matches the framework"
                records.append(no_host(campaign, target, SUBSTITUTION_ARM, "T---sub", reason))
                structures.append(None)
                continue
            for host in search.hosts:
                template = json_ready(host.template)
                cid = f"{target_prefix(target)}-T{host.rank:02d}-{template['material_id']}-sub"
                seed = derived_seed(self.seed, cid)
                made = substitute(host, self.hosts.substitution_rattle, seed)
                structure = None if isinstance(made, SkippedTemplate) else made
                comp = (
                    structure.composition
                    if structure is not None
                    else host.seed.host.composition + Composition(host.seed.guests)
                )
                record = host_record(
                    campaign,
                    cid,
                    target,
                    comp,
                    SUBSTITUTION_ARM,
                    seed,
                    volume_per_atom=round(v0, 4),
                    template=template,
                    **(
                        {"host_source": {"rattle": self.hosts.substitution_rattle}}
                        if self.hosts.substitution_rattle
                        else {}
                    ),
                )
                if structure is None:
                    record = record.reject(f"substitution: {made.reason}")
                records.append(record)
                structures.append(structure)
        return finish_document(
            Stage.GENERATED,
            campaign,
            batch_id,
            records,
            structures,
            provenance,
            arm=SUBSTITUTION_ARM,
        )
