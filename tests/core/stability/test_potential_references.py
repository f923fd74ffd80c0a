"""Hulls are tied to the potential that made them; mixing potentials is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from monty.serialization import dumpfn, loadfn
from pymatgen.entries.computed_entries import ComputedEntry

import chggen_flows.core.stability.references as references
from chggen_flows.core.relax import RelaxSettings
from chggen_flows.core.relax.potentials import weights_checksum
from chggen_flows.core.stability import (
    EntriesReference,
    OfflineCHGNetReference,
    check_reference_potential,
    compute_e_d,
    get_reference,
    potential_reference_files,
)
from chggen_flows.core.stability.build_references import build_reference_set
from chggen_flows.core.stability.references import (
    EntriesFileReference,
    set_potential,
    shipped_reference_files,
)
from chggen_flows.errors import InputError, PotentialMismatchError

# Small cells of the shipped Li-Si set: a hull with one compound, relaxed in seconds.
TINY_IDS = ("prototype-Li", "prototype-Si", "mp-1056579", "mp-570363")


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory) -> Path:
    data = loadfn(next(p for p in shipped_reference_files() if p.name == "Li-Si.json.gz"))
    data["entries"] = [e for e in data["entries"] if e.entry_id in TINY_IDS]
    path = tmp_path_factory.mktemp("shipped") / "Li-Si.json.gz"
    dumpfn(data, path)
    return path


def test_shipped_sets_are_chgnet_and_the_default_path_is_unchanged() -> None:
    provider = OfflineCHGNetReference()
    assert provider.potential == "chgnet" and provider.label == "offline-chgnet"
    assert provider.functional == "GGA_GGA+U"
    assert {set_potential(loadfn(p)) for p in shipped_reference_files()} == {"chgnet"}
    plain = compute_e_d([("LiSi", -3.6), ("Li15Si4", -2.5)], provider)
    named = compute_e_d([("LiSi", -3.6), ("Li15Si4", -2.5)], provider, potential="chgnet")
    assert [r.e_d for r in plain] == [r.e_d for r in named]
    assert plain[0].potential is None and named[0].potential == "chgnet"


def test_candidates_of_another_potential_are_refused_by_the_chgnet_hull() -> None:
    provider = get_reference("offline")
    for other in ("chgnet-r2scan", "sevennet-0"):
        with pytest.raises(PotentialMismatchError, match=f"'{other}'.*made by 'chgnet'"):
            compute_e_d([("LiSi", -3.6)], provider, potential=other)
    with pytest.raises(InputError, match="unknown potential"):
        compute_e_d([("LiSi", -3.6)], provider, potential="mace")


def test_dft_hulls_must_be_on_the_potentials_functional() -> None:
    gga = EntriesReference([ComputedEntry("Li", -1.9), ComputedEntry("Si", -5.4)], "g", "GGA_GGA+U")
    r2scan = EntriesReference([ComputedEntry("Li", -2.3), ComputedEntry("Si", -8.1)], "r", "r2SCAN")
    check_reference_potential("chgnet", gga)
    check_reference_potential("chgnet-r2scan", r2scan)
    # SevenNet's MPtrj energies lack the MP2020 corrections: its own hulls only
    with pytest.raises(PotentialMismatchError, match="uncorrected GGA_GGA\\+U"):
        check_reference_potential("sevennet-0", gga)
    with pytest.raises(PotentialMismatchError, match="r2SCAN energies but the hull 'g'"):
        check_reference_potential("chgnet-r2scan", gga)
    with pytest.raises(PotentialMismatchError, match="GGA_GGA\\+U energies"):
        compute_e_d([("LiSi", -3.6)], r2scan, potential="chgnet")


def test_a_set_of_one_potential_cannot_be_loaded_as_another() -> None:
    with pytest.raises(
        PotentialMismatchError, match="made by potential 'chgnet', not 'sevennet-0'"
    ):
        OfflineCHGNetReference(files=shipped_reference_files(), potential="sevennet-0")


def test_relax_settings_and_reference_must_name_the_same_potential() -> None:
    with pytest.raises(PotentialMismatchError, match="relaxed with 'chgnet' for a 'chgnet-r2scan'"):
        get_reference("offline", potential="chgnet-r2scan", relax_settings=RelaxSettings())


def test_other_potentials_build_their_sets_once_and_cache_them(
    tiny_set, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(references, "shipped_reference_files", lambda: [tiny_set])
    (path,) = potential_reference_files("chgnet-r2scan", tmp_path)
    assert path == tmp_path / "references" / "chgnet-r2scan" / "Li-Si.json.gz"
    data = loadfn(path)
    assert data["potential"] == "chgnet-r2scan" and data["functional"] == "r2SCAN"
    assert data["weights_checksum"] == weights_checksum("chgnet-r2scan")
    assert sorted(e.entry_id for e in data["entries"]) == sorted(TINY_IDS)
    assert data["missing_phases"]  # carried over from the shipped set
    shipped = {e.entry_id: e.energy_per_atom for e in loadfn(tiny_set)["entries"]}
    # r2SCAN energies are on another scale: several eV/atom from the GGA ones
    assert all(abs(e.energy_per_atom - shipped[e.entry_id]) > 0.5 for e in data["entries"])

    def no_relaxing(*args, **kwargs):
        raise AssertionError("a cached set was rebuilt")

    monkeypatch.setattr(references, "relaxed_entries", no_relaxing)
    provider = get_reference("offline", potential="chgnet-r2scan", cache_dir=tmp_path)
    assert provider.label == "offline-chgnet-r2scan" and provider.functional == "r2SCAN"
    (record,) = compute_e_d([("LiSi", -4.0)], provider, potential="chgnet-r2scan")
    assert record.reference == "offline-chgnet-r2scan"
    with pytest.raises(PotentialMismatchError):
        compute_e_d([("LiSi", -4.0)], provider, potential="chgnet")


def test_a_cached_set_for_other_weights_is_rebuilt(tiny_set, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(references, "shipped_reference_files", lambda: [tiny_set])
    stale = tmp_path / "references" / "chgnet-r2scan" / "Li-Si.json.gz"
    stale.parent.mkdir(parents=True)
    dumpfn({**loadfn(tiny_set), "weights_checksum": "sha256:old"}, stale)
    (path,) = potential_reference_files("chgnet-r2scan", tmp_path)
    assert loadfn(path)["weights_checksum"] == weights_checksum("chgnet-r2scan")


def test_a_user_built_set_records_its_potential(tmp_path) -> None:
    lisi = next(p for p in shipped_reference_files() if p.name == "Li-Si.json.gz")
    data = {e.entry_id: e.structure for e in loadfn(lisi)["entries"]}
    structures = {k: data[k] for k in ("prototype-Li", "prototype-Si", "mp-570363")}
    out = build_reference_set(
        structures,
        "Li-Si",
        tmp_path / "mine.json.gz",
        relax_settings=RelaxSettings(potential="chgnet-r2scan", max_steps=5, device="cpu"),
    )
    provider = EntriesFileReference(out)
    assert provider.potential == "chgnet-r2scan" and provider.functional == "r2SCAN"
    with pytest.raises(PotentialMismatchError):
        compute_e_d([("LiSi", -4.0)], provider, potential="chgnet")
    compute_e_d([("LiSi", -4.0)], provider, potential="chgnet-r2scan")
