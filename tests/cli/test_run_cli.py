"""``chggen run``: a local worker that only takes jobs of its categories."""

from __future__ import annotations

import pytest

from chggen_flows.db import get_launchpad
from tests.campaign.helpers import fw_states, tiny_checkpoint, tiny_spec, write_spec


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("model") / "tiny.pt")


def test_worker_runs_only_its_category_and_stops_at_max_jobs(cli, db_env, checkpoint, tmp_path):
    submitted = cli("campaign", "submit", write_spec(tmp_path, tiny_spec(checkpoint)))
    campaign = submitted.stdout.split("submitted ")[1].split()[0]
    launchpad = get_launchpad(db_env)

    # only the generation jobs (gpu) are READY: a cpu worker finds nothing to do
    res = cli("run", "--category", "cpu")
    assert res.exit_code == 0, res.stderr
    assert "0 job(s) completed" in res.stdout
    assert "COMPLETED" not in fw_states(launchpad, campaign).values()

    res = cli("run", "--category", "gpu", "--max-jobs", "1")
    assert res.exit_code == 0, res.stderr
    assert "1 job(s) completed, 0 failed" in res.stdout
    done = [fw for fw in launchpad.fireworks.find({"state": "COMPLETED"})]
    assert len(done) == 1 and done[0]["spec"]["_category"] == "gpu"
    assert done[0]["spec"]["stage"] == "generated"
    # its child (a cpu relaxation) is now READY, the other batch's generation still READY
    ready = {fw["spec"]["stage"] for fw in launchpad.fireworks.find({"state": "READY"})}
    assert ready == {"generated", "relaxed"}


def test_unknown_category_exits_2(cli, db_env):
    res = cli("run", "--category", "quantum")
    assert res.exit_code == 2 and "unknown worker category" in res.stderr


def test_help(cli):
    res = cli("run", "--help")
    assert res.exit_code == 0 and "--max-jobs" in res.stdout and "--category" in res.stdout
