"""Host arms in campaigns (issue 26): a spec's ``hosts`` section (analogue templates,
plain substitution, random frameworks) and a disordered ``host`` go through the same
relaxation, symmetry and E_d jobs as the generated arm; records carry ``arm`` and
``template``; the results, metrics and CLI show them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from jobflow import run_locally

from chggen_flows.campaign.build import build_flow
from chggen_flows.campaign.results import load_candidates
from chggen_flows.campaign.spec import example_path, load_spec, parse_spec
from chggen_flows.errors import InputError
from tests.campaign.helpers import write_spec

HOSTS_DATA = Path(__file__).resolve().parents[1] / "test_data" / "hosts"
TEMPLATES = HOSTS_DATA / "mp20_templates.csv"
DISORDERED = HOSTS_DATA / "Li0.5CoO2_from_mp-22526.cif"
CAMPAIGN = "tiny-hosts-00000001"


def _tiny_model(path: Path, elements: tuple[str, ...]) -> Path:
    import torch

    from chggen_flows.core.model import ScoreModel, ScoreModelConfig, save_score_model

    torch.manual_seed(0)
    return save_score_model(ScoreModel(ScoreModelConfig.preset("tiny", elements=elements)), path)


@pytest.fixture(scope="module")
def znps_model(tmp_path_factory):
    return _tiny_model(tmp_path_factory.mktemp("model") / "tiny-znps.pt", ("Zn", "P", "S"))


def _analogue_spec(checkpoint: Path, **hosts) -> dict:
    """ZnPS3, Z = 2: one generated candidate, two analogue templates (no Zn compound),
    their plain substitution and one random framework; tiny schedules, 3 CHGNet steps."""
    return {
        "name": "tiny-hosts",
        "compositions": ["ZnPS3"],
        "guests": ["Zn"],
        "formula_units": [2],
        "lattices_per_composition": 1,
        "candidates_per_lattice": 1,
        "model": {"checkpoint": str(checkpoint), "device": "cpu"},
        "sampler": {"n_levels": 5, "n_corrector": 1},
        "inpaint": {"jump_length": 2, "n_resample": 1},
        "relax": {"max_steps": 3},
        "stability": {"dft": False},
        "hosts": {
            "source": str(TEMPLATES),
            "exclude_elements": ["Zn"],
            "arms": ["analogue", "substitution", "frameworks"],
            "max_templates": 2,
            "candidates_per_host": 1,
            "frameworks_per_target": 1,
            **hosts,
        },
        "seed": 1,
    }


def test_the_host_examples_validate():
    analogue = load_spec(example_path("zn-p-s-analogue"))
    assert analogue.hosts.arms == ("analogue", "substitution")
    assert analogue.hosts.exclude_elements == ("Zn",)
    (folder,) = analogue.hosts.source
    assert Path(folder).is_dir() and len(list(Path(folder).glob("*.cif"))) == 16
    frameworks = load_spec(example_path("li-si-frameworks"))
    assert frameworks.hosts.arms == ("frameworks",) and frameworks.hosts.source is None
    assert load_spec(example_path("li-si-baseline")).baseline.kind == "pyxtal"
    disordered = load_spec(example_path("li-co-o-disordered"))
    assert disordered.mode == "host" and disordered.host.guests is None
    assert Path(disordered.host.structure).is_file()


@pytest.mark.parametrize(
    ("hosts", "message"),
    [
        ({"source": "no-such-folder"}, "hosts.source"),
        ({"arms": ["analog"]}, "did you mean 'analogue'?"),
        ({"source": None, "arms": ["analogue"]}, "need hosts.source"),
        ({"max_templates": 0}, "max_templates must be >= 1"),
        ({"exclude_elements": ["Zx"]}, "not element symbols"),
    ],
)
def test_bad_hosts_sections_say_what_to_fix(tmp_path, hosts, message):
    raw = _analogue_spec(tmp_path / "x.pt", **hosts)
    raw["model"] = {"device": "cpu"}
    with pytest.raises(InputError) as info:
        load_spec(write_spec(tmp_path, raw))
    assert message in info.value.message
    assert info.value.hint


def test_hosts_need_an_unconditional_campaign(tmp_path):
    raw = {
        "name": "h",
        "mode": "host",
        "host": {"structure": str(DISORDERED), "n_candidates": 2},
        "hosts": {"arms": ["frameworks"]},
    }
    with pytest.raises(InputError, match="'hosts' section needs an unconditional campaign"):
        parse_spec(raw, base_dir=tmp_path)


def test_host_arms_are_routed_chains_that_join_the_e_d_job(znps_model):
    plan = build_flow(parse_spec(_analogue_spec(znps_model)), CAMPAIGN)
    jobs = plan.flow.jobs
    tags = [(j.name, j.metadata["stage"], j.metadata.get("arm")) for j in jobs]
    assert ("host source", "framework", "hosts:analogue") in tags
    assert ("host source", "framework", "hosts:frameworks") in tags
    assert ("substitution", "generated", "substitution") in tags
    arms = {
        arm: [stage for _, stage, a in tags if a == arm]
        for arm in ("hosts:analogue", "hosts:frameworks", "substitution")
    }
    inpainted = ["framework", "inpainted", "relaxed_inpaint", "classified"]
    assert arms == {
        "hosts:analogue": inpainted,
        "hosts:frameworks": inpainted,
        "substitution": ["generated", "relaxed", "classified"],
    }
    source = [j for j in jobs if j.name in ("host source", "substitution")]
    assert {j.config.manager_config["_category"] for j in source} == {"cpu"}
    ehull = next(j for j in jobs if j.metadata["stage"] == "ehull")
    finals = [j for j in jobs if j.metadata.get("arm") and j.metadata["stage"] == "classified"]
    assert {r.uuid for r in ehull.input_references} >= {j.uuid for j in finals}


def _run(spec, store, tmp_path):
    plan = build_flow(spec, CAMPAIGN)
    run_locally(plan.flow, store=store, ensure_success=True, root_dir=tmp_path)
    return plan


def _register(store, plan):
    from chggen_flows.campaign.registry import registry

    registry(store).insert_one(
        {
            "campaign": CAMPAIGN,
            "name": "tiny-hosts",
            "chemsys": plan.chemsys,
            "mode": "unconditional",
            "submitted": datetime.now(UTC),
            "spec_hash": "0" * 64,
            "n_candidates": plan.n_candidates,
            "n_jobs": plan.n_jobs,
            "n_batches": plan.n_batches,
            "spec": {},
            "state": "submitted",
        }
    )


@pytest.mark.slow
def test_a_tiny_analogue_campaign_end_to_end(znps_model, db_env, cli, tmp_path):
    """Python API and CLI on the embedded database (about 40 s on one core)."""
    from chggen_flows.campaign.metrics import campaign_metrics
    from chggen_flows.db import get_job_store

    store = get_job_store(db_env)
    plan = _run(parse_spec(_analogue_spec(znps_model)), store, tmp_path)
    _register(store, plan)
    frame = load_candidates(store, CAMPAIGN)
    by_arm = frame.groupby("arm")["candidate_id"].apply(sorted).to_dict()
    assert set(by_arm) == {"chggen", "hosts:analogue", "hosts:frameworks", "baseline:substitution"}

    analogue = frame[frame.arm == "hosts:analogue"]
    assert len(analogue) == 2  # two templates, one inpainting each
    templates = [t["material_id"] for t in analogue.template]
    formulas = [t["formula"] for t in analogue.template]
    assert len(set(templates)) == 2 and not any("Zn" in f for f in formulas)  # excluded
    assert all(t["spacegroup_number"] for t in analogue.template)
    # the same relaxation, symmetry and E_d as the generated arm
    assert set(analogue.stage) == {"ehull"} and analogue.e_d.notna().all()
    assert analogue.spacegroup_number.notna().all() and analogue.de_inpaint.notna().all()
    assert (analogue.reduced_formula == "ZnPS3").all()
    assert all(c == {"Zn": 2} for c in analogue.guest_counts)
    # plain substitution: the same templates, no inpainting
    substituted = frame[frame.arm == "baseline:substitution"]
    assert sorted(t["material_id"] for t in substituted.template) == sorted(templates)
    done = substituted[substituted.valid]
    assert done.e_d.notna().all() and done.guest_symmetry.isna().all()
    framework = frame[frame.arm == "hosts:frameworks"]
    assert framework.host_source.map(lambda h: h["kind"] == "random_framework").all()

    # per arm costs: model calls for the inpainting arms, CHGNet steps for all
    metrics = campaign_metrics(store, CAMPAIGN)
    costs = {arm.arm: arm.costs for arm in metrics.arms}
    assert costs["hosts:analogue"]["model_calls"] > 0
    assert costs["baseline:substitution"]["model_calls"] == 0
    for arm_costs in costs.values():
        assert arm_costs["chgnet_steps"] > 0 and arm_costs["wall_time_s"] > 0

    res = cli("results", CAMPAIGN)
    assert res.exit_code == 0, res.stderr
    out = res.stdout
    assert "arm" in out and "template" in out and "hosts:analogue" in out
    assert templates[0] in out
    res = cli("results", CAMPAIGN, "--metrics", "--json")
    assert res.exit_code == 0, res.stderr
    data = json.loads(res.stdout)
    assert {a["arm"] for a in data["arms"]} == set(by_arm)
    assert all(a["costs"]["wall_time_s"] > 0 for a in data["arms"])
    res = cli("report", CAMPAIGN, "--out", tmp_path / "report")
    assert res.exit_code == 0, res.stderr
    html = (tmp_path / "report" / "report.html").read_text()
    assert "hosts:analogue" in html and "baseline:substitution" in html and templates[0] in html


def test_a_target_without_templates_says_why(znps_model, tmp_path):
    """No template of the source has the framework: one rejected record with the
    reason, never a forced host; the substitution arm says the same."""
    from chggen_flows.makers.host_source import HostSourceMaker
    from chggen_flows.makers.substitution import SubstitutionMaker

    spec = parse_spec(_analogue_spec(znps_model, exclude_elements=["Zn", "Cd", "Hg", "K"]))
    settings = spec.hosts.model_copy(update={"source": (str(HOSTS_DATA / "mpts52_templates.csv"),)})
    target = [{"composition": "ZnPS3", "formula_units": 1}]
    maker = HostSourceMaker(hosts=settings, guests=["Zn"], v0=24.0)
    doc = maker.make.original(maker, CAMPAIGN, "h0000", "analogue", target)
    (record,) = doc.candidates
    assert not record.valid and record.arm == "hosts:analogue"
    assert "no template" in record.rejected_reason
    sub = SubstitutionMaker(hosts=settings, guests=["Zn"], v0=24.0)
    (record,) = sub.make.original(sub, CAMPAIGN, "s0000", target).candidates
    assert not record.valid and "substitution: no template" in record.rejected_reason


def test_a_disordered_host_campaign_has_its_orderings_as_arms(tmp_path):
    """Li0.5CoO2: host Co6 O12 + 3 Li on the doubled cell; Ewald and enumeration
    baselines of the same supercell join the same E_d job."""
    from chggen_flows.makers.orderings import OrderingMaker

    raw = {
        "name": "lco",
        "mode": "host",
        "host": {"structure": str(DISORDERED), "n_candidates": 4, "ewald": 4},
        "stability": {"dft": False},
        "batch_size": 4,
    }
    spec = parse_spec(raw, base_dir=tmp_path)
    plan = build_flow(spec, "lco-00000001")
    names = [(j.name, j.metadata.get("arm")) for j in plan.flow.jobs]
    assert ("orderings", "ewald") in names and ("orderings", "enumeration") in names
    first = next(j for j in plan.flow.jobs if j.name == "host framework")
    host, guests = first.function_args[2], first.function_args[3]
    assert host.composition.formula == "Co6 O12" and guests == {"Li": 3}
    assert first.function_kwargs["arm"] == "hosts:disordered"
    assert first.function_kwargs["host_source"]["multiple"] == 2

    maker = OrderingMaker(ewald=4)
    from pymatgen.core import Structure

    disordered = Structure.from_file(DISORDERED)
    ewald = maker.make.original(maker, "lco", "o0000", disordered, "ewald", "lco")
    every = maker.make.original(maker, "lco", "o0001", disordered, "enumeration", "lco")
    for doc, arm in ((ewald, "baseline:ewald"), (every, "baseline:enumeration")):
        assert doc.candidates and {r.arm for r in doc.candidates} == {arm}
        assert all(s.composition.formula == "Li3 Co6 O12" for s in doc.structures)
    assert len(ewald.candidates) == 4
    assert all("ewald_energy" in r.host_source for r in ewald.candidates)
    assert len(every.candidates) == 3  # the distinct orderings of 3 Li on 6 sites


def test_campaign_check_and_submit_show_the_host_arms(znps_model, db_env, cli, tmp_path):
    from chggen_flows.db import get_launchpad

    path = write_spec(tmp_path, _analogue_spec(znps_model))
    res = cli("campaign", "check", path)
    assert res.exit_code == 0, res.stderr
    for key in ("hosts", "substitution", "orderings"):
        assert key in res.stdout
    res = cli("campaign", "submit", path)
    assert res.exit_code == 0, res.stderr
    campaign = res.stdout.split("submitted ")[1].split()[0]
    launchpad = get_launchpad(db_env)
    fws = list(launchpad.fireworks.find({"spec.campaign": campaign}))
    names = sorted(fw["name"] for fw in fws)
    assert names.count("host source") == 2 and names.count("substitution") == 1
    ready = {fw["name"] for fw in fws if fw["state"] == "READY"}
    assert {"generate", "host source", "substitution"} <= ready


@pytest.mark.slow
def test_a_disordered_host_campaign_end_to_end(tmp_path):
    """Li0.5CoO2: inpainted candidates and both ordering baselines reach E_d on the same
    supercell (about 70 s on one core). The reference energies are arbitrary test
    inputs (no shipped Li-Co-O hull): only the stages and arms are checked."""
    from jobflow import JobStore
    from maggma.stores import MemoryStore

    reference = tmp_path / "lco_reference.csv"
    reference.write_text(
        "formula,energy_per_atom,entry_id\nLi,-1.9,t-Li\nCo,-7.0,t-Co\nO,-4.9,t-O\n"
        "LiCoO2,-5.6,t-LiCoO2\nCoO2,-5.8,t-CoO2\n"
    )
    raw = {
        "name": "lco",
        "mode": "host",
        "host": {"structure": str(DISORDERED), "n_candidates": 2, "ewald": 2},
        "model": {"checkpoint": str(_tiny_model(tmp_path / "m.pt", ("Li", "Co", "O")))},
        "sampler": {"n_levels": 5, "n_corrector": 1},
        "inpaint": {"jump_length": 2, "n_resample": 1},
        "relax": {"max_steps": 3},
        "stability": {"dft": False, "reference": str(reference)},
        "batch_size": 2,
    }
    raw["model"]["device"] = "cpu"
    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    plan = build_flow(parse_spec(raw, base_dir=tmp_path), "lco-00000001")
    run_locally(plan.flow, store=store, ensure_success=True, root_dir=tmp_path)
    frame = load_candidates(store, "lco-00000001")
    counts = frame.arm.value_counts().to_dict()
    assert counts == {"hosts:disordered": 2, "baseline:enumeration": 3, "baseline:ewald": 2}
    assert (frame.formula == "Li3 Co6 O12").all()
    for arm in counts:
        kept = frame[(frame.arm == arm) & frame.valid]
        assert len(kept) and set(kept.stage) == {"ehull"} and kept.energy_per_atom.notna().all()
    inpainted = frame[frame.arm == "hosts:disordered"]
    assert inpainted.host_source.map(lambda h: h["multiple"] == 2).all()


def test_host_makers_round_trip_through_monty():
    """What FireWorks stores and a worker decodes: the typed settings come back."""
    from monty.json import MontyDecoder, jsanitize

    from chggen_flows.core.hosts import HostSourceSettings
    from chggen_flows.makers.host_source import HostSourceMaker
    from chggen_flows.makers.orderings import OrderingMaker
    from chggen_flows.makers.substitution import SubstitutionMaker

    settings = HostSourceSettings(source=["a.csv"], arms=["analogue"], exclude_elements=["Zn"])
    for maker in (
        HostSourceMaker(hosts=settings, guests=["Zn"], v0=24.0, seed=3),
        SubstitutionMaker(hosts=settings, guests=["Zn"]),
        OrderingMaker(ewald=3, enumeration_limit=0),
    ):
        again = MontyDecoder().decode(json.dumps(jsanitize(maker.as_dict(), strict=True)))
        assert again == maker
        if hasattr(maker, "hosts"):
            assert isinstance(again.hosts, HostSourceSettings)
            assert again.hosts.given() == settings.given()


def test_analogue_guests_can_start_at_the_template_cation_sites(znps_model):
    """``hosts.guest_start_sigma``: each analogue candidate's host carries its template's
    cation sites (a random framework's, PyXtal's sites for its guests); the inpaint job
    starts the guests there (a shorter walk)."""
    from chggen_flows.makers.host_source import HostSourceMaker
    from chggen_flows.makers.inpaint import InpaintMaker

    spec = parse_spec(_analogue_spec(znps_model, guest_start_sigma=0.5))
    assert spec.hosts.guest_start_sigma == 0.5
    target = [{"composition": "ZnPS3", "formula_units": 2}]
    maker = HostSourceMaker(hosts=spec.hosts, guests=["Zn"], v0=24.0)
    doc = maker.make.original(maker, CAMPAIGN, "h0000", "analogue", target)
    assert [r.host_source["guest_start"] for r in doc.candidates] == [
        "template sites, sigma 0.5 A"
    ] * 2
    hosts = [s for _, s in doc.valid_pairs()]
    assert all(h.properties["guest_start"]["species"] == ["Zn", "Zn"] for h in hosts)

    cold = HostSourceMaker(
        hosts=parse_spec(_analogue_spec(znps_model)).hosts, guests=["Zn"], v0=24.0
    )
    cold_doc = cold.make.original(cold, CAMPAIGN, "h0000", "analogue", target)
    assert all("guest_start" not in r.host_source for r in cold_doc.candidates)
    inpaint = InpaintMaker(
        checkpoint=str(znps_model), device="cpu", sampler=spec.sampler, inpaint=spec.inpaint
    )
    warm_out = inpaint.make.original(inpaint, doc)
    cold_out = inpaint.make.original(inpaint, cold_doc)
    assert all(r.valid and r.reduced_formula == "ZnPS3" for r in warm_out.candidates)
    assert all(r.host_source["guest_start"] for r in warm_out.candidates)  # carried along
    assert 0 < warm_out.summary["model_calls"] < cold_out.summary["model_calls"]
    # random frameworks: PyXtal places the guests too, and they start there
    frameworks = maker.make.original(maker, CAMPAIGN, "h0001", "frameworks", target)
    (record,) = frameworks.candidates
    assert record.host_source["guest_start_sigma"] == 0.5
    ((_, host),) = frameworks.valid_pairs()
    assert host.properties["guest_start"]["species"] == ["Zn", "Zn"]


def test_the_substitution_arm_can_rattle_the_exchanged_cations(znps_model):
    from chggen_flows.makers.substitution import SubstitutionMaker

    target = [{"composition": "ZnPS3", "formula_units": 2}]
    plain_spec = parse_spec(_analogue_spec(znps_model))
    rattled_spec = parse_spec(_analogue_spec(znps_model, substitution_rattle=0.1))
    plain = SubstitutionMaker(hosts=plain_spec.hosts, guests=["Zn"], v0=24.0)
    rattled = SubstitutionMaker(hosts=rattled_spec.hosts, guests=["Zn"], v0=24.0)
    one = plain.make.original(plain, CAMPAIGN, "s0000", target)
    two = rattled.make.original(rattled, CAMPAIGN, "s0000", target)
    assert [r.candidate_id for r in one.candidates] == [r.candidate_id for r in two.candidates]
    assert all(r.host_source == {"rattle": 0.1} for r in two.candidates if r.valid)
    assert len(two.valid_pairs()) == 2  # CdPS3 and HgPS3 exchange one for one
    for (_, a), (_, b) in zip(one.valid_pairs(), two.valid_pairs(), strict=True):
        assert a.composition == b.composition and a != b
