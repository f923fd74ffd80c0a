"""V0 estimates: override, known phases, regression; the source is always recorded."""

from __future__ import annotations

import pytest
from pymatgen.core import Composition, Lattice, Structure

from chggen_flows.core.generation.volume import (
    element_volume_table,
    estimate_v0,
    regression_volume,
)
from chggen_flows.core.generation.volume_fit import fit_element_volumes
from chggen_flows.errors import InputError, ReferenceDataError


def _rocksalt(a: float) -> Structure:
    return Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(a), ["Zn", "S"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )


def test_override_wins():
    estimate = estimate_v0(Composition("ZnS"), [_rocksalt(5.4)], override=30.0)
    assert (estimate.volume_per_atom, estimate.source) == (30.0, "override")
    with pytest.raises(InputError):
        estimate_v0(Composition("ZnS"), override=-1.0)


def test_same_composition_uses_known_volume():
    known = _rocksalt(5.4)
    estimate = estimate_v0(Composition("Zn2S2"), [known])
    assert estimate.source == "known:same_composition"
    assert estimate.volume_per_atom == pytest.approx(known.volume / len(known))


def test_chemsys_phases_rescale_the_regression():
    known = _rocksalt(5.4)
    estimate = estimate_v0(
        Composition("ZnS2"), [known, _rocksalt(5.4).replace_species({"Zn": "Li"})]
    )
    ratio = (known.volume / len(known)) / regression_volume(known.composition)
    assert estimate.source == "known:chemsys"  # the Li phase is outside Zn-S: ignored
    assert estimate.volume_per_atom == pytest.approx(ratio * regression_volume(Composition("ZnS2")))


def test_regression_fallback_is_plausible():
    estimate = estimate_v0(Composition("ZnPS3"))
    assert estimate.source == "regression"
    assert 15 < estimate.volume_per_atom < 30  # authors used ~24 A^3/atom for Zn-P-S
    assert "MP structures" in estimate.detail
    assert element_volume_table()["n_structures"] > 20000


def test_unknown_element_in_regression_is_reference_error():
    with pytest.raises(ReferenceDataError):
        regression_volume(Composition("Og2"))


def test_fit_recovers_additive_volumes():
    truth = {"Li": 20.0, "S": 30.0}
    comps = [Composition("LiS"), Composition("Li2S"), Composition("LiS3"), Composition("Li")]
    volumes = [sum(truth[e.symbol] * x for e, x in c.fractional_composition.items()) for c in comps]
    table = fit_element_volumes(comps, volumes)
    assert table["Li"]["volume"] == pytest.approx(20.0, abs=1e-3)
    assert table["S"]["volume"] == pytest.approx(30.0, abs=1e-3)
    assert table["Li"]["n_structures"] == 4
