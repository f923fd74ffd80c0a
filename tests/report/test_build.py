"""A whole report from a campaign-sized table: files, numbers, empty and partial input."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure

from chggen_flows.report import build_report
from chggen_flows.report.figures import FIGURES
from chggen_flows.report.synthetic import synthetic_candidates


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return synthetic_candidates(600, campaign="zps-test", seed=3)


def zincblende() -> Structure:
    return Structure.from_spacegroup(
        "F-43m", Lattice.cubic(5.41), ["Zn", "S"], [[0, 0, 0], [0.25, 0.25, 0.25]]
    )


@pytest.fixture(scope="module")
def built(frame, tmp_path_factory):
    out = tmp_path_factory.mktemp("rep") / "report"
    loader_calls = []

    def loader(ids, stage):
        loader_calls.append((list(ids), stage))
        # Every candidate "is" a zinc-blende supercell; the first id has no structure.
        return {i: zincblende() * (2, 1, 1) for i in ids[1:]}

    result = build_report(
        frame,
        out,
        structure_loader=loader,
        reference_structures=[zincblende()],
        top=15,
        locality_top=3,
        cn_method="cutoff",
    )
    return result, loader_calls


def test_every_figure_file_exists(built):
    result, _ = built
    # every figure (the arms comparison needs a campaign with a baseline arm)
    names = {spec.name for spec in FIGURES} | {"locality"}
    assert set(result.figures) == names - {"arms"}
    for path in result.figures.values():
        assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (result.out_dir / "report.html").is_file()
    assert not list(result.out_dir.parent.glob(".report.*")), "temporary directory left behind"
    html = result.html.read_text()
    anchors = re.findall(r"<a href='#(\w+)'>", html)
    assert len(anchors) == 8
    assert all(f"<h2 id='{a}'>" in html for a in anchors)


def _unique(frame):
    return frame[frame["duplicate_of"].isna()]


def test_numbers_match_independent_recomputation(built, frame):
    result, _ = built
    summary = json.loads((result.out_dir / "summary.json").read_text())
    html = result.html.read_text()

    de = {d["label"]: d for d in summary["de"]}
    for label, col in (("unconditional", "de_uncond"), ("inpainting", "de_inpaint")):
        values = frame[col].dropna()
        assert de[label]["n"] == len(values)
        assert de[label]["median"] == pytest.approx(float(np.median(values)))
        assert f"{np.median(values):.3f}" in html
    rmsd = {d["label"]: d for d in summary["rmsd"]}
    assert rmsd["unconditional"]["median"] == pytest.approx(frame["rmsd_uncond"].median())

    e_d = _unique(frame)["e_d"].dropna()
    assert summary["e_d"]["median"] == pytest.approx(float(np.median(e_d)))
    below = float((e_d < 0).mean())
    assert summary["e_d"]["fraction_below_zero"] == pytest.approx(below)
    assert f"{100 * below:.1f}%" in html

    sym_u = frame["symmetric_uncond"].dropna().astype(bool)
    sym_i = frame["symmetric"].dropna().astype(bool)
    assert summary["symmetry_overall"]["rate_uncond"] == pytest.approx(sym_u.mean())
    assert summary["symmetry_overall"]["rate_inpaint"] == pytest.approx(sym_i.mean())
    for row in summary["symmetry_by_composition"]:
        part = frame[frame["reduced_formula"] == row["group"]]
        expected = part["symmetric"].dropna().astype(bool).mean()
        assert row["rate_inpaint"] == pytest.approx(expected)
        assert f"{100 * expected:.1f}%" in html
    for row in summary["symmetry_by_natoms"]:
        part = frame[frame["natoms"] == int(row["group"])]
        assert row["n_uncond"] == part["symmetric_uncond"].notna().sum()

    funnel = {step["name"]: step["count"] for step in summary["funnel"]}
    assert funnel["generated"] == len(frame)
    assert funnel["valid"] == int(frame["valid"].sum())
    assert funnel["symmetric"] == int((frame["symmetric"] == True).sum())  # noqa: E712
    assert funnel["DFT done"] == int(frame["e_d_r2scan"].notna().sum())

    both = frame[["e_d", "e_d_r2scan"]].dropna()
    mae = float((both["e_d"] - both["e_d_r2scan"]).abs().mean())
    assert summary["parity"]["mae"] == pytest.approx(mae)

    unique = _unique(frame)
    counts = unique[unique["symmetric"] == True]["spacegroup_symbol"].value_counts()  # noqa: E712
    assert {g["symbol"]: g["count"] for g in summary["spacegroups"]} == counts.to_dict()

    best = _unique(frame).dropna(subset=["e_d"]).nsmallest(15, "e_d")
    assert [b["candidate_id"] for b in summary["best"]] == list(best["candidate_id"])


def test_best_candidates_have_cifs_and_locality(built, frame):
    result, calls = built
    ids = [b.candidate_id for b in result.summary.best]
    # Final structures of the best candidates, then the raw generated structures of the
    # 3 largest unconditional cells (the locality-bias sample).
    uncond = frame[frame["mode"] != "host"].sort_values(
        ["natoms", "candidate_id"], ascending=[False, True]
    )
    largest = list(uncond["candidate_id"].head(3))
    assert calls == [(ids, "final"), (largest, "generated")]
    assert set(result.cifs) == set(ids[1:])
    cif = Structure.from_file(result.cifs[ids[1]])
    assert cif.composition.reduced_formula == "ZnS"
    html = result.html.read_text()
    assert html.count('download="') == len(ids) - 1
    locality = json.loads((result.out_dir / "locality.json").read_text())
    # The "generated" supercells are the reference itself: identical local environments.
    assert locality["n_generated"] == 2  # one of the 3 has no structure
    assert all(d == pytest.approx(0.0, abs=1e-9) for d in locality["rdf_distance"].values())


def test_empty_campaign_report_says_what_is_missing(tmp_path):
    result = build_report(pd.DataFrame(), tmp_path / "empty", campaign="nothing-yet")
    html = result.html.read_text()
    assert result.figures == {}
    assert "No candidates found for this campaign" in html
    assert "No reference structures were given" in html
    summary = json.loads((tmp_path / "empty" / "summary.json").read_text())
    assert summary["n_candidates"] == 0 and summary["missing"]


def test_partial_campaign_report(frame, tmp_path):
    # Only generation and the first relaxation have run.
    partial = frame[
        [
            "campaign",
            "candidate_id",
            "reduced_formula",
            "natoms",
            "stage",
            "valid",
            "de_uncond",
            "rmsd_uncond",
            "symmetric_uncond",
        ]
    ]
    result = build_report(partial, tmp_path / "partial")
    assert set(result.figures) == {"funnel", "de_rmsd", "symmetry_composition", "symmetry_natoms"}
    html = result.html.read_text()
    assert "No E_d values yet" in html
    assert "No r2SCAN results yet" in html
    assert f"{partial['de_uncond'].median():.3f}" in html


def test_rebuild_replaces_previous_report(frame, tmp_path):
    out = tmp_path / "again"
    build_report(frame, out)
    (out / "stale.txt").write_text("old")
    build_report(frame.head(50), out)
    assert not (out / "stale.txt").exists()
    assert json.loads((out / "summary.json").read_text())["n_candidates"] == 50


def test_many_groups_keep_the_largest(tmp_path):
    # 40 cell sizes: the natoms figure keeps the 30 largest groups, in numeric order.
    from chggen_flows.report import gather
    from chggen_flows.report.data import normalise_frame
    from chggen_flows.report.figures import MAX_GROUPS, symmetry_natoms_figure

    sizes = np.repeat(np.arange(1, 41), np.arange(1, 41))  # size k appears k times
    frame = pd.DataFrame(
        {
            "candidate_id": [f"c{i}" for i in range(len(sizes))],
            "natoms": sizes,
            "symmetric_uncond": np.arange(len(sizes)) % 3 == 0,
            "symmetric": np.arange(len(sizes)) % 2 == 0,
        }
    )
    summary = gather(frame)
    assert len(summary.symmetry_by_natoms) == 40
    fig = symmetry_natoms_figure(summary, normalise_frame(frame))
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == [str(k) for k in range(41 - MAX_GROUPS, 41)]


def test_refuses_to_replace_a_foreign_directory(frame, tmp_path):
    from chggen_flows.errors import InputError

    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(InputError, match="not replaced"):
        build_report(frame, foreign)
    assert (foreign / "thesis.tex").read_text() == "precious"
    empty = tmp_path / "empty-dir"
    empty.mkdir()
    assert build_report(frame.head(10), empty).html.is_file()


def test_html_escapes_names(frame, tmp_path):
    odd = frame.head(30).copy()
    odd["candidate_id"] = [f"<i>{i}</i>" for i in range(len(odd))]
    result = build_report(odd, tmp_path / "odd", campaign="<script>alert(1)</script>")
    html = result.html.read_text()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<i>" not in html and "&lt;i&gt;" in html


def test_cif_names_are_safe_file_names(frame, tmp_path):
    from chggen_flows.report.html import cif_name

    assert cif_name("Li5Si2-fu2-L000-S001") == "Li5Si2-fu2-L000-S001.cif"
    assert cif_name("../a b/c") == ".._a_b_c.cif"
    odd = frame.head(40).copy()
    odd["candidate_id"] = [f"run/{i}" for i in range(len(odd))]
    result = build_report(
        odd, tmp_path / "ids", structure_loader=lambda ids, stage: {i: zincblende() for i in ids}
    )
    assert result.cifs and all(p.parent == tmp_path / "ids" / "cifs" for p in result.cifs.values())
    assert all(p.is_file() for p in result.cifs.values())
