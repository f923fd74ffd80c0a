"""Reference providers: entries files (JSON, CSV), the Materials Project path and errors."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlparse

import pytest
import requests
from monty.serialization import dumpfn
from pymatgen.analysis.phase_diagram import PhaseDiagram
from pymatgen.entries.computed_entries import ComputedEntry

from chggen_flows.core.stability import MPReference, compute_e_d, get_reference
from chggen_flows.core.stability.references import EntriesFileReference
from chggen_flows.errors import ConfigError, InputError, ReferenceDataError

MP_DIR = Path(__file__).parents[2] / "test_data" / "mp"

LI_SI = {"Li": -1.9089, "Si": -5.4253, "LiSi": -3.75, "Li2Si": -3.0, "Li15Si4": -2.87}


def _entries():
    return [
        ComputedEntry(f, e * ComputedEntry(f, 0).composition.num_atoms) for f, e in LI_SI.items()
    ]


def test_json_and_csv_files_give_the_same_hull(tmp_path):
    dumpfn(_entries(), tmp_path / "refs.json")
    (tmp_path / "refs.csv").write_text(
        "formula,energy_per_atom\n" + "".join(f"{f},{e}\n" for f, e in LI_SI.items())
    )
    # total energies of the formula as written are accepted too
    (tmp_path / "total.csv").write_text(
        "formula,energy\n"
        + "".join(
            f"{f},{e * ComputedEntry(f, 0).composition.num_atoms}\n" for f, e in LI_SI.items()
        )
    )
    results = []
    for name in ("refs.json", "refs.csv", "total.csv"):
        provider = get_reference(str(tmp_path / name))
        assert provider.label == f"file:{name}"
        assert provider.functional == "GGA_GGA+U"
        results.append([r.e_d for r in compute_e_d([("Li2Si", -3.0), ("LiSi", -3.7)], provider)])
    expected = PhaseDiagram(_entries())
    assert results[0] == pytest.approx(results[1])
    assert results[0] == pytest.approx(results[2])
    assert results[0][1] == pytest.approx(
        -3.7 - expected.get_hull_energy_per_atom(ComputedEntry("LiSi", 0).composition)
    )


def test_functional_is_read_from_the_entries(tmp_path):
    path = tmp_path / "scan.json.gz"
    dumpfn(
        [ComputedEntry("Si", -23.4, parameters={"run_type": "r2SCAN"})],
        path,
    )
    assert get_reference(str(path)).functional == "r2SCAN"


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("empty.json", "[]"),
        ("empty.csv", "formula,energy_per_atom\n"),
        ("broken.json", "{not json"),
        ("wrong.json", json.dumps([{"formula": "Si"}])),
        ("nocolumn.csv", "formula,enthalpy\nSi,-5.4\n"),
        ("badnumber.csv", "formula,energy_per_atom\nSi,lots\n"),
    ],
)
def test_empty_or_malformed_files_are_input_errors(tmp_path, name, content):
    (tmp_path / name).write_text(content)
    with pytest.raises(InputError) as err:
        get_reference(str(tmp_path / name))
    assert err.value.hint


def test_unknown_source_and_missing_file(tmp_path):
    with pytest.raises(InputError, match="unknown reference source"):
        get_reference("materialsproject")
    with pytest.raises(InputError, match="does not exist"):
        get_reference(str(tmp_path / "nope.json"))


def test_mixed_functionals_in_a_file_are_refused(tmp_path):
    path = tmp_path / "mixed.json"
    dumpfn(
        [
            ComputedEntry("Si", -5.4, parameters={"run_type": "GGA"}),
            ComputedEntry("Li", -1.9, parameters={"run_type": "r2SCAN"}),
        ],
        path,
    )
    with pytest.raises(ReferenceDataError, match="mixes"):
        EntriesFileReference(path)


# ------------------------------------------------------------------ Materials Project


class _Response:
    def __init__(self, url: str, body: dict, status: int = 200) -> None:
        self.url, self.status_code, self.text = url, status, json.dumps(body)

    def json(self) -> dict:
        return json.loads(self.text)


@pytest.fixture
def mp_server(monkeypatch):
    """The MP API at the HTTP layer: every request mp-api makes goes through
    ``requests.Session.request`` and is answered from the recorded thermo documents."""
    docs = json.loads((MP_DIR / "thermo_Li-Si.json").read_text())["data"]
    calls: list[tuple[str, dict | None]] = []

    def request(self, method, url, params=None, **kwargs):
        path = urlparse(url).path
        calls.append((path, params))
        if path.endswith("/heartbeat"):
            body = {
                "db_version": "2025_09_25",
                "version": "0.87.3",
                "access_controlled_batch_ids": [],
            }
            return _Response(url, body)
        if path.rstrip("/").endswith("materials/thermo"):
            systems = set(params["chemsys"].split(","))
            found = [
                d
                for d in docs
                if d["chemsys"] in systems and d["thermo_type"] == params["thermo_types"]
            ]
            return _Response(url, {"data": found, "meta": {"total_doc": len(found)}})
        return _Response(url, {"detail": "not found"}, 404)

    monkeypatch.setattr(requests.Session, "request", request)
    monkeypatch.setenv("MP_API_KEY", "x" * 32)
    return calls


def test_mp_entries_through_mp_api_with_disk_cache(mp_server, tmp_path):
    provider = get_reference("mp", cache_dir=tmp_path)
    assert provider.label == "mp-gga-mp2020"
    entries = provider.entries(["Li", "Si"])
    thermo_calls = [p for path, p in mp_server if "thermo" in path]
    assert len(thermo_calls) == 1
    assert thermo_calls[0]["thermo_types"] == "GGA_GGA+U"
    assert set(thermo_calls[0]["chemsys"].split(",")) == {"Li", "Si", "Li-Si"}
    assert {e.entry_id for e in entries} == {
        "mp-149-GGA",
        "mp-1018134-GGA",
        "mp-567337-GGA",
        "mp-569849-GGA",
        "mp-570363-GGA",
    }
    cached = list((tmp_path / "mp").glob("*.json.gz"))
    assert [p.name for p in cached] == ["mp-gga-mp2020_Li-Si.json.gz"]

    # E_d of MP's metastable LiSi equals pymatgen's own e_above_hull on the same entries
    lisi = next(e for e in entries if e.entry_id == "mp-570363-GGA")
    (record,) = compute_e_d([(lisi.composition, lisi.energy_per_atom)], provider)
    assert record.e_d == pytest.approx(PhaseDiagram(entries).get_e_above_hull(lisi), abs=1e-8)
    assert record.e_d > 0

    # A new provider (a new campaign) asks nothing: both the system and a subsystem
    # are answered from the disk cache.
    mp_server.clear()
    again = MPReference(cache_dir=tmp_path)
    assert len(again.entries(["Si", "Li"])) == 5
    assert len(again.entries(["Si"])) == 1
    assert not [c for c in mp_server if "thermo" in c[0]]


def test_mp_r2scan_asks_for_the_r2scan_thermo_type(mp_server, tmp_path):
    provider = get_reference("mp-r2scan", cache_dir=tmp_path)
    assert provider.functional == "r2SCAN"
    # the recording has no r2SCAN documents: a clear error, and nothing cached
    with pytest.raises(ReferenceDataError, match="returned no entries"):
        provider.entries(["Li", "Si"])
    # (mp-api spells the R2SCAN thermo type "r2SCAN" on the wire)
    assert [p["thermo_types"] for path, p in mp_server if "thermo" in path] == ["r2SCAN"]
    assert not list(tmp_path.rglob("*.json.gz"))


def test_mp_without_api_key_is_a_config_error(monkeypatch, tmp_path):
    monkeypatch.delenv("MP_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="API key"):
        get_reference("mp", cache_dir=tmp_path)


def test_mp_server_errors_become_reference_errors(monkeypatch, tmp_path):
    def refuse(self, method, url, **kwargs):
        raise requests.ConnectionError("network unreachable")

    monkeypatch.setattr(requests.Session, "request", refuse)
    provider = MPReference(api_key="x" * 32, cache_dir=tmp_path)
    with pytest.raises(ReferenceDataError, match="failed"):
        provider.entries(["Li", "Si"])
    assert not (tmp_path / "mp").exists() or not any((tmp_path / "mp").iterdir())


def test_a_damaged_cache_file_is_refetched(mp_server, tmp_path):
    cache = tmp_path / "mp" / "mp-gga-mp2020_Li-Si.json.gz"
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"\x1f\x8b truncated")
    assert len(MPReference(cache_dir=tmp_path).entries(["Li", "Si"])) == 5
    assert [c for c in mp_server if "thermo" in c[0]]
    assert len(MPReference(cache_dir=tmp_path)._cached(("Li", "Si"))) == 5  # rewritten
