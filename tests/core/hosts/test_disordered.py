"""Disordered structures: supercell, whole charge-neutral guest counts, baselines, inpainting."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Structure

from chggen_flows.core.generation import InpaintSettings, SamplerSettings
from chggen_flows.core.hosts import (
    count_orderings,
    disordered_host,
    enumerate_orderings,
    ewald_orderings,
    host_from_structure,
    inpaint_hosts,
)
from chggen_flows.core.hosts.disordered import _rounded_counts
from chggen_flows.core.sources import load_structures
from chggen_flows.errors import InputError

from .conftest import DISORDERED_CIF


@pytest.fixture(scope="module")
def li05coo2():
    (entry,) = load_structures(DISORDERED_CIF)
    return entry.structure


def test_li05coo2_cif_gives_whole_guests_in_the_smallest_supercell(li05coo2):
    assert not li05coo2.is_ordered
    assert li05coo2.composition.reduced_formula == "Li0.5CoO2" or li05coo2.composition[
        "Li"
    ] == pytest.approx(1.5)
    host = disordered_host(li05coo2)
    # 3 Li sites at 0.5 in the R-3m cell: 1.5 Li, whole in a doubled cell
    assert host.seed.info["multiple"] == 2
    assert host.guests == {"Li": 3}
    assert host.seed.host.composition.formula == "Co6 O12"
    assert host.seed.info["rounding"] == {}
    assert host.seed.info["listed_sites"] == 6
    assert host.seed.host.is_ordered


def test_charge_neutral_with_oxidation_states(li05coo2):
    decorated = li05coo2.copy()
    decorated.add_oxidation_state_by_element({"Li": 1, "Co": 3.5, "O": -2})
    host = disordered_host(decorated)
    assert host.seed.info["charge"] == pytest.approx(0.0)


def test_rounding_is_recorded_and_keeps_neutrality(licoo2):
    structure = licoo2.copy()
    structure.replace_species({"Li": {"Li": 0.3}})
    host = disordered_host(structure, max_supercell=3)
    assert host.seed.info["multiple"] == 3
    assert host.guests == {"Li": 1}
    assert host.seed.info["rounding"] == {"Li": {"exact": 0.9, "rounded": 1}}
    # floor/ceil per species: the neutral combination wins over the nearest one
    assert _rounded_counts({"Li": 1.6}, -1.0, {"Li": 1.0}) == {"Li": 1}
    assert _rounded_counts({"Li": 1.6}, None, None) == {"Li": 2}
    counts = _rounded_counts({"Li": 1.6, "Na": 0.6}, -2.0, {"Li": 1.0, "Na": 1.0})
    assert counts["Li"] + counts["Na"] == 2  # neutral, though (2, 1) is nearest
    assert _rounded_counts({"Li": 1.6, "Na": 0.6}, None, None) == {"Li": 2, "Na": 1}


def test_mixed_site_gives_guests_of_both_species(licoo2):
    structure = licoo2.copy()
    structure.replace_species({"Co": {"Co": 0.5, "Ni": 0.5}})
    host = disordered_host(structure, multiple=4)
    assert host.guests == {"Co": 2, "Ni": 2}
    assert host.seed.host.composition.formula == "Li4 O8"
    assert count_orderings(host) == 6  # C(4, 2)
    ordered = enumerate_orderings(host, unique=False)
    assert len(ordered) == 6
    assert all(s.composition.formula == "Li4 Co2 Ni2 O8" for s in ordered)
    best = ewald_orderings(host, 3)
    assert len(best) == 3
    assert best[0]["ewald_energy"] <= best[-1]["ewald_energy"]
    assert best[0]["structure"].composition.formula == "Li4 Co2 Ni2 O8"


def test_baselines_on_the_same_supercell(li05coo2):
    host = disordered_host(li05coo2)
    assert count_orderings(host) == 20  # C(6, 3)
    everything = enumerate_orderings(host, unique=False)
    assert len(everything) == 20
    distinct = enumerate_orderings(host)
    assert 1 < len(distinct) < 20
    assert enumerate_orderings(host, limit=10) is None  # too many: no enumeration
    ewald = ewald_orderings(host, 4)
    for item in ewald:
        structure = item["structure"]
        assert structure.lattice == host.disordered.lattice
        assert structure.composition == everything[0].composition


def test_host_from_structure(licoo2, li05coo2):
    seed = host_from_structure(li05coo2)
    assert seed.kind == "disordered" and seed.guests == {"Li": 3}
    given = host_from_structure(licoo2, {"Li": 1})
    assert given.kind == "given" and given.host == licoo2
    with pytest.raises(InputError, match="name its guests"):
        host_from_structure(licoo2)
    with pytest.raises(InputError, match="define its guests"):
        host_from_structure(li05coo2, {"Li": 1})
    with pytest.raises(InputError, match="no partial occupancies"):
        disordered_host(licoo2)


def test_inpainting_keeps_the_host_sites(li05coo2):
    """One inpainting call with the shipped model (a few sampler steps)."""
    from chggen_flows.core.model.checkpoint import load_score_model

    host = disordered_host(li05coo2)
    model = load_score_model(None, device="cpu")
    settings = SamplerSettings(n_levels=6, n_corrector=1, min_distance=0.0)
    (candidate,) = inpaint_hosts(
        [host.seed],
        model,
        settings,
        InpaintSettings(jump_length=2, n_resample=1),
        seed=3,
        device="cpu",
        progress=False,
    )
    structure: Structure = candidate.structure
    n_host = len(host.seed.host)
    assert len(structure) == n_host + 3
    for before, after in zip(host.seed.host, structure[:n_host], strict=True):
        assert before.specie == after.specie
        np.testing.assert_allclose(before.frac_coords, after.frac_coords, atol=1e-9)
    assert [s.specie.symbol for s in structure[n_host:]] == ["Li"] * 3
    assert structure.composition.reduced_formula == "Li0.5CoO2" or structure.composition["Li"] == 3
    assert candidate.metadata["host_source"]["kind"] == "disordered"
    assert candidate.metadata["host_source"]["multiple"] == 2
    assert candidate.metadata["arm"] == "disordered"


def test_host_seed_round_trips_through_json(li05coo2):
    import json

    from chggen_flows.core.hosts import HostSeed

    seed = disordered_host(li05coo2).seed
    again = HostSeed.from_dict(json.loads(json.dumps(seed.as_dict())))
    assert again.host == seed.host
    assert again.guests == seed.guests and again.kind == seed.kind and again.info == seed.info
