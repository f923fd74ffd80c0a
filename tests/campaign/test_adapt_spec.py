"""The ``model.adapt`` spec section: every key validated at its path and documented,
paths resolved, stored as given; the adapt job placed before every generate and inpaint
job of the Flow, and absent (the Flow as before) without the section."""

from __future__ import annotations

from pathlib import Path

import pytest

from chggen_flows.campaign.build import build_flow
from chggen_flows.campaign.spec import parse_spec
from chggen_flows.campaign.spec.models import AdaptSpec
from chggen_flows.errors import InputError
from chggen_flows.makers.stages import DEFAULT_ROUTING
from tests.campaign.helpers import tiny_spec

DATA = Path(__file__).resolve().parents[1] / "test_data"

#: (keys of model.adapt, path of the error, part of the message): a bad value of every key.
ADAPT_BAD = [
    ({"sorce": "x"}, "model.adapt.sorce", "did you mean 'source'?"),
    ({"source": []}, "model.adapt.source", "at least 1 item"),
    ({"max_steps": 0}, "model.adapt.max_steps", "greater than or equal to 1"),
    ({"steps_per_epoch": 0}, "model.adapt.steps_per_epoch", "greater than or equal to 1"),
    ({"max_minutes": 0}, "model.adapt.max_minutes", "greater than 0"),
    ({"min_related": 0}, "model.adapt.min_related", "greater than or equal to 1"),
    ({"patience": 0}, "model.adapt.patience", "greater than or equal to 1"),
    ({"val_fraction": 1.0}, "model.adapt.val_fraction", "less than 1"),
    ({"min_val": 0}, "model.adapt.min_val", "greater than or equal to 1"),
    ({"exclude_formulas": ["Xx2"]}, "model.adapt.exclude_formulas", "Xx"),
    ({"exclude_ids": "mp-1"}, "model.adapt.exclude_ids", "valid list"),
    ({"lr": 0}, "model.adapt.lr", "greater than 0"),
    ({"batch_size": 0}, "model.adapt.batch_size", "greater than or equal to 1"),
    ({"warmup_steps": -1}, "model.adapt.warmup_steps", "greater than or equal to 0"),
    ({"weight_decay": -1}, "model.adapt.weight_decay", "greater than or equal to 0"),
    ({"ema_decay": 1.0}, "model.adapt.ema_decay", "less than 1"),
    ({"max_atoms": 0}, "model.adapt.max_atoms", "greater than or equal to 1"),
    ({"seed": "one"}, "model.adapt.seed", "valid integer"),
    ({"device": "gpu"}, "model.adapt.device", "unknown device 'gpu'"),
    ({"threads": 0}, "model.adapt.threads", "greater than or equal to 1"),
    ({"checkpoint_every_steps": 0}, "model.adapt.checkpoint_every_steps", "greater than or"),
]


def _spec(tmp_path: Path, **adapt) -> dict:
    checkpoint = tmp_path / "model.pt"
    checkpoint.write_bytes(b"placeholder")  # existence is checked here; content at submit
    spec = tiny_spec(checkpoint)
    spec["model"]["adapt"] = {"source": str(DATA / "structures"), **adapt}
    return spec


@pytest.mark.parametrize(("value", "path", "message"), ADAPT_BAD, ids=[p for _, p, _ in ADAPT_BAD])
def test_bad_adapt_values_are_reported_at_their_path(tmp_path, value, path, message):
    spec = _spec(tmp_path, **value)
    if "sorce" in value:
        del spec["model"]["adapt"]["source"]
    with pytest.raises(InputError) as info:
        parse_spec(spec, "bad.yaml", tmp_path)
    located = [
        line.strip()
        for line in info.value.message.splitlines()
        if line.strip().startswith(f"{path}: ")
    ]
    assert located and any(message in line for line in located), info.value.message


def test_bad_values_cover_every_adapt_key():
    covered = {key for value, _, _ in ADAPT_BAD for key in value}
    assert set(AdaptSpec.model_fields) <= covered


def test_docs_list_every_adapt_key():
    text = (Path(__file__).resolve().parents[2] / "docs" / "campaigns.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| `model.adapt`")]
    assert rows, "docs/campaigns.md has no row for model.adapt"
    missing = [key for key in AdaptSpec.model_fields if f"`{key}`" not in rows[0]]
    assert not missing, f"docs/campaigns.md does not list model.adapt keys {missing}"


def test_sources_resolve_against_the_spec_folder_and_must_exist(tmp_path):
    (tmp_path / "known").mkdir()
    spec = parse_spec(_spec(tmp_path, source="known"), "s", tmp_path)
    assert spec.model.adapt.source == [str((tmp_path / "known").resolve())]
    spec = parse_spec(_spec(tmp_path, source=["materials_project", "known"]), "s", tmp_path)
    assert spec.model.adapt.source[0] == "materials_project"
    with pytest.raises(InputError, match=r"model\.adapt\.source .*nowhere does not exist"):
        parse_spec(_spec(tmp_path, source="nowhere"), "s", tmp_path)


def test_the_section_is_stored_as_given_and_absent_without_it(tmp_path):
    spec = parse_spec(_spec(tmp_path, max_steps=10, lr=1.0e-3), "s", tmp_path)
    stored = spec.model_dump(mode="json")["model"]["adapt"]
    assert stored == {"source": [str((DATA / "structures").resolve())], "max_steps": 10,
                      "lr": 1.0e-3}  # fmt: skip
    plain = tiny_spec(tmp_path / "model.pt")
    dumped = parse_spec(plain, "s", tmp_path).model_dump(mode="json")["model"]
    assert "adapt" not in dumped  # the campaign id of a spec without it does not move


def test_the_adapt_job_comes_first_and_feeds_every_generate_and_inpaint_job(tmp_path):
    spec = parse_spec(
        _spec(tmp_path, max_steps=10, device="cpu", exclude_formulas=["LiSi"]), "s", tmp_path
    )
    flow = build_flow(spec, "camp").flow
    adapt = flow.jobs[0]
    assert adapt.name == "adapt" and adapt.metadata["stage"] == "adapt"
    assert adapt.config.manager_config == {"_category": DEFAULT_ROUTING["adapt"]}
    maker = adapt.function.__self__
    assert maker.base == spec.model.checkpoint and maker.device == "cpu"
    assert maker.settings == {"max_steps": 10, "exclude_formulas": ["LiSi"]}
    assert adapt.function_args == ("camp", "Li-Si")
    users = [j for j in flow.jobs if j.name in ("generate", "inpaint")]
    assert len(users) == 4
    for job in users:
        assert job.function_kwargs["adapted"].uuid == adapt.uuid
    # without the section: no adapt job, and no job takes an adaptation
    plain = build_flow(parse_spec(tiny_spec(tmp_path / "model.pt"), "s", tmp_path), "camp")
    assert all(j.name != "adapt" for j in plain.flow.jobs)
    assert all("adapted" not in j.function_kwargs for j in plain.flow.jobs)


def test_host_mode_inpaints_with_the_adapted_model(tmp_path):
    from chggen_flows.campaign.spec import example_path

    spec = tiny_spec(tmp_path / "model.pt")
    (tmp_path / "model.pt").write_bytes(b"placeholder")
    del spec["compositions"]
    spec.update(
        mode="host",
        host={"structure": str(example_path("si-lithiation").parent / "si-diamond.cif"),
              "guests": {"Li": 2}, "n_candidates": 2},
    )  # fmt: skip
    spec["model"]["adapt"] = {"source": str(DATA / "structures")}
    flow = build_flow(parse_spec(spec, "s", tmp_path), "camp").flow
    adapt = flow.jobs[0]
    assert adapt.name == "adapt" and adapt.function_args == ("camp", "Li-Si")
    painters = [j for j in flow.jobs if j.name == "inpaint"]
    assert painters and all(j.function_kwargs["adapted"].uuid == adapt.uuid for j in painters)


def test_campaign_check_shows_the_adapt_stage(cli):
    res = cli("campaign", "check", "--example", "li-si-adapt")
    assert res.exit_code == 0, res.stderr
    out = " ".join(res.stdout.split())
    assert "model adaptation: an adapt job fine-tunes the model on the structures of " in out
    assert "materials_project related to Li-Si" in out
    assert "adapt -> gpu: no candidate records; jobs adapt; AdaptMaker" in out
