"""The r2SCAN gate end to end: jobflow run_locally with atomate2's mock VASP.

The reference runs in tests/test_data/vasp are atomate2's own Si MP meta-GGA runs
(LICENSE.atomate2 there); ``monkeypatch_vasp`` checks every input the makers write
against them (INCAR, POSCAR, POTCAR symbols, KSPACING) and copies their outputs in.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from atomate2.utils.testing import vasp as vasp_testing
from atomate2.utils.testing.vasp import monkeypatch_vasp
from jobflow import CURRENT_JOB, run_locally
from monty.json import MontyDecoder, jsanitize
from monty.serialization import dumpfn
from pymatgen.core import Structure
from pymatgen.entries.computed_entries import ComputedEntry
from pymatgen.io.vasp import Incar

from chggen_flows.errors import InputError, ReferenceDataError
from chggen_flows.makers.dft import DFTGateMaker, R2SCANEdDocument, R2SCANEdMaker, as_candidates
from chggen_flows.makers.schemas import CandidateRecord

VASP_DIR = Path(__file__).parents[1] / "test_data" / "vasp"
REF_PATHS = {
    "MP pre-relax 1": "Si_mp_meta_gga_relax/pbesol_pre_relax",
    "MP meta-GGA relax 2": "Si_mp_meta_gga_relax/r2scan_relax",
    "MP meta-GGA static": "Si_mp_meta_gga_relax/r2scan_final_static",
}
STATIC_ENERGY = -46.8613738  # eV, atomate2's expected final energy of these runs
# A user INCAR override: checked in the written INCAR, left out of the reference check
# (the reference runs were made without it).
INCAR_UPDATES = {"NCORE": 4}
FAKE_KWARGS = {name: {"incar_exclude": list(INCAR_UPDATES)} for name in REF_PATHS}


@pytest.fixture
def mock_vasp(monkeypatch):
    """atomate2's ``monkeypatch_vasp`` generator as a fixture, recording each job's INCAR.

    The mock replaces the written inputs by the reference outputs, so the INCAR our
    makers wrote is read (into ``mock.incars``) just before the mock runs.
    """
    incars: list[tuple[str, Incar]] = []
    original = vasp_testing.fake_run_vasp

    def recording_fake_run_vasp(ref_path, **kwargs):
        incars.append((CURRENT_JOB.job.name, Incar.from_file(vasp_testing.zpath("INCAR"))))
        return original(ref_path, **kwargs)

    monkeypatch.setattr(vasp_testing, "fake_run_vasp", recording_fake_run_vasp)
    for mock in monkeypatch_vasp(monkeypatch, VASP_DIR):
        mock.incars = incars
        yield mock


@pytest.fixture
def si() -> Structure:
    return Structure.from_file(VASP_DIR / "Si_mp_meta_gga_relax/pbesol_pre_relax/inputs/POSCAR.gz")


def _run(flow, tmp_path):
    responses = run_locally(flow, create_folders=True, ensure_success=True, root_dir=tmp_path)
    return {uuid: next(iter(r.values())) for uuid, r in responses.items()}


def test_gate_runs_r2scan_only_below_threshold(mock_vasp, si, tmp_path):
    mock_vasp(REF_PATHS, FAKE_KWARGS)
    n = len(si)
    reference = tmp_path / "r2scan_refs.csv"
    # An r2SCAN Si reference 10 meV/atom below the mocked static: the candidate's E_d
    # must come out as +0.010 eV/atom. A CSV says nothing about its functional: given
    # as the r2SCAN reference, it is read as r2SCAN.
    reference.write_text(f"formula,energy_per_atom\nSi,{STATIC_ENERGY / n - 0.010!r}\n")
    gate = DFTGateMaker(
        threshold=0.1,
        incar_updates=INCAR_UPDATES,
        ed_maker=R2SCANEdMaker(reference=str(reference)),
    )
    record = CandidateRecord(
        campaign="c",
        candidate_id="cand-low",
        formula="Si2",
        reduced_formula="Si",
        chemsys="Si",
        natoms=2,
        formula_units=1,
        stage="ehull",
        e_d=0.02,
    )
    candidates = [
        {"candidate_id": "cand-low", "structure": si.as_dict(), "e_d": 0.02, "record": record},
        {"candidate_id": "cand-high", "structure": si, "e_d": 0.25},
    ]
    job = gate.make(candidates)
    responses = _run(job, tmp_path / "run")

    decision = responses[job.uuid].output
    assert decision.selected == ["cand-low"]
    assert decision.skipped == ["cand-high"]
    # the gate writes the candidate's record on: stage dft, waiting for its VASP jobs
    (waiting,) = decision.candidates
    assert (waiting.stage, waiting.dft_state, waiting.e_d) == ("dft", "WAITING", 0.02)

    # pre-relax, r2SCAN relax, r2SCAN static of ONE candidate
    names = [name for name, _ in mock_vasp.incars]
    assert names == ["MP pre-relax 1", "MP meta-GGA relax 2", "MP meta-GGA static"]
    for name, incar in mock_vasp.incars:
        assert incar["NCORE"] == 4  # the user override, through atomate2's powerup
        if "meta-GGA" in name:
            assert incar["METAGGA"].lower() == "r2scan"
        else:
            assert "METAGGA" not in incar  # PBEsol pre-relax

    ed_docs = [r.output for r in responses.values() if isinstance(r.output, R2SCANEdDocument)]
    assert len(ed_docs) == 1
    (doc,) = ed_docs[0].results
    # ... and the E_d job completes it: results are read from records, not patched in
    (completed,) = ed_docs[0].candidates
    assert completed.dft_state == "COMPLETED"
    assert completed.e_d_r2scan == pytest.approx(0.010, abs=1e-9)
    assert doc.candidate_id == "cand-low"
    assert doc.energy == pytest.approx(STATIC_ENERGY)
    assert doc.e_d == pytest.approx(0.010, abs=1e-9)
    assert doc.functional == "r2SCAN"
    assert doc.reference == "file:r2scan_refs.csv"


def test_gate_with_own_reference_runs_and_worker_category(mock_vasp, si, tmp_path):
    mock_vasp(REF_PATHS)
    gate = DFTGateMaker(ed_maker=R2SCANEdMaker(reference=None), worker_category="vasp")
    job = gate.make([{"candidate_id": "c1", "structure": si, "e_d": -0.01}], [si])
    job.config.manager_config = {"_category": "cpu"}  # as a campaign would route the gate

    # the gate's Response: inspect the added jobs' routing before running them
    response = job.run(store=_memory_store())
    added = list(response.addition.iterflow())
    vasp_jobs = [j for j, _ in added if j.name.startswith("MP ")]
    assert len(vasp_jobs) == 6  # 3 for the candidate, 3 for the reference phase
    assert {j.config.manager_config.get("_category") for j in vasp_jobs} == {"vasp"}
    ed_job = next(j for j, _ in added if j.name == "r2SCAN E_d")
    assert ed_job.config.manager_config.get("_category") != "vasp"

    responses = _run(
        gate.make([{"candidate_id": "c1", "structure": si, "e_d": -0.01}], [si]), tmp_path
    )
    assert len(mock_vasp.incars) == 6  # the candidate and the reference phase, 3 jobs each
    (doc,) = next(
        r.output for r in responses.values() if isinstance(r.output, R2SCANEdDocument)
    ).results
    assert doc.reference == "campaign-r2scan"
    assert doc.e_d == pytest.approx(0.0, abs=1e-9)  # the reference is the same phase


def test_gate_without_candidates_below_threshold_adds_nothing(si):
    gate = DFTGateMaker(threshold=0.03)
    response = gate.make([{"candidate_id": "a", "structure": si, "e_d": 0.05}]).run(
        store=_memory_store()
    )
    assert response.addition is None
    assert response.output.selected == []


def test_gate_survives_serialisation(si):
    # FireWorks / the job store keep jobs as JSON: the gate must decide the same after
    # a round trip (its maker, overrides and pass_manager_config included)
    gate = DFTGateMaker(threshold=0.05, incar_updates={"NCORE": 2}).make(
        [{"candidate_id": "a", "structure": si, "e_d": 0.01}]
    )
    restored = MontyDecoder().decode(json.dumps(jsanitize(gate.as_dict(), strict=True)))
    assert restored.config.pass_manager_config is False
    response = restored.run(store=_memory_store())
    assert response.output.selected == ["a"]
    names = [job.name for job, _ in response.addition.iterflow()]
    assert names == ["MP pre-relax 1", "MP meta-GGA relax 2", "MP meta-GGA static", "r2SCAN E_d"]


def test_kpoints_override_reaches_input_generators():
    gate = DFTGateMaker(kpoints_updates={"reciprocal_density": 200})
    maker = gate._configured_dft_maker()
    static = maker.static_maker.input_set_generator
    assert static.user_kpoints_settings == {"reciprocal_density": 200}
    assert gate.dft_maker.static_maker.input_set_generator.user_kpoints_settings == {}


def test_bad_candidates_and_settings_are_refused(si):
    with pytest.raises(InputError, match="candidate_id"):
        as_candidates([{"structure": si, "e_d": 0.0}])
    with pytest.raises(InputError, match="threshold"):
        DFTGateMaker(threshold=float("nan"))
    with pytest.raises(InputError, match="max_candidates"):
        DFTGateMaker(max_candidates=-1)


def _memory_store():
    from jobflow import JobStore
    from maggma.stores import MemoryStore

    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    store.connect()
    return store


def test_r2scan_e_d_refuses_a_gga_reference(si, tmp_path):
    gga = tmp_path / "gga.json"
    dumpfn([ComputedEntry(si.composition, -10.85, parameters={"run_type": "GGA"})], gga)
    job = R2SCANEdMaker(reference=str(gga)).make(["c"], [STATIC_ENERGY], [si])
    with pytest.raises(ReferenceDataError, match="GGA_GGA\\+U"):
        job.run(store=_memory_store())


def test_gate_without_threshold_takes_the_shortlist_as_given(si):
    """In a campaign the E_d job applies the threshold; the gate (threshold None) takes
    its shortlist, up to max_candidates, so the threshold is applied once."""
    gate = DFTGateMaker(threshold=None, max_candidates=1, ed_maker=None)
    candidates = [
        {"candidate_id": "a", "structure": si, "e_d": 0.5},
        {"candidate_id": "b", "structure": si, "e_d": 0.2},
    ]
    response = gate.make(candidates).run(store=_memory_store())
    assert response.output.selected == ["b"] and response.output.skipped == ["a"]
    assert response.output.threshold is None
