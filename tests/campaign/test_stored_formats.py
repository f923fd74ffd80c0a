"""Campaigns stored before the settings were typed still load: a spec dict from the
registry, and Makers serialized (monty) into FireWorks documents with plain-dict
settings. The dicts below were written by the code before the change (commit fd4d18b)."""

from __future__ import annotations

import json

from monty.json import MontyDecoder, jsanitize

from chggen_flows.campaign.spec import CampaignSpec
from chggen_flows.core.baseline import BaselineSettings
from chggen_flows.core.generation import InpaintSettings, SamplerSettings
from chggen_flows.core.relax import RelaxSettings
from chggen_flows.core.symmetry import FrameworkSettings

#: ``registry.spec`` of a campaign submitted before the change, and its ``spec_hash``.
OLD_STORED_SPEC = {
    "baseline": {"kind": "pyxtal", "spacegroups": [12, 166]},
    "batch_size": 2,
    "candidates_per_lattice": 2,
    "composition_line": None,
    "composition_range": None,
    "compositions": ["Li3Si"],
    "description": "",
    "formula_units": [1],
    "framework": {"ladder": [[0.1, 10], [0.5, 15]], "reject_spacegroups": [1, 2]},
    "guests": ["Li"],
    "host": None,
    "inpaint": {"jump_length": 2, "n_resample": 1},
    "lattices_per_composition": 1,
    "mode": "unconditional",
    "model": {"checkpoint": "/data/old/model.pt", "device": "cpu"},
    "name": "li-si-old",
    "relax": {"device": "cpu", "fmax": 1, "max_steps": 3},
    "routing": {"dft": "cpu", "relax": "gpu"},
    "sampler": {"n_corrector": 1, "n_levels": 5, "sigma_min": 0.01},
    "seed": 3,
    "stability": {
        "dft": False,
        "dft_max_candidates": 20,
        "dft_threshold": 0.1,
        "reference": "offline",
    },
    "v0": {"source": "auto", "value": None},
}
OLD_SPEC_HASH = "9af5e35db24f0b7bcc0d0dc125553acd3f0e9471c6c659c63b6644b7e16a1820"

#: Stage Makers as ``CHGGenMaker.as_dict()`` stored them (settings as plain dicts).
OLD_MAKERS = {
    "generate": '{"@module": "chggen_flows.makers.generate", "@class": "GenerateMaker", '
    '"@version": "0.1.0", "name": "generate", "checkpoint": null, "device": "cpu", '
    '"sampler": {"n_levels": 5, "n_corrector": 1}, "v0": null, "reference": "offline"}',
    "relax": '{"@module": "chggen_flows.makers.relax", "@class": "RelaxMaker", "@version": '
    '"0.1.0", "name": "relax", "stage": "relaxed", "relax": {"max_steps": 3, "fmax": 1}, '
    '"device": "cpu"}',
    "framework": '{"@module": "chggen_flows.makers.framework", "@class": "FrameworkMaker", '
    '"@version": "0.1.0", "name": "framework", "guests": ["Li"], "framework": {"ladder": '
    "[[0.1, 10], [0.5, 15]]}}",
    "inpaint": '{"@module": "chggen_flows.makers.inpaint", "@class": "InpaintMaker", '
    '"@version": "0.1.0", "name": "inpaint", "checkpoint": null, "device": "auto", '
    '"sampler": {"n_levels": 5}, "inpaint": {"jump_length": 2, "n_resample": 1}, "seed": 0}',
    "baseline": '{"@module": "chggen_flows.makers.baseline", "@class": "BaselineMaker", '
    '"@version": "0.1.0", "name": "baseline", "baseline": {"kind": "random_positions", '
    '"lattice": {"types": ["cP"]}}, "v0": null, "reference": "offline"}',
}


def test_an_old_stored_spec_loads_typed_and_keeps_its_hash():
    spec = CampaignSpec.model_validate(OLD_STORED_SPEC)
    assert spec.sampler == SamplerSettings(n_levels=5, n_corrector=1, sigma_min=0.01)
    assert spec.relax == RelaxSettings(device="cpu", fmax=1.0, max_steps=3)
    assert spec.framework.ladder == ((0.1, 10.0), (0.5, 15.0))
    assert spec.baseline == BaselineSettings(spacegroups=(12, 166))
    # stored and hashed as given: a resubmitted old spec finds its campaign
    assert spec.model_dump(mode="json") == OLD_STORED_SPEC
    assert spec.spec_hash() == OLD_SPEC_HASH


def test_old_serialized_makers_decode_with_typed_settings():
    makers = {key: MontyDecoder().decode(text) for key, text in OLD_MAKERS.items()}
    assert makers["generate"].sampler == SamplerSettings(n_levels=5, n_corrector=1)
    assert makers["relax"].relax == RelaxSettings(max_steps=3, fmax=1.0)
    assert "device" not in makers["relax"].relax.model_fields_set  # the job's device wins
    assert makers["framework"].framework == FrameworkSettings(ladder=((0.1, 10), (0.5, 15)))
    assert makers["inpaint"].inpaint == InpaintSettings(jump_length=2, n_resample=1)
    assert makers["baseline"].baseline.lattice.types == ("cP",)


def test_makers_round_trip_through_monty_keeping_the_keys_given():
    for text in OLD_MAKERS.values():
        maker = MontyDecoder().decode(text)
        stored = json.dumps(jsanitize(maker.as_dict(), strict=True))
        again = MontyDecoder().decode(stored)
        assert again == maker
        for name in ("sampler", "relax", "framework", "inpaint", "baseline"):
            if hasattr(maker, name):
                before, after = getattr(maker, name), getattr(again, name)
                assert type(after) is type(before)
                assert after.model_fields_set == before.model_fields_set
