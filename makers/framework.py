"""Host frameworks: symmetrised hosts from relaxed candidates, or a user's host (host mode)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jobflow import Maker
from pymatgen.core import Composition, Structure

from chggen_flows.core.symmetry import FrameworkSettings
from chggen_flows.makers.provenance import start_provenance
from chggen_flows.makers.schemas import (
    CandidateRecord,
    Stage,
    StageDocument,
    finish_document,
    stage_job,
)


def host_id(candidate_id: str, rank: int, result: Any) -> str:
    """The id of the ``rank``-th host of a candidate: its own id for the best host, then
    ``<id>-H<rank>sg<space group>`` for the further hosts of ``fan_out``."""
    return candidate_id if rank == 0 else f"{candidate_id}-H{rank}sg{result.spacegroup_number}"


def framework_fields(result: Any, mode: str, rank: int) -> dict[str, Any]:
    """The record fields of one accepted host (see docs/symmetry.md)."""
    return {
        "framework_found": True,
        "framework_symprec": result.symprec,
        "framework_angle_tolerance": result.angle_tolerance,
        "framework_spacegroup": result.spacegroup_number,
        "framework_mode": mode,
        "framework_rank": rank,
        "framework_rung": result.rung,
        "framework_max_displacement": result.max_displacement,
        "framework_rms_displacement": result.rms_displacement,
        "framework_lattice_strain": result.lattice_strain,
        "framework_ops_per_atom": result.ops_per_atom,
        "framework_cell": result.cell,
        "framework_supercell": result.supercell,
        "guest_counts": dict(result.guest_counts),
        # only where the bounded search fell back, so older records' dumps stay equal
        **({"framework_fallback": True} if result.fallback else {}),
    }


@dataclass
class FrameworkMaker(Maker):
    """Remove the guests of each relaxed candidate and symmetrise the remaining host.

    The record gets the symmetry of the relaxed structure (``spacegroup_uncond``,
    ``symmetric_uncond``) and the framework found by the tolerance ladder; candidates
    without a non-P1/P-1 framework are rejected with the reason.

    Parameters
    ----------
    name
        Job name.
    guests
        Guest species to remove (e.g. ``["Li"]``).
    framework
        How the host is symmetrised (a spec's ``framework`` section).
    """

    name: str = "framework"
    guests: list[str] = field(default_factory=list)
    framework: FrameworkSettings = field(default_factory=FrameworkSettings)

    def __post_init__(self) -> None:
        self.framework = FrameworkSettings.coerce(self.framework)  # a stored Maker's dict

    @stage_job()
    def make(self, previous: StageDocument) -> StageDocument:
        """Extract the framework of every valid candidate of ``previous``."""
        from chggen_flows.core.symmetry import classify_symmetry, host_candidates

        settings = self.framework
        provenance = start_provenance(
            "framework", {"guests": self.guests, "framework": self.framework.given()}
        )

        records, structures = [], []
        for record, structure in zip(previous.candidates, previous.structures, strict=True):
            if not record.valid or structure is None:  # rejected before: carried unchanged
                records.append(record)
                structures.append(structure)
                continue
            info = classify_symmetry(structure)  # the paper's tolerance
            update = {"spacegroup_uncond": info.number, "symmetric_uncond": info.symmetric}
            hosts = host_candidates(structure, self.guests, settings)
            if not hosts[0].ok:
                advanced = record.advance(Stage.FRAMEWORK, framework_found=False, **update)
                records.append(advanced.reject(f"framework: {hosts[0].reason}"))
                structures.append(structure)
                continue
            # fan_out: every further host is its own inpainting branch, named after it
            for rank, result in enumerate(hosts):
                records.append(
                    record.advance(
                        Stage.FRAMEWORK,
                        candidate_id=host_id(record.candidate_id, rank, result),
                        parent_id=record.candidate_id if rank else None,
                        **update,
                        **framework_fields(result, settings.mode, rank),
                    )
                )
                structures.append(result.host)
        return finish_document(
            Stage.FRAMEWORK,
            previous.campaign,
            previous.batch_id,
            records,
            structures,
            provenance,
            n_frameworks=sum(bool(r.framework_found) for r in records),
        )


@dataclass
class HostFrameworkMaker(Maker):
    """Host mode's first job: ``n_candidates`` copies of the user's host, each to receive
    ``guests`` by inpainting (the paper's intercalation use case)."""

    name: str = "host framework"

    @stage_job()
    def make(
        self,
        campaign: str,
        batch_id: str,
        host: Structure,
        guests: dict[str, int],
        candidate_ids: list[str],
        arm: str | None = None,
        host_source: dict[str, Any] | None = None,
    ) -> StageDocument:
        """Records at stage ``framework`` for ``candidate_ids``, all sharing ``host``;
        ``arm`` and ``host_source`` for a disordered host's split (``hosts:disordered``)."""
        from chggen_flows.core.symmetry import classify_symmetry

        provenance = start_provenance("framework", {"host": host.formula, "guests": guests})
        info = classify_symmetry(host)  # the paper's tolerance
        full = host.composition + Composition(guests)
        records = [
            CandidateRecord(
                campaign=campaign,
                candidate_id=cid,
                formula=full.formula,
                reduced_formula=full.reduced_formula,
                chemsys=full.chemical_system,
                natoms=int(full.num_atoms),
                formula_units=int(full.get_reduced_composition_and_factor()[1]),
                mode="host",
                stage="framework",
                framework_found=True,
                framework_spacegroup=info.number,
                guest_counts=dict(guests),
                **({"arm": arm} if arm else {}),
                host_source=host_source,
            )
            for cid in candidate_ids
        ]
        return finish_document(
            "framework", campaign, batch_id, records, [host] * len(records), provenance
        )
