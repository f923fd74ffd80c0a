"""Campaign spec validation: good specs parse, bad ones fail with a message naming the field."""

from __future__ import annotations

import pytest

from chggen_flows.campaign.spec import (
    CompositionLine,
    CompositionRange,
    example_names,
    example_path,
    load_spec,
    parse_spec,
    plain_formula,
)
from chggen_flows.errors import CheckpointError, InputError
from tests.campaign.helpers import REFERENCE_CSV, tiny_spec, write_spec


def _spec(tmp_path, **overrides):
    checkpoint = tmp_path / "model.pt"
    checkpoint.write_bytes(b"placeholder")  # existence is checked here; content at submit
    return tiny_spec(checkpoint, **overrides)


def test_valid_spec_resolves_paths_and_hash_is_stable(tmp_path):
    spec = load_spec(write_spec(tmp_path, _spec(tmp_path)))
    assert spec.all_compositions() == ["Li3Si", "Li2Si"]
    assert spec.model.checkpoint == str((tmp_path / "model.pt").resolve())
    assert spec.stability.reference == str(REFERENCE_CSV)
    again = load_spec(write_spec(tmp_path, _spec(tmp_path), "copy.yaml"))
    assert spec.spec_hash() == again.spec_hash()
    changed = load_spec(write_spec(tmp_path, _spec(tmp_path, seed=4), "seed.yaml"))
    assert changed.spec_hash() != spec.spec_hash()


def test_composition_range_keeps_reduced_li_rich_formulas():
    formulas = CompositionRange(elements=["Li", "Si"], max_count=5, condition="Li > Si").expand()
    assert "Li5Si2" in formulas and "Li2Si" in formulas
    assert "LiSi" not in formulas and "Li2Si2" not in formulas and "LiSi2" not in formulas
    for formula in formulas:
        from pymatgen.core import Composition

        comp = Composition(formula)
        assert comp["Li"] > comp["Si"]


def test_composition_line_gives_the_paper_zn_p_s_phases():
    line = CompositionLine(endpoints=("ZnS", "P2S5"), ratios=[(1, 1), (2, 1), (2, 2)])
    assert line.expand() == ["ZnP2S6", "Zn2P2S7"]  # 2:2 reduces to 1:1


def test_plain_formula_has_no_polyanion_brackets():
    from pymatgen.core import Composition

    assert plain_formula(Composition("Zn2P4S12")) == "ZnP2S6"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"compositions": ["Li3Xx"]}, "unknown element 'Xx'"),
        ({"guests": ["Qq"]}, "unknown element 'Qq'"),
        ({"formula_units": [0, 2]}, "formula unit counts must be positive"),
        ({"formula_units": [-1]}, "formula unit counts must be positive"),
        ({"lattices_per_composition": 0}, "lattices_per_composition"),
        ({"candidates_per_lattice": -3}, "candidates_per_lattice"),
        ({"v0": {"source": "value", "value": 0.5}}, "impossible volume per atom"),
        ({"v0": {"source": "value", "value": -20}}, "impossible volume per atom"),
        ({"routing": {"generate": "tpu"}}, "unknown category 'tpu'"),
        ({"routing": {"painting": "cpu"}}, "unknown stage 'painting'"),
        ({"compositions": []}, "no compositions"),
        ({"composition_range": {"elements": ["Li", "Si"], "condition": "import os"}}, "condition"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_specs_raise_input_errors_naming_the_problem(tmp_path, overrides, message):
    with pytest.raises(InputError) as info:
        load_spec(write_spec(tmp_path, _spec(tmp_path, **overrides)))
    assert message in info.value.message
    assert info.value.hint


def test_condition_cannot_run_code():
    with pytest.raises(ValueError, match="unsupported expression"):
        CompositionRange(elements=["Li", "Si"], condition="__import__('os').getcwd()").expand()


def test_missing_checkpoint_is_a_checkpoint_error(tmp_path):
    data = tiny_spec(tmp_path / "absent.pt")
    with pytest.raises(CheckpointError, match="does not exist"):
        parse_spec(data, "test", tmp_path)


def test_missing_reference_file_and_host_are_input_errors(tmp_path):
    data = _spec(tmp_path, stability={"reference": "nowhere.csv"})
    with pytest.raises(InputError, match="entries file"):
        parse_spec(data, "test", tmp_path)
    data = _spec(
        tmp_path,
        mode="host",
        host={"structure": "none.cif", "guests": {"Li": 2}, "n_candidates": 2},
    )
    with pytest.raises(InputError, match="host structure"):
        parse_spec(data, "test", tmp_path)


def test_every_shipped_example_is_valid():
    names = example_names()
    assert {"li-si-quick", "li-si", "zn-p-s", "si-lithiation"} <= set(names)
    for name in names:
        spec = load_spec(example_path(name))
        assert spec.name == name
    with pytest.raises(InputError, match="no example"):
        example_path("nope")
