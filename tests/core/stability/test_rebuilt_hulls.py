"""The shipped offline hulls hold the known phases (issue: the Li-Si hull had only Li,
Si and Li15Si4, so E_d values next to the missing phases were too low)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Composition, Structure

from chggen_flows.core.generation import estimate_v0
from chggen_flows.core.stability import (
    EntriesFileReference,
    compute_e_d,
    describe_hull,
    get_reference,
)

DATA = Path(__file__).parents[2] / "test_data" / "references"
#: Materials Project ids of the known Li-Si phases (ground-state structures).
KNOWN_LI_SI = {
    "LiSi": "mp-795",
    "Li12Si7": "mp-1314",
    "Li7Si3": "mp-1201871",
    "Li13Si4": "mp-672287",
    "Li15Si4": "mp-569849",
    "Li21Si5": "mp-29720",
}


@pytest.fixture(scope="module")
def offline():
    return get_reference("offline")


@pytest.fixture(scope="module")
def li_si(offline):
    return {e.entry_id: e for e in offline.entries(["Li", "Si"])}


def test_li_si_hull_holds_every_known_phase_on_or_near_it(offline, li_si):
    diagram = offline.phase_diagram(["Li", "Si"])
    for formula, mp_id in KNOWN_LI_SI.items():
        entry = li_si[mp_id]
        assert entry.composition.reduced_formula == formula
        above = diagram.get_e_above_hull(entry)
        assert -0.003 <= above <= 0.025, (formula, above)
    stable = {e.composition.reduced_formula for e in diagram.stable_entries}
    assert {"Li", "Si", "Li7Si3", "Li15Si4", "Li21Si5"} <= stable
    # the LiSi the old hull held is a high-energy polymorph, not the ground state
    assert diagram.get_e_above_hull(li_si["mp-570363"]) > 0.1


def test_freshly_relaxed_known_phases_do_not_break_the_hull(offline):
    """Independent of the stored entries: relax the conventional MP cells again (as
    ``chggen ehull --relax`` does) and measure them against the shipped hull."""
    from chggen_flows.core.relax import BatchRelaxer, RelaxSettings

    files = sorted(DATA.glob("*_conventional_standard.cif"))
    structures = [Structure.from_file(f) for f in files]
    records = BatchRelaxer(RelaxSettings(device="cpu")).relax(structures)
    assert all(r.ok for r in records)
    ed = compute_e_d(
        [(s.composition, r.final_energy_per_atom) for s, r in zip(structures, records, strict=True)],
        offline,
    )
    for path, e in zip(files, ed, strict=True):
        assert -0.003 <= e.e_d <= 0.025, (path.name, e.e_d)


def test_e_d_against_the_old_hull_was_too_low_by_the_missing_phases(offline, li_si):
    """Regression test of the bug: one fixed candidate (the CHGNet-relaxed LiSi ground
    state) against the old shipped Li-Si set and the rebuilt one."""
    old = EntriesFileReference(DATA / "Li-Si_2026-11-25.json.gz")
    for mp_id, bound in (("mp-795", 0.015), ("mp-1201871", 0.02)):
        entry = li_si[mp_id]
        item = [(entry.composition, entry.energy_per_atom)]
        (before,), (after,) = compute_e_d(item, old), compute_e_d(item, offline)
        assert after.e_d - before.e_d >= bound, (mp_id, before.e_d, after.e_d)
    (li7si3,) = compute_e_d(
        [(li_si["mp-1201871"].composition, li_si["mp-1201871"].energy_per_atom)], old
    )
    assert li7si3.e_d < -0.02  # a known phase "broke" the old hull


def test_crosscheck_with_independent_dft_formation_energies(li_si, offline):
    """CHGNet formation energies of the rebuilt hull against GPAW PBE (docs/stability.md):
    same sign, MAE below 30 meV/atom."""
    diagram = offline.phase_diagram(["Li", "Si"])
    rows = list(csv.DictReader((DATA / "formation_energies_gpaw_pbe.tsv").open(), delimiter="\t"))
    ours, theirs = [], []
    for row in rows:
        formula = Composition(row["formula"]).reduced_formula
        if formula in KNOWN_LI_SI:
            ours.append(diagram.get_form_energy_per_atom(li_si[KNOWN_LI_SI[formula]]))
            theirs.append(float(row["Eform_eV_per_atom"]))
    ours, theirs = np.array(ours), np.array(theirs)
    assert len(ours) == 5 and (ours < 0).all()
    assert np.abs(ours - theirs).mean() < 0.03


def test_hull_names_its_source_and_missing_phases(offline):
    summary = describe_hull(offline, ["Li", "Si"])
    assert summary.reference == "offline-chgnet" and "offline" in summary.source
    assert [m["formula"] for m in summary.missing] == ["Li17Si4"]
    assert "Li7Si3" in summary.line()


@pytest.mark.parametrize(
    ("formula", "phases"), [("Li5Si2", ("Li7Si3", "Li13Si4")), ("ZnP2S6", ("ZnPS3", "Zn3(PS4)2"))]
)
def test_v0_auto_takes_the_known_phases_volumes(offline, formula, phases):
    comp = Composition(formula)
    diagram = offline.phase_diagram([el.symbol for el in comp.elements])
    estimate = estimate_v0(comp, phase_diagram=diagram)
    assert estimate.source == "known_phases" and set(estimate.phases) == set(phases)
    assert estimate.label == f"known phases: {', '.join(estimate.phases)}"
    volumes = [
        e.structure.volume / len(e.structure)
        for e in diagram.stable_entries | set(diagram.unstable_entries)
        if e.composition.reduced_formula in phases and diagram.get_e_above_hull(e) < 0.1
    ]
    assert estimate.volume_per_atom == pytest.approx(np.mean(volumes), rel=0.05)
    assert estimate_v0(comp).source == "regression"  # without the hull: the old default
