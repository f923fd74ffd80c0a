"""Results API on real stage outputs: one row per candidate, filters, structures."""

from __future__ import annotations

import math

import pytest

from chggen_flows.campaign.results import (
    CANDIDATE_COLUMNS,
    list_campaigns,
    load_candidates,
    load_structures,
)
from chggen_flows.db import get_job_store
from chggen_flows.errors import InputError
from tests.campaign.helpers import REFERENCE_CSV, li_si_structures, populate_campaign


def _hull_energy(formula: str) -> float:
    import pandas as pd
    from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
    from pymatgen.core import Composition

    table = pd.read_csv(REFERENCE_CSV)
    entries = [
        PDEntry(Composition(f), e * Composition(f).num_atoms)
        for f, e in zip(table.formula, table.energy_per_atom, strict=True)
    ]
    diagram = PhaseDiagram(entries)
    decomposition = diagram.get_decomposition(Composition(formula))
    return sum(frac * entry.energy_per_atom for entry, frac in decomposition.items())


@pytest.fixture
def store(db_settings):
    store = get_job_store(db_settings)
    populate_campaign(store)
    return store


def test_one_row_per_candidate_with_the_latest_stage(store):
    frame = load_candidates(store, "pop-00000001")
    assert tuple(frame.columns) == CANDIDATE_COLUMNS
    assert sorted(frame.candidate_id) == ["Li3Si-p1", "Li3Si-rejected", "Li3Si-sym", "LiSi-cscl"]
    rows = frame.set_index("candidate_id")
    assert rows.loc["Li3Si-rejected", "stage"] == "framework"
    assert not rows.loc["Li3Si-rejected", "valid"]
    assert rows.loc["Li3Si-rejected", "rejected_reason"].startswith("framework")
    assert math.isnan(rows.loc["Li3Si-rejected", "e_d"])
    assert set(rows.drop("Li3Si-rejected").stage) == {"ehull"}
    assert rows.loc["Li3Si-sym", "spacegroup_number"] == 225
    assert rows.loc["Li3Si-sym", "symmetric"] and not rows.loc["Li3Si-p1", "symmetric"]
    # E_d against the hull of the CSV reference, computed here with pymatgen directly
    assert rows.loc["LiSi-cscl", "e_d"] == pytest.approx(-3.70 - _hull_energy("LiSi"), abs=1e-6)
    assert rows.loc["LiSi-cscl", "e_d_reference"].startswith("file:" + REFERENCE_CSV.name)
    assert rows.loc["Li3Si-sym", "e_d"] < rows.loc["Li3Si-p1", "e_d"]
    assert rows.loc["LiSi-cscl", "de_uncond"] == pytest.approx(0.1)


def test_filters(store):
    cid = "pop-00000001"
    assert set(load_candidates(store, cid, e_d_max=0.3).candidate_id) == {"Li3Si-sym", "LiSi-cscl"}
    assert set(load_candidates(store, cid, e_d_min=0.3).candidate_id) == {"Li3Si-p1"}
    assert set(load_candidates(store, cid, composition="Li6Si2").candidate_id) == {
        "Li3Si-sym",
        "Li3Si-p1",
        "Li3Si-rejected",
    }
    assert set(load_candidates(store, cid, symmetric=True).candidate_id) == {
        "Li3Si-sym",
        "LiSi-cscl",
    }
    assert set(load_candidates(store, cid, spacegroup="Fm-3m").candidate_id) == {"Li3Si-sym"}
    assert set(load_candidates(store, cid, spacegroup=221).candidate_id) == {"LiSi-cscl"}
    assert set(load_candidates(store, cid, stage="framework").candidate_id) == {"Li3Si-rejected"}
    assert len(load_candidates(store, None, chemsys="Si-Li")) == 4
    assert load_candidates(store, "other-campaign").empty
    with pytest.raises(InputError, match="unknown result filter"):
        load_candidates(store, cid, colour="red")
    with pytest.raises(InputError, match="unknown stage"):
        load_candidates(store, cid, stage="baked")


def test_structures_come_back_from_gridfs(store):
    expected = li_si_structures()
    got = load_structures(store, "pop-00000001", ["Li3Si-sym", "LiSi-cscl", "missing"])
    assert set(got) == {"Li3Si-sym", "LiSi-cscl"}
    for cid, structure in got.items():
        assert structure.matches(expected[cid])
    classified = load_structures(store, "pop-00000001", ["Li3Si-rejected"], stage="classified")
    assert len(classified["Li3Si-rejected"]) == len(expected["Li3Si-sym"])
    assert load_structures(store, "pop-00000001", ["Li3Si-rejected"], stage="ehull") == {}
    # structures live in the GridFS data store, not in the job documents
    doc = store.docs_store.query_one({"output.stage": "ehull"})
    assert "blob_uuid" in doc["output"]["structures"]


def test_list_campaigns(store):
    frame = list_campaigns(store)
    assert list(frame.campaign) == ["pop-00000001"]
    assert frame.chemsys[0] == "Li-Si" and frame.n_candidates[0] == 4


def test_docs_list_every_candidate_column():
    """docs/results.md's column table and the record schema stay one list."""
    import re
    from pathlib import Path

    from chggen_flows.campaign.results import CANDIDATE_COLUMNS

    text = (Path(__file__).parents[2] / "docs" / "results.md").read_text()
    table = text.split("### `load_candidates")[1].split("Filters (")[0]
    documented = set(re.findall(r"^\| `(\w+)`(?:, `(\w+)`)?", table, flags=re.M))
    names = {n for pair in documented for n in pair if n}
    assert names == set(CANDIDATE_COLUMNS)


def test_dft_outcomes_are_read_from_the_dft_jobs_records(store, tmp_path):
    """The gate writes WAITING records, the r2SCAN E_d job COMPLETED ones with
    ``e_d_r2scan``: load_candidates reads them like any stage's (nothing patched in)."""
    from pymatgen.core import Structure

    from chggen_flows.makers.dft import DFTGateMaker, R2SCANEdMaker

    ehull_doc = store.query_one(
        {"metadata.campaign": "pop-00000001", "output.stage": "ehull"}, load=True
    )["output"]
    shortlist = ehull_doc["shortlist"]
    assert {item["candidate_id"] for item in shortlist} >= {"LiSi-cscl"}
    gate = DFTGateMaker(threshold=0.5, ed_maker=None).make(shortlist)
    (lisi,) = [item for item in shortlist if item["candidate_id"] == "LiSi-cscl"]
    reference = tmp_path / "r2scan.csv"
    reference.write_text("formula,energy_per_atom\nLi,-2.3\nSi,-5.6\nLiSi,-4.2\n")
    ed = R2SCANEdMaker(reference=str(reference)).make(
        ["LiSi-cscl"],
        [-4.15 * 2],
        [Structure.from_dict(lisi["structure"])],
        records=[lisi["record"]],
    )
    for job in (gate, ed):  # run the bodies only: the VASP jobs the gate adds are not run
        job.update_metadata({"campaign": "pop-00000001"})
        job.run(store=store)

    rows = load_candidates(store, "pop-00000001").set_index("candidate_id")
    assert rows.loc["LiSi-cscl", "stage"] == "dft"
    assert rows.loc["LiSi-cscl", "dft_state"] == "COMPLETED"
    assert rows.loc["LiSi-cscl", "e_d_r2scan"] == pytest.approx(0.05, abs=1e-9)
    assert rows.loc["LiSi-cscl", "e_d"] == pytest.approx(ehull_e_d(ehull_doc, "LiSi-cscl"))
    waiting = set(rows.index[rows.dft_state == "WAITING"])
    assert waiting == {item["candidate_id"] for item in shortlist} - {"LiSi-cscl"}
    assert load_candidates(store, "pop-00000001", dft_state="completed").shape[0] == 1
    # the final structure of a DFT candidate is the r2SCAN one
    (final,) = load_structures(store, "pop-00000001", ["LiSi-cscl"]).values()
    assert final.composition.reduced_formula == "LiSi"


def ehull_e_d(doc: dict, candidate_id: str) -> float:
    return next(r["e_d"] for r in doc["candidates"] if r["candidate_id"] == candidate_id)
