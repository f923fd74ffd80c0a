"""E_d of a campaign's candidates against a reference hull, de-duplication, DFT shortlist."""

from __future__ import annotations

from dataclasses import dataclass

from jobflow import Maker

from chggen_flows.makers.provenance import start_provenance
from chggen_flows.makers.schemas import (
    DEFAULT_DFT_THRESHOLD,
    StageDocument,
    finish_document,
    is_generated_arm,
    merge_documents,
    stage_job,
)


@dataclass
class EhullMaker(Maker):
    """Rank the valid candidates of all batches by E_d; flag the unique ones below the
    DFT threshold.

    One job gathers every batch: de-duplication must compare candidates of different
    batches, and the reference phase diagram is built once per chemical system.

    Parameters
    ----------
    name
        Job name.
    reference
        ``offline``, ``mp`` or the path of an entries file (see
        :func:`chggen_flows.core.stability.get_reference`).
    threshold
        E_d (eV/atom) below which a unique candidate is ``below_threshold``.
    """

    name: str = "ehull"
    reference: str = "offline"
    threshold: float = DEFAULT_DFT_THRESHOLD

    @stage_job(campaign_wide=True)
    def make(self, documents: list[StageDocument], campaign: str) -> StageDocument:
        """E_d and duplicates of the valid candidates in ``documents`` (invalid ones are
        left out: their last record stays the one of the stage that rejected them)."""
        from chggen_flows.core.stability import (
            compute_e_d,
            deduplicate,
            describe_hull,
            get_reference,
            largest_systems,
        )

        provenance = start_provenance(
            "ehull", {"reference": self.reference, "threshold": self.threshold}
        )
        records, structures = merge_documents(documents)
        pairs = [
            (r, s)
            for r, s in zip(records, structures, strict=True)
            if r.valid and s is not None and r.energy_per_atom is not None
        ]
        if not pairs:
            return finish_document("ehull", campaign, "all", [], [], provenance)
        # one potential per campaign: its E_d are against a hull made by that potential
        potentials = sorted({r.potential for r, _ in pairs})
        if len(potentials) > 1:
            from chggen_flows.errors import PotentialMismatchError

            raise PotentialMismatchError(
                f"candidates relaxed with different potentials ({', '.join(potentials)}) "
                "cannot share one hull",
                hint="relax every batch of a campaign with the same relax.potential",
            )
        provider = get_reference(self.reference, potential=potentials[0])
        ed = compute_e_d(
            [(s.composition, r.energy_per_atom) for r, s in pairs],
            provider,
            potential=potentials[0],
        )
        # Each arm is de-duplicated on its own: a random-search structure must not take
        # a generated one's uniqueness (or the reverse) when the arms are compared.
        duplicate_of: dict[str, str] = {}
        for arm in dict.fromkeys(r.arm for r, _ in pairs):
            found = deduplicate(
                [
                    (r.candidate_id, s, r.energy_per_atom, r.spacegroup_number or 1)
                    for r, s in pairs
                    if r.arm == arm
                ]
            )
            duplicate_of.update(found.duplicate_of)
        out = []
        for (record, _), e in zip(pairs, ed, strict=True):
            duplicate = duplicate_of.get(record.candidate_id)
            out.append(
                record.advance(
                    "ehull",
                    e_d=e.e_d,
                    e_d_reference=f"{e.reference} ({e.functional})",
                    e_d_warning=e.warning,
                    duplicate_of=duplicate,
                    below_threshold=duplicate is None and e.e_d < self.threshold,
                )
            )
        hulls = [
            describe_hull(provider, x).model_dump() for x in largest_systems(s for _, s in pairs)
        ]
        final = [s for _, s in pairs]
        shortlist = sorted(
            (
                {
                    "candidate_id": r.candidate_id,
                    "structure": s,
                    "e_d": r.e_d,
                    "record": r.model_dump(),
                }
                for r, s in zip(out, final, strict=True)
                if r.below_threshold and is_generated_arm(r.arm)  # not the random search
            ),
            key=lambda item: item["e_d"],
        )
        return finish_document(
            "ehull",
            campaign,
            "all",
            out,
            final,
            provenance,
            shortlist=shortlist,
            n_below_threshold=sum(bool(r.below_threshold) for r in out),
            n_duplicates=len(duplicate_of),
            hulls=hulls,
            n_e_d_warnings=sum(r.e_d_warning is not None for r in out),
        )
