"""``chggen status`` and ``chggen resume`` on a submitted campaign and on stored results."""

from __future__ import annotations

import pytest

from chggen_flows.db import get_job_store
from tests.campaign.helpers import populate_campaign, tiny_checkpoint, tiny_spec, write_spec


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("model") / "tiny.pt")


def _submit(cli, checkpoint, tmp_path) -> str:
    res = cli("campaign", "submit", write_spec(tmp_path, tiny_spec(checkpoint)))
    assert res.exit_code == 0, res.stderr
    return res.stdout.split("submitted ")[1].split()[0]


def test_status_of_a_submitted_campaign(cli, db_env, checkpoint, tmp_path):
    assert "no campaigns yet" in cli("status").stdout
    campaign = _submit(cli, checkpoint, tmp_path)
    overview = cli("status")
    assert overview.exit_code == 0 and campaign in overview.stdout
    res = cli("status", campaign)
    assert res.exit_code == 0, res.stderr
    out = res.stdout
    assert f"{campaign}: 4 candidates planned, 14 jobs" in out
    assert "Jobs per stage" in out and "Jobs per worker category" in out
    generated = next(line for line in out.splitlines() if "generated" in line)
    cells = [c.strip() for c in generated.strip("│ ").split("│")]
    assert cells[0] == "generated" and "2" in cells[1:]  # two READY generation jobs
    assert "0" in cells[1:]  # and no WAITING one
    assert "finished" not in out.splitlines()[0]


def test_status_shows_candidates_and_rejections(cli, db_env):
    campaign = populate_campaign(get_job_store(db_env))
    res = cli("status", campaign)
    assert res.exit_code == 0, res.stderr
    rows = {
        cells[0]: cells[1:]
        for line in res.stdout.splitlines()
        if (cells := [c.strip() for c in line.strip("│ ").split("│")]) and len(cells) == 2
    }
    assert rows["ehull"] == ["3"] and rows["framework"] == ["1"]
    assert rows["framework: no symmetric rung"] == ["1"]


def test_resume_with_nothing_to_do_and_unknown_campaign(cli, db_env, checkpoint, tmp_path):
    campaign = _submit(cli, checkpoint, tmp_path)
    res = cli("resume", campaign, "--dry-run")
    assert res.exit_code == 0 and "no lost or failed jobs" in res.stdout
    res = cli("status", "no-such-campaign")
    assert res.exit_code == 2 and "no campaign" in res.stderr
    res = cli("resume", "no-such-campaign")
    assert res.exit_code == 2


def test_help(cli):
    assert "--dry-run" in cli("resume", "--help").stdout
    assert cli("status", "--help").exit_code == 0
