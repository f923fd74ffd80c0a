"""The stage table: one row per routed stage, and the flows route by it."""

from __future__ import annotations

import pytest

from chggen_flows.makers.dft import DFTGateMaker
from chggen_flows.makers.flows import CHGGenMaker
from chggen_flows.makers.relax import relax_inpainted_maker
from chggen_flows.makers.schemas import Stage
from chggen_flows.makers.stages import (
    CATEGORIES,
    DEFAULT_ROUTING,
    STAGE_TABLE,
    maker_class,
    resolve_routing,
    routing_problems,
)


def test_every_row_names_a_maker_its_jobs_and_a_known_category():
    assert len({row.key for row in STAGE_TABLE}) == len(STAGE_TABLE)
    for row in STAGE_TABLE:
        assert row.category in CATEGORIES
        assert maker_class(row.key)().name == row.job_names[0]
    assert (
        relax_inpainted_maker().name in next(r for r in STAGE_TABLE if r.key == "relax").job_names
    )


def test_every_record_stage_is_produced_by_a_routed_stage():
    produced = {stage for row in STAGE_TABLE for stage in row.stages}
    assert produced == set(Stage)


def test_routing_overrides_are_checked_against_the_table():
    assert resolve_routing() == DEFAULT_ROUTING
    assert resolve_routing({"dft_gate": "gpu"})["dft_gate"] == "gpu"
    problems = routing_problems({"symetry": "cpu", "relax": "gpus"})
    assert "did you mean 'symmetry'?" in problems["symetry"]
    assert "did you mean 'gpu'?" in problems["relax"]
    with pytest.raises(ValueError, match="unknown category"):
        resolve_routing({"relax": "tpu"})


def test_the_gate_is_routed_as_its_own_stage_and_its_vasp_jobs_by_dft():
    flow = CHGGenMaker(dft=DFTGateMaker(), routing={"dft_gate": "gpu", "dft": "cpu"}).make(
        "c", [[]]
    )
    gate = next(j for j in flow.jobs if j.metadata["stage"] == Stage.DFT)
    ehull = next(j for j in flow.jobs if j.metadata["stage"] == Stage.EHULL)
    assert gate.config.manager_config == {"_category": "gpu"}
    assert ehull.config.manager_config == {"_category": "cpu"}
    assert gate.function.__self__.worker_category == "cpu"  # the VASP jobs it will add
    for job in flow.jobs:
        row = next(r for r in STAGE_TABLE if job.metadata["stage"] in r.stages)
        if row.key != "dft_gate":
            assert job.config.manager_config["_category"] == DEFAULT_ROUTING[row.key]
