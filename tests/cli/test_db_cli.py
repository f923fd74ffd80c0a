"""``chggen db``: embedded server life cycle and user errors (exit code 2)."""

from __future__ import annotations

import socket

from fireworks import Firework, ScriptTask

from chggen_flows.db import EmbeddedServer, get_launchpad
from chggen_flows.db.credentials import read_credential
from chggen_flows.db.server import free_port
from chggen_flows.settings import mask_uri


def test_embedded_server_life_cycle(cli, isolated_env):
    try:
        res = cli("db", "status")
        assert res.exit_code == 0 and "not running" in res.stdout

        res = cli("db", "start")
        assert res.exit_code == 0, res.stderr
        assert "Started: mongodb://chggen-owner:**********@127.0.0.1:" in res.stdout
        info = EmbeddedServer(isolated_env).status()
        assert info is not None and mask_uri(info.uri) in res.stdout
        password = read_credential(isolated_env).password
        assert password not in res.stdout and password in info.uri

        res = cli("db", "start")
        assert (
            res.exit_code == 0 and "Already running" in res.stdout and str(info.pid) in res.stdout
        )

        res = cli("db", "status")
        assert res.exit_code == 0 and f"running at {mask_uri(info.uri)}" in res.stdout
        assert password not in res.stdout
        assert "JobStore chggen: 0 outputs, 0 data files" in res.stdout

        res = cli("config", "show")
        assert res.exit_code == 0 and password not in res.stdout
        assert "password ********** in" in res.stdout

        res = cli("db", "init")
        assert res.exit_code == 0, res.stderr
        assert "chggen: outputs, outputs_data.chunks, outputs_data.files" in res.stdout
        assert "chggen_fireworks:" in res.stdout and "workflows" in res.stdout

        res = cli("db", "stop")
        assert res.exit_code == 0 and "Stopped" in res.stdout
        assert not (isolated_env / "server.json").exists()
        assert "not running" in cli("db", "status").stdout
    finally:
        EmbeddedServer(isolated_env).stop()


def test_init_and_status_on_a_configured_server(cli, db_env):
    res = cli("db", "init")
    assert res.exit_code == 0, res.stderr
    assert f"{db_env.launchpad_database}: " in res.stdout
    lpad = get_launchpad(db_env)
    lpad.add_wf(Firework(ScriptTask.from_str("true"), name="one"))
    res = cli("db", "status")
    assert res.exit_code == 0 and "reachable" in res.stdout
    assert f"LaunchPad {db_env.launchpad_database}: 1 workflows, 1 fireworks" in res.stdout
    # With a URI configured nothing is started and ``db start`` says why.
    res = cli("db", "start")
    assert res.exit_code == 2 and "not used" in res.stderr and "Hint:" in res.stderr
    assert not (db_env.data_dir / "server.json").exists()


def test_port_in_use_exits_2_and_writes_nothing(cli, isolated_env):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        res = cli("db", "start", "--port", port)
    assert res.exit_code == 2
    assert f"port {port} on 127.0.0.1 is already in use" in res.stderr
    assert "Hint:" in res.stderr and "Traceback" not in res.stderr
    assert not (isolated_env / "server.json").exists()


def test_unwritable_data_dir_exits_2(cli, isolated_env, monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("CHGGEN_DATA_DIR", str(blocker / "data"))
    res = cli("db", "start")
    assert res.exit_code == 2
    assert "not a writable directory" in res.stderr and "CHGGEN_DATA_DIR" in res.stderr


def test_unreachable_uri_exits_2(cli, isolated_env, monkeypatch):
    monkeypatch.setenv("CHGGEN_MONGO_URI", f"mongodb://127.0.0.1:{free_port()}/")
    for command in (("db", "status"), ("db", "init")):
        res = cli(*command)
        assert res.exit_code == 2, command
        assert "cannot reach a MongoDB server" in res.stderr and "Hint:" in res.stderr


def test_wrong_credentials_exit_2_without_echoing_them(cli, isolated_env, monkeypatch, auth_server):
    monkeypatch.setenv(
        "CHGGEN_MONGO_URI", f"mongodb://chggen:s3cr3t-wrong@127.0.0.1:{auth_server.port}/"
    )
    res = cli("db", "init")
    assert res.exit_code == 2
    assert "authentication failed" in res.stderr
    assert "s3cr3t-wrong" not in res.stderr + res.stdout
