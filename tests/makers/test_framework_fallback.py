"""The framework job records a fallback to the paper's rule (issue 26 item 5)."""

from __future__ import annotations

import numpy as np
from pymatgen.core import Lattice, Structure

from chggen_flows.core.symmetry import FrameworkSettings
from chggen_flows.makers.framework import FrameworkMaker
from chggen_flows.makers.provenance import start_provenance
from chggen_flows.makers.schemas import CandidateRecord, finish_document


def _pushed_antifluorite() -> Structure:
    """Li8 O4 with one O pushed 0.8 Å: no rung of a coarse ladder stays within 0.6 Å."""
    candidate = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(4.61), ["Li", "O"], [[0.25, 0.25, 0.25], [0, 0, 0]]
    )
    [pushed] = [
        i
        for i, site in enumerate(candidate)
        if site.specie.symbol == "O" and np.allclose(site.frac_coords, [0.5, 0.5, 0])
    ]
    candidate.translate_sites([pushed], [0, 0, 0.8], frac_coords=False)
    return candidate


def _run(settings: FrameworkSettings) -> CandidateRecord:
    structure = _pushed_antifluorite()
    comp = structure.composition
    record = CandidateRecord(
        campaign="c",
        candidate_id="Li2O-fu4-L000-S000",
        formula=comp.formula,
        reduced_formula=comp.reduced_formula,
        chemsys=comp.chemical_system,
        natoms=len(structure),
        formula_units=4,
        stage="relaxed",
    )
    previous = finish_document(
        "relaxed", "c", "b0000", [record], [structure], start_provenance("relaxed", {})
    )
    maker = FrameworkMaker(guests=["Li"], framework=settings)
    (out,) = maker.make.original(maker, previous).candidates
    return out


def test_the_record_says_fallback_where_the_bounded_search_found_nothing():
    ladder = [[1.5, 30], [2.0, 30]]
    fell_back = _run(FrameworkSettings(mode="highest", ladder=ladder))
    assert fell_back.valid and fell_back.framework_found and fell_back.framework_fallback
    paper = _run(FrameworkSettings(mode="first", ladder=ladder))
    assert paper.framework_fallback is None  # the paper's rule itself: nothing to record
    assert fell_back.framework_spacegroup == paper.framework_spacegroup
    assert fell_back.framework_rung == paper.framework_rung
    refused = _run(FrameworkSettings(mode="highest", ladder=ladder, fallback=False))
    assert not refused.valid and "no rung of the ladder" in refused.rejected_reason
