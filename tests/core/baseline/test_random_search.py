"""Random-search baselines on real PyXtal structures (Li-Si and Zn-P-S cells)."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Composition, Lattice, Structure

from chggen_flows.core.baseline import (
    BaselineSettings,
    allowed_spacegroups,
    compatible_spacegroups,
    conventional_to_primitive,
    random_search,
)
from chggen_flows.core.baseline.spacegroups import centring_multiplicity
from chggen_flows.core.generation import BRAVAIS_TYPES, GenerationRequest
from chggen_flows.core.generation.candidate import min_interatomic_distance
from chggen_flows.core.symmetry import NOT_SYMMETRIC
from chggen_flows.errors import InputError

# (formula, Z, V0 in Å^3/atom)
CELLS = [("Li5Si2", 1, 19.0), ("Li3Si", 2, 18.5), ("ZnPS3", 2, 21.0)]


def _requests(formula: str, z: int, v0: float, n: int) -> list[GenerationRequest]:
    return [GenerationRequest(Composition(formula), z, v0=v0)] * n


def _same(a: Structure, b: Structure) -> bool:
    return (
        len(a) == len(b)
        and [s.symbol for s in a.species] == [s.symbol for s in b.species]
        and np.allclose(a.lattice.matrix, b.lattice.matrix)
        and np.allclose(a.frac_coords, b.frac_coords)
    )


@pytest.mark.parametrize(("formula", "z", "v0"), CELLS)
def test_pyxtal_cells_have_the_composition_volume_and_distances(formula, z, v0):
    candidates = random_search(_requests(formula, z, v0, 4), seed=11)
    natoms = int(Composition(formula).num_atoms) * z
    for candidate in candidates:
        structure, info = candidate.structure, candidate.metadata
        assert candidate.valid, candidate.reason
        assert structure.composition == Composition(formula) * z  # primitive: N atoms
        assert structure.volume == pytest.approx(natoms * v0, rel=1e-9)
        assert min_interatomic_distance(structure) >= 0.5
        assert info["min_distance"] >= 0.5
        assert info["baseline"] == "pyxtal" and info["mode"] == "baseline"
        requested = info["spacegroup_requested"]
        assert requested not in NOT_SYMMETRIC  # default: symmetric groups only
        assert info["natoms_conventional"] == natoms * centring_multiplicity(requested)
        assert isinstance(info["spacegroup_obtained"], int)
        assert info["attempts"] >= 1 and info["model_calls"] == 0
        assert info["v0"] == v0 and info["v0_source"] == "override"
    # different seeds per candidate: not four copies of one structure
    assert len({c.metadata["seed"] for c in candidates}) == 4


def test_pyxtal_is_reproducible_and_ignores_the_global_rng():
    requests = _requests("ZnPS3", 2, 21.0, 3)
    np.random.seed(1)  # noqa: NPY002 (the legacy global RNG must not matter)
    first = random_search(requests, seed=5)
    np.random.seed(2)  # noqa: NPY002
    np.random.random(7)  # noqa: NPY002
    second = random_search(requests, seed=5)
    assert all(_same(a.structure, b.structure) for a, b in zip(first, second, strict=True))
    assert [a.metadata for a in first] == [b.metadata for b in second]
    other = random_search(requests, seed=6)
    assert not all(_same(a.structure, b.structure) for a, b in zip(first, other, strict=True))


def test_user_spacegroups_and_centred_cells_are_reduced():
    # R-3m (hexagonal setting, 3 lattice points) and C2/m (2) for Li3Si Z=2 (8 atoms)
    for number in (166, 12):
        settings = BaselineSettings(spacegroups=(number,))
        (candidate,) = random_search(_requests("Li3Si", 2, 18.5, 1), settings, seed=3)
        assert candidate.metadata["spacegroup_requested"] == number
        assert len(candidate.structure) == 8
        assert candidate.metadata["natoms_conventional"] == 8 * centring_multiplicity(number)


def test_v0_from_the_shipped_reference_when_not_given():
    from chggen_flows.core.analysis.references import shipped_structures

    known = shipped_structures(["Li", "Si"])
    (candidate,) = random_search([GenerationRequest(Composition("Li5Si2"))], known_structures=known)
    assert candidate.metadata["v0_source"].startswith("known")
    assert candidate.structure.volume == pytest.approx(7 * candidate.metadata["v0"], rel=1e-5)


def test_compatible_spacegroups():
    # one Li and one Si: only groups with two 1-fold (or one 2-fold...) positions
    groups = compatible_spacegroups([1, 1])
    assert 1 in groups and 225 in groups  # Fm-3m (rock salt) in its primitive cell
    assert 227 not in compatible_spacegroups([1, 1])  # Fd-3m has no 1-fold position
    # the default leaves out P1 and P-1; a user list is taken as given
    default = allowed_spacegroups([1, 1], BaselineSettings())
    assert 225 in default and not set(default) & set(NOT_SYMMETRIC)
    assert allowed_spacegroups([1, 1], BaselineSettings(spacegroups=(1, 225, 227))) == [1, 225]


def test_diamond_conventional_to_primitive():
    diamond = Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.43), ["Si"], [[0, 0, 0]])
    assert len(diamond) == 8
    primitive = conventional_to_primitive(diamond, 227)
    assert len(primitive) == 2
    assert primitive.volume == pytest.approx(diamond.volume / 4)
    assert min_interatomic_distance(primitive) == pytest.approx(5.43 * 3**0.5 / 4)
    seven = diamond.copy()
    seven.remove_sites([0])
    with pytest.raises(InputError, match="centred"):
        conventional_to_primitive(seven, 227)


def test_random_positions():
    settings = BaselineSettings(kind="random_positions")
    for formula, z, v0 in CELLS:
        candidates = random_search(_requests(formula, z, v0, 3), settings, seed=2)
        natoms = int(Composition(formula).num_atoms) * z
        for candidate in candidates:
            assert candidate.valid
            assert candidate.structure.composition == Composition(formula) * z
            assert candidate.structure.volume == pytest.approx(natoms * v0, rel=1e-9)
            assert min_interatomic_distance(candidate.structure) >= 0.5
            assert candidate.metadata["lattice_type"] in BRAVAIS_TYPES
            assert candidate.metadata["baseline"] == "random_positions"
        again = random_search(_requests(formula, z, v0, 3), settings, seed=2)
        assert all(_same(a.structure, b.structure) for a, b in zip(candidates, again, strict=True))
    cubic = random_search(
        [GenerationRequest(Composition("ZnPS3"), 2, bravais="cubic", v0=21.0)], settings
    )
    assert cubic[0].metadata["lattice_type"] in ("cP", "cI", "cF")


def test_random_positions_without_an_acceptable_draw_is_kept_invalid():
    settings = BaselineSettings(kind="random_positions", min_distance=4.0, max_attempts=3)
    (candidate,) = random_search(_requests("ZnPS3", 2, 21.0, 1), settings, seed=0)
    assert not candidate.valid and candidate.reason.startswith("too close")
    assert candidate.metadata["attempts"] == 3


def test_pyxtal_failing_every_attempt_raises():
    settings = BaselineSettings(min_distance=4.0, max_attempts=3)
    with pytest.raises(InputError, match="3 attempts"):
        random_search(_requests("ZnPS3", 2, 21.0, 1), settings)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kind": "airss"}, "kind"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"spacegroups": (0, 12)}, "1-230"),
        ({"spacegroups": ()}, "empty"),
        ({"spacegroups": ("P1",)}, "space-group numbers"),
        ({"min_distance": -1.0}, "min_distance"),
        ({"tolerance_factor": 0}, "tolerance_factor"),
        ({"spacegroup_weighting": "size"}, "spacegroup_weighting"),
    ],
)
def test_bad_settings_raise(kwargs, match):
    with pytest.raises(InputError, match=match):
        BaselineSettings(**kwargs)


def test_settings_from_yaml_like_values():
    settings = BaselineSettings(spacegroups=[12, 166], lattice={"types": ["cP", "hP"]})
    assert settings.spacegroups == (12, 166)
    assert settings.lattice.types == ("cP", "hP")
    assert settings.as_dict()["spacegroups"] == [12, 166]


def test_bad_compositions_raise():
    with pytest.raises(InputError, match="no allowed space group"):
        # one atom of each of three elements cannot fill a symmetric group's positions
        # when P1 and P-1 are excluded and only Fd-3m (no 1-fold position) is allowed
        random_search(_requests("ZnPS3", 1, 21.0, 1), BaselineSettings(spacegroups=(227,)))
    with pytest.raises(InputError, match="whole atoms"):
        random_search([GenerationRequest(Composition("Li0.5Si"), 1, v0=20.0)])
    with pytest.raises(InputError, match="formula units"):
        random_search([GenerationRequest(Composition("LiSi"), 0, v0=20.0)])
    with pytest.raises(InputError, match="V0"):
        random_search([GenerationRequest(Composition("LiSi"), 1, v0=-1.0)])


def test_baseline_structures_go_through_the_real_relaxation():
    from chggen_flows.core.relax import BatchRelaxer, RelaxSettings

    candidates = random_search(_requests("Li5Si2", 1, 19.0, 2), seed=1)
    relaxer = BatchRelaxer(RelaxSettings(max_steps=10, device="cpu", threads=1))
    records = relaxer.relax([c.structure for c in candidates])
    for record in records:
        assert record.ok
        assert np.isfinite(record.final_energy_per_atom)
        assert record.final_energy_per_atom <= record.initial_energy_per_atom + 1e-6
