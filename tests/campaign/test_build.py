"""Flow construction: stable candidate ids and seeds, batching, routing, job counts."""

from __future__ import annotations

from chggen_flows.campaign.build import (
    build_flow,
    candidate_seeds,
    chunk,
    host_candidate_ids,
    read_host,
)
from chggen_flows.campaign.spec import example_path, load_spec, parse_spec
from tests.campaign.helpers import tiny_spec


def _spec(tmp_path, **overrides):
    checkpoint = tmp_path / "model.pt"
    checkpoint.write_bytes(b"x")
    return parse_spec(tiny_spec(checkpoint, **overrides), "test", tmp_path)


def test_candidate_ids_and_seeds_are_unique_and_independent_of_batching(tmp_path):
    spec = _spec(
        tmp_path, formula_units=[1, 2], lattices_per_composition=3, candidates_per_lattice=4
    )
    seeds = candidate_seeds(spec)
    assert len(seeds) == 2 * 2 * 3 * 4
    assert len({s.candidate_id for s in seeds}) == len(seeds)
    assert len({s.seed for s in seeds}) == len(seeds)
    # candidates of one lattice share its lattice seed; different lattices differ
    by_lattice = {}
    for s in seeds:
        by_lattice.setdefault((s.composition, s.formula_units, s.lattice_index), set()).add(
            s.lattice_seed
        )
    assert all(len(v) == 1 for v in by_lattice.values())
    assert len({next(iter(v)) for v in by_lattice.values()}) == len(by_lattice)
    rebatched = candidate_seeds(
        _spec(
            tmp_path,
            formula_units=[1, 2],
            lattices_per_composition=3,
            candidates_per_lattice=4,
            batch_size=7,
        )
    )
    assert [s.seed for s in rebatched] == [s.seed for s in seeds]


def test_flow_routes_every_stage_and_tags_the_campaign(tmp_path):
    plan = build_flow(_spec(tmp_path), "tiny-1")
    assert plan.n_candidates == 4 and plan.n_batches == 2
    # 6 stage jobs per batch + E_d + DFT gate
    assert plan.n_jobs == 2 * 6 + 2
    expected = {
        "generated": "gpu",
        "relaxed": "cpu",
        "framework": "cpu",
        "inpainted": "gpu",
        "relaxed_inpaint": "cpu",
        "classified": "cpu",
        "ehull": "cpu",
        "dft": "cpu",
    }
    for job in plan.flow.jobs:
        assert job.metadata["campaign"] == "tiny-1"
        assert job.config.manager_config["_category"] == expected[job.metadata["stage"]]
    # the routing is not recorded as a dynamic update, so jobs the gate adds do not inherit it
    gate = next(j for j in plan.flow.jobs if j.metadata["stage"] == "dft")
    assert not gate.config_updates
    assert gate.config.pass_manager_config is False


def test_routing_overrides_come_from_the_spec(tmp_path):
    plan = build_flow(_spec(tmp_path, routing={"relax": "gpu"}), "tiny-2")
    relax = [j for j in plan.flow.jobs if j.metadata["stage"] in ("relaxed", "relaxed_inpaint")]
    assert relax and all(j.config.manager_config["_category"] == "gpu" for j in relax)


def test_ten_thousand_candidates_stay_under_500_jobs(tmp_path):
    spec = _spec(
        tmp_path,
        compositions=["Li3Si", "Li2Si", "Li5Si2", "Li4Si", "Li5Si"],
        formula_units=[1, 2, 3, 4],
        lattices_per_composition=25,
        candidates_per_lattice=20,
        batch_size=200,
    )
    plan = build_flow(spec, "big")
    assert plan.n_candidates == 10_000
    assert plan.n_jobs < 500


def test_host_mode_flow_starts_at_the_framework(tmp_path):
    spec = load_spec(example_path("si-lithiation"))
    host = read_host(spec.host.structure)
    ids = host_candidate_ids(spec, host)
    assert len(ids) == spec.host.n_candidates == len(set(ids))
    plan = build_flow(spec, "host-1")
    stages = [j.metadata["stage"] for j in plan.flow.jobs]
    assert "generated" not in stages and "relaxed" not in stages
    assert (
        stages.count("framework") == stages.count("inpainted") == len(chunk(ids, spec.batch_size))
    )
    assert plan.chemsys == "Li-Si"


def test_dft_prescreen_reaches_the_gate(tmp_path):
    from chggen_flows.makers.dft import DFTGateMaker

    def gates(plan):
        return [
            j.function.__self__
            for j in plan.flow.jobs
            if isinstance(getattr(j.function, "__self__", None), DFTGateMaker)
        ]

    stability = {"reference": "offline", "dft_max_candidates": 2}
    (plain,) = gates(build_flow(_spec(tmp_path, stability=stability), "tiny-3"))
    assert plain.prescreen_potential is None

    stability |= {"dft_prescreen_potential": "chgnet-r2scan", "dft_prescreen_threshold": 0.1}
    (gate,) = gates(build_flow(_spec(tmp_path, stability=stability), "tiny-4"))
    assert gate.prescreen_potential == "chgnet-r2scan" and gate.prescreen_threshold == 0.1
    assert gate.max_candidates == 2
    # the pre-screen relaxes as the campaign does, on the model's device
    assert gate.prescreen_relax.max_steps == 3 and gate.prescreen_relax.device == "cpu"
