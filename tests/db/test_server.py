"""The embedded SecantusDB server: idempotent start, persistence, stale files, sharing."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from pymongo import MongoClient

from chggen_flows.db import EmbeddedServer
from chggen_flows.db import server as server_module
from chggen_flows.db.server import _pid_alive, ping
from chggen_flows.errors import ConfigError, DatabaseError


def _count(uri: str) -> int:
    client: MongoClient = MongoClient(uri)
    try:
        return client.chggen_test.samples.count_documents({})
    finally:
        client.close()


def _wait_dead(pid: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _pid_alive(pid)


def test_start_is_idempotent_and_data_survives_stop_and_sigkill(tmp_path):
    server = EmbeddedServer(tmp_path / "data")
    assert server.status() is None
    info = server.start()
    try:
        assert "directConnection=true" in info.uri
        assert server.start() == info  # second start: same process
        assert json.loads(server.state_file.read_text())["pid"] == info.pid
        client: MongoClient = MongoClient(info.uri)
        client.chggen_test.samples.insert_many([{"i": i, "x": "y" * 100} for i in range(500)])
        client.close()

        # Clean stop: state file gone, data on disk.
        assert server.stop() is True
        _wait_dead(info.pid)
        assert not server.state_file.exists()
        assert server.status() is None
        assert server.stop() is False

        info2 = server.start()
        assert _count(info2.uri) == 500
        client = MongoClient(info2.uri)
        client.chggen_test.samples.insert_one({"i": 500})
        client.close()

        # SIGKILL right after an acknowledged write: no shutdown at all, and the
        # state file is now stale. journal=true in the URI makes the write durable.
        os.kill(info2.pid, signal.SIGKILL)
        _wait_dead(info2.pid)
        assert server.state_file.exists()
        assert server.status() is None
        assert not server.state_file.exists()  # the stale file was cleaned

        info3 = server.start()
        assert info3.pid != info2.pid
        assert _count(info3.uri) == 501
    finally:
        server.stop()


def test_stale_or_corrupt_state_file_is_replaced(tmp_path):
    server = EmbeddedServer(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    tmp_path.mkdir(exist_ok=True)
    server.state_file.write_text(
        json.dumps({"host": "127.0.0.1", "port": 1, "pid": dead.pid, "uri": "x"})
    )
    assert server.status() is None
    assert not server.state_file.exists()

    server.state_file.write_text("{not json")
    info = server.start()
    try:
        assert ping(info.uri)
        assert json.loads(server.state_file.read_text())["port"] == info.port
    finally:
        server.stop()


def test_a_silent_server_is_reported_not_killed_and_stop_ends_it(tmp_path, monkeypatch):
    monkeypatch.setattr(server_module, "PING_TIMEOUT_S", 1.0)
    server = EmbeddedServer(tmp_path)
    info = server.start()
    os.kill(info.pid, signal.SIGSTOP)  # alive, but answers nothing
    try:
        for call in (server.status, server.start):
            with pytest.raises(DatabaseError, match="does not answer") as err:
                call()
            assert "chggen db stop" in err.value.hint
        assert _pid_alive(info.pid) and server.state_file.exists()
    finally:
        assert server.stop() is True  # SIGTERM (+SIGCONT) ends even a stopped server
    _wait_dead(info.pid)
    assert not server.state_file.exists()


def test_concurrent_starts_from_two_processes_share_one_server(tmp_path):
    code = (
        "import sys; from pathlib import Path; from chggen_flows.db import EmbeddedServer; "
        "info = EmbeddedServer(Path(sys.argv[1])).start(); print(info.pid, info.port)"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120)[0].split() for p in procs]
    server = EmbeddedServer(tmp_path)
    try:
        assert all(p.returncode == 0 for p in procs)
        assert outputs[0] == outputs[1]
        info = server.status()
        assert info is not None and [str(info.pid), str(info.port)] == outputs[0]
    finally:
        server.stop()


def test_a_free_port_taken_by_another_server_is_retried(tmp_path, monkeypatch):
    other = EmbeddedServer(tmp_path / "other")
    taken = other.start()
    try:
        ports = iter([taken.port])  # the first "free" port is already served
        real_free_port = server_module.free_port
        monkeypatch.setattr(
            server_module, "free_port", lambda host: next(ports, None) or real_free_port(host)
        )
        server = EmbeddedServer(tmp_path / "ours")
        info = server.start()
        try:
            assert info.port != taken.port and info.pid != taken.pid
            assert json.loads(server.state_file.read_text())["pid"] == info.pid
        finally:
            server.stop()
    finally:
        other.stop()


def test_port_in_use_is_a_clear_error_and_writes_no_state(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = EmbeddedServer(tmp_path, port=port)
        with pytest.raises(DatabaseError, match=f"port {port}.*in use"):
            server.start()
    assert not server.state_file.exists()


def test_unwritable_data_dir_is_a_config_error(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    server = EmbeddedServer(blocker / "data")
    with pytest.raises(ConfigError, match="not a writable directory") as err:
        server.start()
    assert "CHGGEN_DATA_DIR" in err.value.hint


def test_missing_secantusdb_names_the_db_extra(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DatabaseError, match="not installed") as err:
        EmbeddedServer(tmp_path / "data").start()
    assert "chggen-flows[db]" in err.value.hint
    assert not (tmp_path / "data" / "server.json").exists()


def test_storage_held_by_an_unrecorded_server_is_reported(tmp_path):
    server = EmbeddedServer(tmp_path)
    info = server.start()
    # Lose the record of the running server, then try to start another one on the
    # same storage: WiredTiger refuses, and we say so without writing a record.
    os.replace(server.state_file, tmp_path / "kept.json")
    try:
        with pytest.raises(DatabaseError, match="in use by another server"):
            server.start()
        assert not server.state_file.exists()
    finally:
        os.replace(tmp_path / "kept.json", server.state_file)
    assert server.stop() is True
    _wait_dead(info.pid)
