"""Campaign spec validation: good specs parse, bad ones fail with a message naming the field."""

from __future__ import annotations

import pytest

from chggen_flows.campaign.spec import (
    DEFAULT_ROUTING,
    SETTINGS_SECTIONS,
    CompositionLine,
    CompositionRange,
    StabilitySettings,
    V0Settings,
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


#: (section, its value in the spec, path of the error, part of the message): a typo key
#: and a bad value for every key of every settings section (the first three are the
#: specs measured to pass `chggen campaign submit` and fail hours later on a worker).
BAD_SECTIONS = [
    ("sampler", {"n_level": 200}, "sampler.n_level", "did you mean 'n_levels'?"),
    ("relax", {"fmax": -1}, "relax.fmax", "fmax must be > 0"),
    ("relax", {"potential": "mace9"}, "relax.potential", "unknown potential 'mace9'"),
    ("inpaint", {"jump_length": 0}, "inpaint.jump_length", "jump_length must be >= 1, got 0"),
    ("sampler", {"n_levels": 0}, "sampler.n_levels", "n_levels must be >= 1"),
    ("sampler", {"n_levels": 1.5}, "sampler.n_levels", "expected an integer, got 1.5"),
    ("sampler", {"sigma_max": 0.0001}, "sampler.sigma_max", "must be >= sigma_min"),
    ("sampler", {"sigma_min": 0}, "sampler.sigma_min", "sigma_min must be > 0"),
    ("sampler", {"sigma_min": "1e-3"}, "sampler.sigma_min", "write 1.0e-3"),
    ("sampler", {"n_corrector": -1}, "sampler.n_corrector", "n_corrector must be >= 0"),
    ("sampler", {"snr": 0}, "sampler.snr", "snr must be > 0"),
    ("sampler", {"corrector_norm": "sqrt2"}, "sampler.corrector_norm", "'sqrt3' or 'sqrt_dim'"),
    ("sampler", {"min_distance": -0.1}, "sampler.min_distance", "min_distance must be >= 0"),
    ("sampler", {"max_batch_atoms": 0}, "sampler.max_batch_atoms", "max_batch_atoms must be >= 1"),
    ("sampler", {"max_batch_size": 0}, "sampler.max_batch_size", "max_batch_size must be >= 1"),
    ("sampler", {"dtype": "float16"}, "sampler.dtype", "'float32' or 'float64'"),
    ("sampler", {"sigma_min": 2.0, "sigma_max": 1.0}, "sampler", "must be >= sigma_min"),
    ("inpaint", {"jump_lenght": 5}, "inpaint.jump_lenght", "did you mean 'jump_length'?"),
    ("inpaint", {"n_resample": 0}, "inpaint.n_resample", "n_resample must be >= 1"),
    ("inpaint", {"n_levels": 50}, "inpaint.n_levels", "belongs in the 'sampler' section"),
    ("inpaint", {"guest_symmetry": "on"}, "inpaint.guest_symmetry", "free, symmetric, compare"),
    (
        "inpaint",
        {"guest_max_displacement": -1},
        "inpaint.guest_max_displacement",
        "must be > 0",
    ),
    ("relax", {"fmx": 0.1}, "relax.fmx", "did you mean 'fmax'?"),
    ("relax", {"max_steps": -1}, "relax.max_steps", "max_steps must be >= 0"),
    ("relax", {"relax_cell": "yes"}, "relax.relax_cell", "expected true or false"),
    ("relax", {"batch_size": 0}, "relax.batch_size", "batch_size must be >= 1"),
    ("relax", {"min_distance": -1}, "relax.min_distance", "min_distance must be >= 0"),
    ("relax", {"device": 0}, "relax.device", "expected a string"),
    ("relax", {"model_path": 5}, "relax.model_path", "expected a string or a path or null"),
    ("relax", {"save_trajectory": "no"}, "relax.save_trajectory", "expected true or false"),
    ("relax", {"threads": 0}, "relax.threads", "threads must be >= 1"),
    ("relax", {"potential": "mace"}, "relax.potential", "unknown potential 'mace'"),
    (
        "relax",
        {"graph_workers": -1},
        "relax.graph_workers",
        "graph_workers must be an integer >= 0",
    ),
    ("framework", {"ladr": []}, "framework.ladr", "did you mean 'ladder'?"),
    ("framework", {"ladder": []}, "framework.ladder", "ladder is empty"),
    ("framework", {"ladder": [[0.1, -10]]}, "framework.ladder", "positive tolerances"),
    ("framework", {"ladder": [[0.1, 10, 5]]}, "framework.ladder", "(number, number) lists"),
    ("framework", {"reject_spacegroups": [231]}, "framework.reject_spacegroups", "(1-230)"),
    ("framework", {"cell": "supercell"}, "framework.cell", "'primitive' or 'conventional'"),
    ("framework", {"mode": "best"}, "framework.mode", "'first' or 'highest' or 'fan_out'"),
    ("framework", {"max_hosts": 0}, "framework.max_hosts", "max_hosts must be >= 1"),
    ("framework", {"max_displacement": -1}, "framework.max_displacement", "must be > 0"),
    ("framework", {"max_rms": 0}, "framework.max_rms", "max_rms must be > 0"),
    ("framework", {"max_strain": "5%"}, "framework.max_strain", "expected a number or null"),
    ("framework", {"max_supercell": 0}, "framework.max_supercell", "must be >= 1"),
    ("framework", {"fallback": "paper"}, "framework.fallback", "expected true or false"),
    ("routing", {"painting": "cpu"}, "routing.painting", "unknown stage 'painting'"),
    ("routing", {"generate": "tpu"}, "routing.generate", "unknown category 'tpu'"),
    ("routing", {"relax": "gpus"}, "routing.relax", "did you mean 'gpu'?"),
    ("v0", {"sorce": "auto"}, "v0.sorce", "did you mean 'source'?"),
    ("v0", {"source": "guess"}, "v0.source", "'auto' or 'value'"),
    ("v0", {"source": "value", "value": 500}, "v0", "impossible volume per atom"),
    ("v0", {"source": "value"}, "v0", "needs v0.value"),
    ("stability", {"dft_treshold": 0.1}, "stability.dft_treshold", "'dft_threshold'?"),
    ("stability", {"dft_threshold": "low"}, "stability.dft_threshold", "valid number"),
    ("stability", {"dft_max_candidates": -1}, "stability.dft_max_candidates", "0"),
    ("stability", {"dft": "maybe"}, "stability.dft", "valid boolean"),
    (
        "stability",
        {"dft_prescreen_potential": "mace"},
        "stability.dft_prescreen_potential",
        "unknown potential 'mace'",
    ),
    (
        "stability",
        {"dft_prescreen_threshold": "nan"},
        "stability.dft_prescreen_threshold",
        "finite number",
    ),
    ("stability", {"reference": 3}, "stability.reference", "valid string"),
    ("model", {"checkpont": None}, "model.checkpont", "did you mean 'checkpoint'?"),
    ("model", {"device": "gpu"}, "model.device", "unknown device 'gpu'"),
    (
        "host",
        {"structure": "host.cif", "guest": {"Li": 2}, "n_candidates": 2},
        "host.guest",
        "did you mean 'guests'?",
    ),
    ("host", {"structure": "h.cif", "guests": {"Xx": 2}, "n_candidates": 2}, "host.guests", "'Xx'"),
    ("samplr", {}, "samplr", "did you mean 'sampler'?"),
    ("baseline", {"knd": "pyxtal"}, "baseline.knd", "did you mean 'kind'?"),
    ("baseline", {"kind": "airss"}, "baseline.kind", "'pyxtal' or 'random_positions'"),
    ("baseline", {"spacegroups": [0]}, "baseline.spacegroups", "(1-230)"),
    ("baseline", {"spacegroup_weighting": "size"}, "baseline.spacegroup_weighting", "'uniform'"),
    ("baseline", {"max_attempts": 0}, "baseline.max_attempts", "max_attempts must be >= 1"),
    ("baseline", {"min_distance": -1}, "baseline.min_distance", "min_distance must be >= 0"),
    ("baseline", {"tolerance_factor": 0}, "baseline.tolerance_factor", "must be > 0"),
    ("baseline", {"symprec": 0}, "baseline.symprec", "must be > 0"),
    ("baseline", {"angle_tolerance": "10"}, "baseline.angle_tolerance", "expected a number"),
    ("baseline", {"lattice": {"types": ["xX"]}}, "baseline.lattice.types", "Bravais type"),
    # hosts (core.hosts.HostSourceSettings): every key, and the hints a user gets
    ("hosts", {"sorce": "templates/"}, "hosts.sorce", "did you mean 'source'?"),
    ("hosts", {"source": 3}, "hosts.source", "expected a string"),
    ("hosts", {"arms": ["analog"]}, "hosts.arms", "did you mean 'analogue'?"),
    ("hosts", {"arms": ["substitution"]}, "hosts.arms", "need hosts.source"),
    ("hosts", {"include_elements": ["Xx"]}, "hosts.include_elements", "not element symbols"),
    ("hosts", {"exclude_elements": ["Zz"]}, "hosts.exclude_elements", "not element symbols"),
    ("hosts", {"exclude_formulas": "ZnS"}, "hosts.exclude_formulas", "expected a list"),
    ("hosts", {"related_to": ["Zn-P-S"]}, "hosts.related_to", "expected a string"),
    ("hosts", {"max_e_above_hull": -1}, "hosts.max_e_above_hull", "must be >= 0"),
    ("hosts", {"max_templates": 0}, "hosts.max_templates", "max_templates must be >= 1"),
    ("hosts", {"max_linear_strain": 0}, "hosts.max_linear_strain", "must be > 0"),
    ("hosts", {"max_atoms": 0}, "hosts.max_atoms", "max_atoms must be >= 1"),
    ("hosts", {"candidates_per_host": 0}, "hosts.candidates_per_host", "must be >= 1"),
    ("hosts", {"frameworks_per_target": 1.5}, "hosts.frameworks_per_target", "an integer"),
    ("hosts", {"guest_start_sigma": 0}, "hosts.guest_start_sigma", "must be > 0"),
    ("hosts", {"substitution_rattle": -1}, "hosts.substitution_rattle", "must be > 0"),
]


@pytest.mark.parametrize(
    ("section", "value", "path", "message"),
    BAD_SECTIONS,
    ids=[f"{path}={value}" for _, value, path, _ in BAD_SECTIONS],
)
def test_bad_nested_values_are_reported_at_their_path(tmp_path, section, value, path, message):
    with pytest.raises(InputError) as info:
        parse_spec(_spec(tmp_path, **{section: value}), "bad.yaml", tmp_path)
    lines = info.value.message.splitlines()
    assert lines[0] == "invalid campaign spec bad.yaml:"
    located = [line.strip() for line in lines[1:] if line.strip().startswith(f"{path}: ")]
    assert located, info.value.message
    assert any(message in line for line in located), info.value.message
    assert "chggen campaign check" in info.value.hint


def test_bad_values_cover_every_key_of_every_settings_section():
    covered: dict[str, set[str]] = {}
    for section, value, _, _ in BAD_SECTIONS:
        covered.setdefault(section, set()).update(value)
    for section, cls in SETTINGS_SECTIONS.items():
        missing = set(cls.model_fields) - covered[section]
        assert not missing, f"add a bad value of {section}.{sorted(missing)} to BAD_SECTIONS"
    for section, model in (("v0", V0Settings), ("stability", StabilitySettings)):
        assert set(model.model_fields) <= covered[section], section
    assert any(set(v) - set(DEFAULT_ROUTING) for s, v, _, _ in BAD_SECTIONS if s == "routing")


def test_allowed_keys_are_the_core_settings_fields():
    from chggen_flows.campaign.spec import CampaignSpec
    from chggen_flows.core.baseline import BaselineSettings
    from chggen_flows.core.generation import InpaintSettings, SamplerSettings
    from chggen_flows.core.hosts import HostSourceSettings
    from chggen_flows.core.relax import RelaxSettings
    from chggen_flows.core.symmetry import FrameworkSettings

    classes = {
        "sampler": SamplerSettings,
        "inpaint": InpaintSettings,
        "relax": RelaxSettings,
        "framework": FrameworkSettings,
        "baseline": BaselineSettings,
        "hosts": HostSourceSettings,
    }
    assert set(classes) == set(SETTINGS_SECTIONS)
    for section, cls in classes.items():
        assert SETTINGS_SECTIONS[section] is cls
        # the spec's section is typed with the core class itself
        assert CampaignSpec.model_fields[section].annotation in (cls, cls | None)


def test_every_problem_is_reported_at_once(tmp_path):
    data = _spec(
        tmp_path,
        sampler={"n_level": 200},
        relax={"fmax": -1},
        inpaint={"jump_length": 0},
        routing={"painting": "cpu"},
    )
    with pytest.raises(InputError) as info:
        parse_spec(data, "bad.yaml", tmp_path)
    for path in ("sampler.n_level", "relax.fmax", "inpaint.jump_length", "routing.painting"):
        assert f"\n  {path}: " in info.value.message


def test_valid_sections_reach_the_jobs_and_the_registry_unchanged(tmp_path):
    """The spec keeps the user's keys and values (YAML lists stay lists): what the
    makers receive, the stored campaign and the spec hash do not depend on validation."""
    sections = {
        "sampler": {"n_levels": 5, "n_corrector": 1, "sigma_min": 0.01, "dtype": "float64"},
        "inpaint": {"jump_length": 2, "n_resample": 1},
        "relax": {"max_steps": 3, "fmax": 1, "device": "cpu", "threads": 1},
        "framework": {"ladder": [[0.1, 10], [0.5, 15]], "reject_spacegroups": [1, 2]},
        "routing": {"relax": "gpu", "dft": "cpu"},
    }
    spec = load_spec(write_spec(tmp_path, _spec(tmp_path, **sections)))
    dumped = spec.model_dump(mode="json")
    for section, value in sections.items():
        held = getattr(spec, section)
        if section in SETTINGS_SECTIONS:  # the core's settings object, the user's keys kept
            assert isinstance(held, SETTINGS_SECTIONS[section]) and held.given() == value
        else:
            assert held == value and type(held) is dict
        assert dumped[section] == value
    assert spec.framework.given()["ladder"] == [[0.1, 10], [0.5, 15]]
    settings = spec.framework
    assert settings.ladder == ((0.1, 10), (0.5, 15)) and settings.reject_spacegroups == (1, 2)
    # The same values as the jobs build them (makers/*.py): the core accepts them too.
    from chggen_flows.core.generation import InpaintSettings, SamplerSettings
    from chggen_flows.core.relax import RelaxSettings
    from chggen_flows.core.symmetry import FrameworkSettings

    SamplerSettings(**spec.sampler.given())
    InpaintSettings(**spec.inpaint.given())
    RelaxSettings(**{"device": "cpu", **spec.relax.given()})
    assert FrameworkSettings(**spec.framework.given()) == settings


def test_docs_list_every_key_of_every_settings_section():
    """docs/campaigns.md's table of allowed keys is complete (the core classes' fields)."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "campaigns.md").read_text()
    for section, cls in SETTINGS_SECTIONS.items():
        rows = [line for line in text.splitlines() if line.startswith(f"| `{section}`")]
        assert rows, f"docs/campaigns.md has no table row for {section}"
        listed = [key for key in cls.model_fields if any(f"`{key}`" in r for r in rows)]
        missing = [key for key in cls.model_fields if key not in listed]
        assert not missing, f"docs/campaigns.md does not list {section} keys {missing}"


def test_shipped_fine_tune_names_resolve_to_package_files(tmp_path):
    """``shipped:Zn-P-S`` (any element order) names the shipped fine-tune; an unknown
    system is a CheckpointError that lists what is shipped."""
    from chggen_flows.core.model import load_score_model, resolve_checkpoint
    from chggen_flows.core.model.checkpoint import default_checkpoint_path

    spec = parse_spec(tiny_spec("shipped:S-P-Zn"), "test", tmp_path)
    assert spec.model.checkpoint == str(resolve_checkpoint("shipped:Zn-P-S").resolve())
    assert resolve_checkpoint("shipped:Zn-P-S").name == "zn-p-s.pt"
    assert resolve_checkpoint(None) == resolve_checkpoint("shipped") == default_checkpoint_path()
    model = load_score_model("shipped:Zn-P-S", device="cpu")
    assert {"Zn", "P", "S"} <= set(model.elements)
    with pytest.raises(CheckpointError, match="no shipped score model") as info:
        parse_spec(tiny_spec("shipped:Li-Si"), "test", tmp_path)
    assert "shipped:Zn-P-S" in info.value.hint
