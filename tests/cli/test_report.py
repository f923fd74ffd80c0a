"""``chggen report``: synthetic demo, candidates export file, bad input."""

from __future__ import annotations

import json

from pymatgen.core import Lattice, Structure

from chggen_flows.report.synthetic import synthetic_candidates


def test_report_help(cli):
    res = cli("report", "--help")
    assert res.exit_code == 0
    assert "--out" in res.stdout and "--reference" in res.stdout


def test_synthetic_report(cli, tmp_path):
    out = tmp_path / "demo"
    res = cli("report", "demo", "--synthetic", "200", "--out", out)
    assert res.exit_code == 0, res.stderr
    assert (out / "report.html").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_candidates"] == 200
    assert summary["campaign"] == "demo (synthetic data)"


def test_report_from_exported_csv_with_reference(cli, tmp_path):
    csv = tmp_path / "cands.csv"
    synthetic_candidates(120, campaign="exported").to_csv(csv, index=False)
    ref = tmp_path / "zns.cif"
    Structure.from_spacegroup(
        "F-43m", Lattice.cubic(5.41), ["Zn", "S"], [[0, 0, 0], [0.25, 0.25, 0.25]]
    ).to(filename=str(ref))
    out = tmp_path / "exported"
    res = cli("report", "exported", "--candidates", csv, "--reference", ref, "--out", out)
    assert res.exit_code == 0, res.stderr
    summary = json.loads((out / "summary.json").read_text())
    frame = synthetic_candidates(120, campaign="exported")
    assert summary["n_candidates"] == 120
    assert summary["e_d"]["n"] == frame[frame["duplicate_of"].isna()]["e_d"].notna().sum()
    # A CSV export has no structures: the report says so instead of failing.
    assert "structures are not available" in (out / "report.html").read_text()


def test_bad_input_exits_2(cli, tmp_path):
    res = cli("report", "x", "--candidates", tmp_path / "missing.csv")
    assert res.exit_code == 2
    assert "does not exist" in res.stderr
    res = cli("report", "x", "--synthetic", "5", "--candidates", tmp_path / "a.csv")
    assert res.exit_code == 2


def test_hull_reference_option(cli, tmp_path):
    out = tmp_path / "with-hull"
    res = cli("report", "zps", "--synthetic", "100", "--hull-reference", "offline", "--out", out)
    assert res.exit_code == 0, res.stderr
    assert (out / "figures" / "hull.png").is_file()
    res = cli("report", "zps", "--synthetic", "10", "--hull-reference", "nonsense.json")
    assert res.exit_code == 2


def test_default_out_directory(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = cli("report", "zps", "--synthetic", "20")
    assert res.exit_code == 0, res.stderr
    assert (tmp_path / "report-zps" / "report.html").is_file()
    # A directory that is not a report is never replaced.
    (tmp_path / "report-other").mkdir()
    (tmp_path / "report-other" / "notes.txt").write_text("keep")
    res = cli("report", "other", "--synthetic", "20")
    assert res.exit_code == 2
    assert (tmp_path / "report-other" / "notes.txt").read_text() == "keep"
