"""Flow makers: stage chaining, routing categories, and no leaking into dynamic jobs."""

from __future__ import annotations

import pytest
from jobflow import Flow, JobStore, Response, job
from maggma.stores import MemoryStore
from pymatgen.core import Lattice, Structure

from chggen_flows.makers.dft import DFTGateMaker
from chggen_flows.makers.flows import (
    DEFAULT_ROUTING,
    CHGGenMaker,
    HostModeMaker,
    resolve_routing,
    route,
)
from chggen_flows.makers.schemas import CandidateSeed


def _seeds(n: int) -> list[CandidateSeed]:
    return [
        CandidateSeed(
            candidate_id=f"Li3Si-fu1-L000-S{i:03d}",
            composition="Li3Si",
            formula_units=1,
            lattice_index=0,
            sample_index=i,
            lattice_seed=1,
            seed=i,
        )
        for i in range(n)
    ]


def test_chgen_maker_chains_the_stages_per_batch():
    flow = CHGGenMaker().make("c", [_seeds(2), _seeds(2)])
    stages = [j.metadata["stage"] for j in flow.jobs]
    assert stages == [
        "generated",
        "relaxed",
        "framework",
        "inpainted",
        "relaxed_inpaint",
        "classified",
    ] * 2 + ["ehull"]
    # each stage consumes the previous stage's output
    for previous, current in zip(flow.jobs[:5], flow.jobs[1:6], strict=True):
        assert previous.uuid in {ref.uuid for ref in current.input_references}
    ehull = flow.jobs[-1]
    assert {ref.uuid for ref in ehull.input_references} == {flow.jobs[5].uuid, flow.jobs[11].uuid}
    assert flow.jobs[0].config.manager_config == {"_category": DEFAULT_ROUTING["generate"]}
    assert flow.jobs[3].config.manager_config == {"_category": DEFAULT_ROUTING["inpaint"]}


def test_host_mode_starts_from_the_host():
    host = Structure(Lattice.cubic(5.43), ["Si", "Si"], [[0, 0, 0], [0.25, 0.25, 0.25]])
    flow = HostModeMaker(dft=DFTGateMaker()).make("h", host, {"Li": 2}, [["a", "b"]])
    assert [j.metadata["stage"] for j in flow.jobs] == [
        "framework",
        "inpainted",
        "relaxed_inpaint",
        "classified",
        "ehull",
        "dft",
    ]
    assert flow.jobs[-1].config.manager_config == {"_category": "cpu"}


def test_routing_does_not_leak_into_dynamically_added_jobs():
    @job
    def child():
        return 1

    @job
    def parent():
        return Response(addition=Flow([child()]))

    parent_job = route(parent(), "gpu", "generated")
    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    store.connect()
    parent_job.config.pass_manager_config = False
    response = parent_job.run(store)
    added = response.addition.jobs[0]
    assert added.config.manager_config.get("_category") is None
    assert "stage" not in added.metadata


def test_dft_gate_adds_vasp_jobs_not_its_own_category():
    si = Structure(Lattice.cubic(5.43), ["Si", "Si"], [[0, 0, 0], [0.25, 0.25, 0.25]])
    shortlist = [{"candidate_id": "Si-a", "structure": si, "e_d": 0.01}]
    gate = route(DFTGateMaker(threshold=0.1, worker_category="vasp").make(shortlist), "cpu", "dft")
    gate.update_metadata({"campaign": "c"})  # dynamic, as the campaign does
    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    store.connect()
    response = gate.run(store)
    added = response.addition.jobs
    vasp = [j for j in _all_jobs(added) if j.config.manager_config]
    assert vasp and {j.config.manager_config["_category"] for j in vasp} == {"vasp"}
    assert all(j.metadata.get("campaign") == "c" for j in _all_jobs(added))


def _all_jobs(items):
    for item in items:
        if hasattr(item, "jobs"):
            yield from _all_jobs(item.jobs)
        else:
            yield item


def test_one_routing_table_with_overrides():
    from chggen_flows.campaign import spec

    assert spec.DEFAULT_ROUTING is DEFAULT_ROUTING  # the spec reads the makers' table
    routed = resolve_routing({"relax": "gpu"})
    assert routed == {**DEFAULT_ROUTING, "relax": "gpu"}
    with pytest.raises(ValueError, match="unknown routed stage"):
        resolve_routing({"relaxx": "gpu"})
    flow = CHGGenMaker(routing={"relax": "gpu"}).make("c", [[]])
    categories = {j.metadata["stage"]: j.config.manager_config["_category"] for j in flow.jobs}
    assert categories["relaxed"] == "gpu" and categories["relaxed_inpaint"] == "gpu"
    assert categories["framework"] == "cpu"
