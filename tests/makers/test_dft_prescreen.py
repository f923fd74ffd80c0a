"""The DFT gate's pre-screen: the shortlist re-relaxed with CHGNet-r2SCAN and ranked on its
r2SCAN-level E_d against the chgnet-r2scan hull before any VASP job is made."""

from __future__ import annotations

import pytest
from jobflow import JobStore
from maggma.stores import MemoryStore

from chggen_flows.core.relax import RelaxSettings
from chggen_flows.core.stability import compute_e_d, get_reference
from chggen_flows.errors import InputError, PotentialMismatchError
from chggen_flows.makers.dft import DFTGateMaker
from tests.core.stability.helpers import ship_tiny_lisi


@pytest.fixture()
def lisi(tmp_path, monkeypatch):
    """The shipped LiSi (mp-570363), with only the tiny set shipped and a private cache."""
    data = ship_tiny_lisi(tmp_path, monkeypatch)
    return next(e.structure for e in data["entries"] if e.entry_id == "mp-570363")


def _store() -> JobStore:
    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    store.connect()
    return store


def test_prescreen_ranks_the_shortlist_on_chgnet_r2scan(lisi) -> None:
    squeezed = lisi.copy()
    squeezed.scale_lattice(lisi.volume * 0.6)  # far above the hull (fixed cell)
    # the campaign's E_d ranks the squeezed cell first; the r2SCAN pre-screen must not
    candidates = [
        {"candidate_id": "squeezed", "structure": squeezed, "e_d": 0.01},
        {"candidate_id": "relaxed", "structure": lisi, "e_d": 0.02},
    ]
    relax = RelaxSettings(max_steps=3, relax_cell=False, device="cpu")
    gate = DFTGateMaker(
        threshold=None,
        max_candidates=1,
        ed_maker=None,
        prescreen_potential="chgnet-r2scan",
        prescreen_relax=relax,
    )
    response = gate.make(candidates).run(store=_store())
    decision = response.output
    screen = decision.prescreen
    assert screen.potential == "chgnet-r2scan"
    assert screen.reference == "offline-chgnet-r2scan (r2SCAN)"
    assert set(screen.e_d) == {"squeezed", "relaxed"}
    assert screen.e_d["squeezed"] > screen.e_d["relaxed"] + 0.1, screen.e_d
    assert decision.selected == ["relaxed"] and decision.skipped == ["squeezed"]
    # one VASP flow, for the pre-screen's pick
    names = [job.name for job, _ in response.addition.iterflow()]
    assert names == ["MP pre-relax 1", "MP meta-GGA relax 2", "MP meta-GGA static"]

    # the recorded E_d is the r2SCAN-level one: the same relaxation, the same hull
    from chggen_flows.core.relax import BatchRelaxer

    with BatchRelaxer(relax.model_copy(update={"potential": "chgnet-r2scan"})) as relaxer:
        (record,) = relaxer.relax([lisi], progress=False)
    provider = get_reference("offline", potential="chgnet-r2scan")
    (expected,) = compute_e_d(
        [(lisi.composition, record.final_energy_per_atom)], provider, potential="chgnet-r2scan"
    )
    assert screen.e_d["relaxed"] == pytest.approx(expected.e_d, abs=1e-5)


def test_prescreen_threshold_drops_and_says_why(lisi) -> None:
    squeezed = lisi.copy()
    squeezed.scale_lattice(lisi.volume * 0.6)
    gate = DFTGateMaker(
        threshold=None,
        ed_maker=None,
        prescreen_potential="chgnet-r2scan",
        prescreen_threshold=0.1,
        prescreen_relax=RelaxSettings(max_steps=3, relax_cell=False, device="cpu"),
    )
    response = gate.make(
        [
            {"candidate_id": "squeezed", "structure": squeezed, "e_d": 0.01},
            {"candidate_id": "relaxed", "structure": lisi, "e_d": 0.02},
        ]
    ).run(store=_store())
    decision = response.output
    assert decision.selected == ["relaxed"]
    assert "pre-screen E_d" in decision.prescreen.dropped["squeezed"]
    assert ">= 0.1 eV/atom" in decision.prescreen.dropped["squeezed"]


def test_prescreen_settings_are_checked(tmp_path) -> None:
    with pytest.raises(InputError, match="unknown potential"):
        DFTGateMaker(prescreen_potential="nope")
    with pytest.raises(InputError, match="pre-screen threshold"):
        DFTGateMaker(prescreen_potential="chgnet-r2scan", prescreen_threshold=float("nan"))
    # a GGA hull cannot rank r2SCAN-level energies
    gga = tmp_path / "gga.csv"
    gga.write_text("formula,energy_per_atom\nLi,-1.9\nSi,-5.4\n")
    gate = DFTGateMaker(prescreen_potential="chgnet-r2scan", prescreen_reference=str(gga))
    with pytest.raises(PotentialMismatchError, match="r2SCAN"):
        gate.prescreen_provider()
