"""Structure sources: every format, the filters, the related-to rule, clear errors."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from pymatgen.core import Structure

from chggen_flows.core.sources import (
    SOURCES,
    SourceFilter,
    is_related,
    load_structures,
    open_source,
    parse_chemical_systems,
)
from chggen_flows.core.sources.readers import materials_project
from chggen_flows.errors import ConfigError, InputError

DATA = Path(__file__).parents[2] / "test_data" / "hosts"
MP20 = DATA / "mp20_templates.csv"
MPTS52 = DATA / "mpts52_templates.csv"


def test_builtin_sources_are_registered():
    assert {"cif_folder", "json", "csv", "materials_project"} <= set(SOURCES)
    assert open_source(MP20).kind == "csv"
    assert open_source(DATA).kind == "cif_folder"
    assert open_source("materials_project").kind == "materials_project"


def test_csv_reads_both_table_layouts_with_metadata():
    entries = load_structures([MP20, MPTS52])
    assert len(entries) == 17
    by_id = {e.material_id: e for e in entries}
    cdps3 = by_id["mp-5328"]
    assert cdps3.formula == "CdPS3"
    assert cdps3.e_above_hull == 0.0
    assert cdps3.spacegroup_number is not None  # MP-20 has a spacegroup.number column
    assert by_id["mp-30311"].spacegroup_number is None  # MPTS-52 has none: spglib's
    assert by_id["mp-30311"].spacegroup()[0] > 1
    assert by_id["mp-30311"].e_above_hull == pytest.approx(0.00642, abs=1e-4)


def test_filters_exclude_elements_formulas_and_ids():
    no_zn = load_structures([MP20, MPTS52], SourceFilter.build(exclude_elements=["Zn"]))
    assert not any("Zn" in e.elements for e in no_zn)
    assert len(no_zn) == 14  # ZnPS3, Zn3(PS4)2, LiZnPS4 dropped
    ps3 = load_structures(MP20, SourceFilter.build(formulas=["Cd2P2S6", "NiPS3"]))
    assert sorted(e.formula for e in ps3) == ["CdPS3", "NiPS3"]
    one = load_structures(MP20, SourceFilter.build(material_ids="mp-22526"))
    assert [e.formula for e in one] == ["LiCoO2"]
    dropped = load_structures(
        MP20, SourceFilter.build(include_elements=["P", "S"], exclude_ids=["mp-5328"])
    )
    assert "mp-5328" not in {e.material_id for e in dropped}
    assert all({"P", "S"} <= e.elements for e in dropped)
    small = load_structures(MP20, SourceFilter.build(max_atoms=10, max_e_above_hull=0.03))
    assert all(len(e.structure) <= 10 and e.e_above_hull <= 0.03 for e in small)


def test_related_to_is_the_training_focus_rule():
    systems = parse_chemical_systems("Zn-P-S")
    assert is_related({"Cd", "P", "S"}, systems)  # shares P and S
    assert is_related({"S"}, systems)  # made of its elements
    assert not is_related({"Li", "Co", "O"}, systems)
    assert not is_related({"Zn", "O"}, systems)  # one shared element only
    related = load_structures(MP20, SourceFilter.build(related_to="Zn-P-S"))
    assert "LiCoO2" not in {e.formula for e in related}
    assert all(is_related(e.elements, systems) for e in related)
    # the training dataset's related_to gives the same answer on the same structures
    from chggen_flows.core.model.data import CrystalDataset

    dataset = CrystalDataset.from_structures(
        (e.material_id, e.structure) for e in load_structures(MP20)
    )
    kept = {dataset.material_ids[i] for i in dataset.related_to(["Zn-P-S"]).tolist()}
    assert kept == {e.material_id for e in related}


def test_within_keeps_structures_of_the_system_only():
    within = load_structures([MP20, MPTS52], SourceFilter.build(within="Zn-P-S"))
    assert sorted(e.formula for e in within) == ["P2S7", "Zn3(PS4)2", "ZnPS3"]


def test_json_list_dict_and_records(tmp_path):
    entries = load_structures(MP20, SourceFilter.build(formulas=["CdPS3", "NiPS3"]))
    listing = tmp_path / "list.json"
    listing.write_text(json.dumps([e.structure.as_dict() for e in entries]))
    mapping = tmp_path / "dict.json"
    mapping.write_text(json.dumps({e.material_id: e.structure.as_dict() for e in entries}))
    records = tmp_path / "records.json"
    records.write_text(
        json.dumps(
            [
                {
                    "material_id": e.material_id,
                    "structure": e.structure.as_dict(),
                    "e_above_hull": 0.01,
                }
                for e in entries
            ]
        )
    )
    assert [e.material_id for e in load_structures(listing)] == ["0", "1"]
    single = tmp_path / "CdPS3.json"
    single.write_text(json.dumps(entries[0].structure.as_dict()))
    assert [e.material_id for e in load_structures(single)] == ["CdPS3"]
    assert {e.material_id for e in load_structures(mapping)} == {"mp-5328", "mp-676040"}
    got = load_structures(records, SourceFilter.build(exclude_elements="Ni"))
    assert [(e.material_id, e.e_above_hull) for e in got] == [("mp-5328", 0.01)]
    assert got[0].structure == entries[[x.material_id for x in entries].index("mp-5328")].structure


def test_cif_folder(tmp_path):
    for entry in load_structures(MP20, SourceFilter.build(include_elements=["P", "S"])):
        entry.structure.to(filename=str(tmp_path / f"{entry.material_id}.cif"))
    entries = load_structures(tmp_path, SourceFilter.build(exclude_elements=["Zn"]))
    assert "mp-5328" in {e.material_id for e in entries}
    assert not any("Zn" in e.elements for e in entries)


def test_disordered_cif_kept_unless_ordered_only(tmp_path):
    structure = Structure.from_dict(
        load_structures(MP20, SourceFilter.build(material_ids="mp-22526"))[0].structure.as_dict()
    )
    structure.replace_species({"Li": {"Li": 0.5}})
    structure.to(filename=str(tmp_path / "Li0.5CoO2.cif"))
    (entry,) = load_structures(tmp_path)
    assert not entry.ordered
    assert load_structures(tmp_path, SourceFilter.build(ordered_only=True)) == []


def test_clear_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_structures(tmp_path / "nope.csv")
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(InputError, match="cannot tell"):
        open_source(tmp_path / "x.txt")
    bad = tmp_path / "bad.csv"
    bad.write_text("material_id,structure\nmp-1,abc\n")
    with pytest.raises(InputError, match="no `cif` column"):
        load_structures(bad)
    broken = tmp_path / "broken.csv"
    broken.write_text('material_id,cif\nmp-1,"data_x\n_cell_length_a 1\n"\n')
    with pytest.raises(InputError, match="cannot parse the CIF of mp-1"):
        load_structures(broken)
    notjson = tmp_path / "n.json"
    notjson.write_text('{"a": {"b": 1}}')
    with pytest.raises(InputError, match="not a pymatgen structure"):
        load_structures(notjson)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no structure files"):
        load_structures(empty)
    with pytest.raises(InputError, match="not element symbols"):
        SourceFilter.build(exclude_elements=["Zz"])
    with pytest.raises(InputError, match="not a chemical system"):
        SourceFilter.build(related_to="Zn-Qq")
    with pytest.raises(InputError, match="unknown structure source kind"):
        open_source(MP20, kind="nosql")


def _fake_doc(structure, material_id, above, number):
    return SimpleNamespace(
        material_id=material_id,
        formula_pretty=structure.composition.reduced_formula,
        structure=structure,
        energy_above_hull=above,
        symmetry=SimpleNamespace(number=number),
    )


class _FakeSummary:
    def __init__(self, docs):
        self.docs = docs
        self.calls = []

    def search(self, **kwargs):
        self.calls.append(kwargs)
        return self.docs


def test_materials_project_query_and_rows(monkeypatch):
    """MPRester's response objects mocked: no key or network in tests."""
    entries = load_structures(MP20, SourceFilter.build(formulas=["CdPS3", "ZnPS3", "LiCoO2"]))
    docs = [_fake_doc(e.structure, e.material_id, 0.02, 148) for e in entries]
    summary = _FakeSummary(docs)

    class FakeRester:
        def __init__(self, key):
            assert key == "secret"
            self.materials = SimpleNamespace(summary=summary)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    import mp_api.client

    monkeypatch.setattr(mp_api.client, "MPRester", FakeRester)
    monkeypatch.setenv("MP_API_KEY", "secret")
    query = SourceFilter.build(related_to="Zn-P-S", exclude_elements=["Zn"])
    got = load_structures("materials_project", query)
    assert [e.material_id for e in got] == ["mp-5328"]  # Zn and unrelated dropped locally
    assert got[0].spacegroup_number == 148 and got[0].e_above_hull == 0.02
    assert got[0].source == "materials_project"
    # the server is asked per element pair and for the system, never without Zn excluded
    assert len(summary.calls) == 4
    assert all(call["exclude_elements"] == ["Zn"] for call in summary.calls)
    assert {tuple(c["elements"]) for c in summary.calls if "elements" in c} == {
        ("P", "S"),
        ("P", "Zn"),
        ("S", "Zn"),
    }
    assert all("structure" in call["fields"] for call in summary.calls)


def test_materials_project_needs_a_key_and_a_filter(monkeypatch):
    for variable in materials_project.KEY_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    with pytest.raises(ConfigError, match="API key"):
        load_structures("mp", SourceFilter.build(within="Li-Co-O"))
    monkeypatch.setenv("MP_API_KEY", "secret")
    with pytest.raises(InputError, match="whole Materials Project"):
        load_structures("mp")
