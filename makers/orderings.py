"""Baselines of a disordered host: the orderings of its listed sites on the same supercell
the inpainting uses (CPU job): pymatgen's Ewald ordering (best N) and, where there are
few, every distinct ordering (the exact answer within the site constraint)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jobflow import Maker
from pymatgen.core import Structure

from chggen_flows.makers.provenance import start_provenance
from chggen_flows.makers.schemas import (
    CandidateRecord,
    Stage,
    StageDocument,
    baseline_arm,
    finish_document,
    stage_job,
)

#: The ordering baselines, by their arm suffix.
ORDERING_KINDS: tuple[str, ...] = ("ewald", "enumeration")


@dataclass
class OrderingMaker(Maker):
    """Ordered structures of a disordered host, shaped like generated candidates.

    Parameters
    ----------
    name
        Job name.
    max_supercell
        Largest supercell multiple for whole guest counts (as the inpainting arm's).
    ewald
        Orderings of lowest Ewald energy kept (arm ``baseline:ewald``; 0: none).
    enumeration_limit
        Enumerate every ordering (arm ``baseline:enumeration``) when there are at most
        this many (0: never); above it the arm has one rejected record saying so.
    """

    name: str = "orderings"
    max_supercell: int = 8
    ewald: int = 16
    enumeration_limit: int = 500

    @stage_job()
    def make(
        self, campaign: str, batch_id: str, disordered: Structure, kind: str, prefix: str
    ) -> StageDocument:
        """Generated-stage records ``<prefix>-<kind>NNNN`` of arm ``baseline:<kind>``."""
        from chggen_flows.core.hosts import (
            count_orderings,
            disordered_host,
            enumerate_orderings,
            ewald_orderings,
        )

        if kind not in ORDERING_KINDS:
            raise ValueError(f"unknown ordering kind {kind!r}; known: {ORDERING_KINDS}")
        arm = baseline_arm(kind)
        provenance = start_provenance(
            Stage.GENERATED,
            {
                "kind": kind,
                "max_supercell": self.max_supercell,
                "ewald": self.ewald,
                "enumeration_limit": self.enumeration_limit,
            },
        )
        host = disordered_host(disordered, self.max_supercell)
        info = {"multiple": host.seed.info.get("multiple"), "kind": kind}
        made: list[tuple[Structure, dict[str, Any]]] = []
        reason = None
        if kind == "ewald":
            for item in ewald_orderings(host, self.ewald):
                made.append((item["structure"], {**info, "ewald_energy": item["ewald_energy"]}))
        else:
            every = enumerate_orderings(host, self.enumeration_limit)
            if every is None:
                n = count_orderings(host, self.enumeration_limit)
                reason = (
                    f"enumeration: more than {self.enumeration_limit} orderings "
                    f"(counted {n}+); raise host.enumeration_limit"
                )
            else:
                made = [(s, dict(info)) for s in every]
        records: list[CandidateRecord] = []
        structures: list[Structure | None] = []
        full = host.seed.host.composition
        for symbol, count in host.guests.items():
            full = full + {symbol: count}
        for index, (structure, extra) in enumerate(made):
            comp = structure.composition
            records.append(
                CandidateRecord(
                    campaign=campaign,
                    candidate_id=f"{prefix}-{kind}{index:04d}",
                    formula=comp.formula,
                    reduced_formula=comp.reduced_formula,
                    chemsys=comp.chemical_system,
                    natoms=len(structure),
                    formula_units=int(comp.get_reduced_composition_and_factor()[1]),
                    mode="host",
                    arm=arm,
                    host_source=extra,
                )
            )
            structures.append(structure)
        if reason is not None:
            record = CandidateRecord(
                campaign=campaign,
                candidate_id=f"{prefix}-{kind}----",
                formula=full.formula,
                reduced_formula=full.reduced_formula,
                chemsys=full.chemical_system,
                natoms=int(full.num_atoms),
                formula_units=int(full.get_reduced_composition_and_factor()[1]),
                mode="host",
                arm=arm,
            )
            records.append(record.reject(reason))
            structures.append(None)
        return finish_document(
            Stage.GENERATED, campaign, batch_id, records, structures, provenance, arm=arm
        )
