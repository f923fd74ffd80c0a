"""Relax and E_d stages with a non-default potential: records and provenance name it, E_d
is against that potential's offline hull, and a campaign mixing potentials is refused."""

from __future__ import annotations

import pytest
from jobflow import Flow, JobStore, run_locally
from maggma.stores import MemoryStore
from monty.serialization import loadfn
from pymatgen.core import Lattice, Structure

from chggen_flows.makers.ehull import EhullMaker
from chggen_flows.makers.provenance import start_provenance
from chggen_flows.makers.relax import RelaxMaker
from chggen_flows.makers.schemas import CandidateRecord, StageDocument, finish_document
from chggen_flows.makers.symmetry import SymmetryMaker
from tests.core.stability.helpers import TINY_IDS, ship_tiny_lisi

CAMPAIGN = "pot-00000001"


def _document(batch: str) -> StageDocument:
    cells = {
        f"{batch}-LiSi": Structure(Lattice.cubic(3.0), ["Li", "Si"], [[0, 0, 0], [0.5] * 3]),
        f"{batch}-Li3Si": Structure.from_spacegroup(
            "Fm-3m", Lattice.cubic(6.3), ["Si", "Li", "Li"], [[0, 0, 0], [0.5] * 3, [0.25] * 3]
        ),
    }
    records = [
        CandidateRecord(
            campaign=CAMPAIGN,
            candidate_id=cid,
            formula=s.composition.formula,
            reduced_formula=s.composition.reduced_formula,
            chemsys=s.composition.chemical_system,
            natoms=len(s),
            formula_units=1,
            stage="inpainted",
        )
        for cid, s in cells.items()
    ]
    return finish_document(
        "inpainted", CAMPAIGN, batch, records, list(cells.values()), start_provenance("x", {})
    )


@pytest.fixture()
def tiny_shipped(tmp_path, monkeypatch):
    ship_tiny_lisi(tmp_path, monkeypatch)
    return tmp_path / "shipped" / "Li-Si.json.gz"


def _relax(batch: str, potential: str | None):
    options = {"max_steps": 3, **({"potential": potential} if potential else {})}
    relax = RelaxMaker(stage="relaxed_inpaint", relax=options, device="cpu").make(_document(batch))
    symmetry = SymmetryMaker().make(relax.output)
    return relax, symmetry


def test_a_campaign_relaxed_with_chgnet_r2scan(tiny_shipped, tmp_path) -> None:
    relax, symmetry = _relax("b0", "chgnet-r2scan")
    ehull = EhullMaker(reference="offline", threshold=10.0).make([symmetry.output], CAMPAIGN)
    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    responses = run_locally(
        Flow([relax, symmetry, ehull]), store=store, ensure_success=True, root_dir=tmp_path
    )
    relaxed = responses[relax.uuid][1].output
    assert relaxed.provenance.inputs["potential"]["name"] == "chgnet-r2scan"
    assert relaxed.provenance.inputs["potential"]["weights_checksum"].startswith("sha256:")
    assert {r.potential for r in relaxed.candidates} == {"chgnet-r2scan"}
    ranked = responses[ehull.uuid][1].output
    assert {r.e_d_reference for r in ranked.candidates} == {"offline-chgnet-r2scan (r2SCAN)"}
    assert all(r.e_d is not None for r in ranked.candidates)
    # the r2SCAN hull was built once, from the (tiny) shipped set, and cached
    cached = tmp_path / "cache" / "references" / "chgnet-r2scan" / "Li-Si.json.gz"
    built = loadfn(cached)
    assert built["potential"] == "chgnet-r2scan" and len(built["entries"]) == len(TINY_IDS)


def test_old_records_are_chgnet_and_mixed_potentials_are_refused(
    tiny_shipped, tmp_path, caplog
) -> None:
    assert (
        CandidateRecord.model_validate(
            {k: v for k, v in _document("b").candidates[0].model_dump().items() if k != "potential"}
        ).potential
        == "chgnet"
    )
    jobs, outputs = [], []
    for batch, potential in (("b0", None), ("b1", "chgnet-r2scan")):
        relax, symmetry = _relax(batch, potential)
        jobs += [relax, symmetry]
        outputs.append(symmetry.output)
    ehull = EhullMaker(reference="offline").make(outputs, CAMPAIGN)
    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    with pytest.raises(RuntimeError):
        run_locally(Flow([*jobs, ehull]), store=store, ensure_success=True, root_dir=tmp_path)
    assert "relaxed with different potentials (chgnet, chgnet-r2scan)" in caplog.text
