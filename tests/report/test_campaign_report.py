"""`chggen report` on a real tiny campaign in a real database: empty, partial, finished.

The numbers of the report are checked against the stage documents in the JobStore,
read here directly (each quantity from the documents of the stage that computes it),
not through ``load_candidates`` or the report's own code.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.campaign.helpers import tiny_checkpoint, tiny_spec, write_spec


def stage_values(settings, campaign: str) -> dict[str, dict[str, dict]]:
    """``{stage: {candidate_id: record}}`` straight from the StageDocuments."""
    from chggen_flows.db import get_job_store

    store = get_job_store(settings)
    store.connect()
    out: dict[str, dict[str, dict]] = {}
    for doc in store.query(
        {"metadata.campaign": campaign, "output.@class": "StageDocument"},
        properties=["output.stage", "output.candidates"],
        load={"data": ["candidates"]},  # the E_d job keeps its records in the data store
    ):
        for record in doc["output"]["candidates"]:
            out.setdefault(doc["output"]["stage"], {})[record["candidate_id"]] = record
    return out


def summary_of(out) -> dict:
    return json.loads((out / "summary.json").read_text())


@pytest.mark.slow
def test_report_of_a_real_campaign(cli, db_env, tmp_path):
    spec = write_spec(tmp_path, tiny_spec(tiny_checkpoint(tmp_path / "tiny.pt")))
    assert cli("db", "init").exit_code == 0
    res = cli("campaign", "submit", spec)
    assert res.exit_code == 0, res.stderr
    campaign = res.stdout.split("submitted ")[1].split()[0]

    # Submitted, nothing run: a report that says so (the prefix of the id is enough).
    res = cli("report", campaign[:12], "--out", tmp_path / "empty")
    assert res.exit_code == 0, res.stderr
    empty = summary_of(tmp_path / "empty")
    assert empty["campaign"] == campaign and empty["n_candidates"] == 0
    assert "nothing has been generated" in (tmp_path / "empty" / "report.html").read_text()

    # Generation and the first relaxations only.
    assert cli("run", "-c", "gpu", "-c", "cpu", "--max-jobs", "4").exit_code == 0
    res = cli("report", campaign, "--out", tmp_path / "partial")
    assert res.exit_code == 0, res.stderr
    partial = summary_of(tmp_path / "partial")
    so_far = stage_values(db_env, campaign)
    assert 0 < partial["n_candidates"] == len(so_far["generated"])
    assert partial["e_d"]["n"] == len(so_far.get("ehull", {}))
    if "ehull" not in so_far:
        assert any("E_d" in note for note in partial["missing"])

    # The whole campaign (DFT jobs stay waiting: no VASP worker).
    assert cli("run", "-c", "gpu", "-c", "cpu").exit_code == 0
    out = tmp_path / "full"
    res = cli("report", campaign, "--out", out, "--top", "3", "--reference", "offline")
    assert res.exit_code == 0, res.stderr
    summary = summary_of(out)
    stages = stage_values(db_env, campaign)

    for name in ("funnel", "de_rmsd", "e_d", "hull", "symmetry_composition", "symmetry_natoms"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 1000
    html = (out / "report.html").read_text()

    # rejected candidates carry no dE (None): the report's medians leave them out
    de_u = [r["de_uncond"] for r in stages["relaxed"].values() if r["de_uncond"] is not None]
    de_i = [
        r["de_inpaint"] for r in stages["relaxed_inpaint"].values() if r["de_inpaint"] is not None
    ]
    de = {d["label"]: d for d in summary["de"]}
    assert de["unconditional"]["median"] == pytest.approx(np.median(de_u))
    assert de["inpainting"]["median"] == pytest.approx(np.median(de_i))
    assert f"{np.median(de_u):.3f}" in html
    rmsd_u = [r["rmsd_uncond"] for r in stages["relaxed"].values() if r["rmsd_uncond"] is not None]
    assert summary["rmsd"][0]["median"] == pytest.approx(np.median(rmsd_u))

    ehull = [r for r in stages["ehull"].values() if r["duplicate_of"] is None]
    e_d = np.array([r["e_d"] for r in ehull])
    assert summary["e_d"]["n"] == len(e_d)
    assert summary["e_d"]["median"] == pytest.approx(np.median(e_d))
    assert summary["e_d"]["fraction_below_zero"] == pytest.approx(np.mean(e_d < 0))
    assert summary["e_d_references"] == sorted({r["e_d_reference"] for r in ehull})

    classified = stages["classified"].values()
    # rates over the candidates whose symmetry is known (rejected ones carry None)
    rate_inpaint = np.mean([r["symmetric"] for r in classified if r["symmetric"] is not None])
    rate_uncond = np.mean(
        [
            r["symmetric_uncond"]
            for r in stages["framework"].values()
            if r["symmetric_uncond"] is not None
        ]
    )
    assert summary["symmetry_overall"]["rate_inpaint"] == pytest.approx(rate_inpaint)
    assert summary["symmetry_overall"]["rate_uncond"] == pytest.approx(rate_uncond)

    funnel = {s["name"]: s["count"] for s in summary["funnel"]}
    assert funnel["generated"] == len(stages["generated"])
    assert funnel["framework found"] == sum(
        1 for r in stages["framework"].values() if r["framework_found"]
    )

    best = sorted(ehull, key=lambda r: (r["e_d"], r["candidate_id"]))[:3]
    assert [b["candidate_id"] for b in summary["best"]] == [r["candidate_id"] for r in best]
    for record in best:
        assert (out / "cifs" / f"{record['candidate_id']}.cif").is_file()
    # Locality section: the raw generated structures of all 4 (unconditional) candidates
    # vs the shipped Li-Si compounds.
    locality = json.loads((out / "locality.json").read_text())
    assert locality["n_generated"] == 4 and locality["n_reference"] >= 2
    assert set(locality["rdf_distance"]) == {"Li-Li", "Li-Si", "Si-Si"}
    assert (out / "figures" / "locality.png").is_file()
    # The same analysis from the command line, straight from the campaign.
    res = cli("analysis", "locality", "--campaign", campaign, "-r", "offline", "--json")
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["rdf_distance"] == pytest.approx(locality["rdf_distance"])
