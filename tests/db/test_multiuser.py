"""Another local user cannot reach a user's embedded database (tested as ``nobody``).

The client runs in a forked child that drops to ``nobody`` (uid/gid 65534, no
supplementary groups) with ``os.setuid``, so it uses the very interpreter and pymongo
of the test without needing a Python that ``nobody`` may execute. Needs root; a
control case shows the same child *can* read and write an open server (the situation
before authentication was the default), so a refusal is the server's, not the harness'.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from chggen_flows.db import EmbeddedServer
from chggen_flows.db.credentials import credentials_path

NOBODY = 65534

pytestmark = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0,
    reason="switching to another local user (nobody) needs root",
)


def _as_nobody(host: str, port: int, data_dir: Path) -> dict:
    """What ``nobody`` achieves against ``host:port``: listing, reading, writing, and
    reading the credential file. Runs in a forked child; returns its report."""
    import pymongo  # imported before the fork: the child needs no file access for it

    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: become nobody, try everything, report, exit
        report: dict = {}
        try:
            os.close(read_fd)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            report["uid"] = os.getuid()
            uri = f"mongodb://{host}:{port}/?directConnection=true"
            client = pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000)
            for name, action in (
                ("list", lambda: client.list_database_names()),
                ("read", lambda: client.chggen.outputs.find_one()),
                ("write", lambda: client.chggen.outputs.insert_one({"by": "nobody"}).acknowledged),
            ):
                try:
                    result = action()
                    report[name] = f"ok: {result!r}"
                except Exception as exc:  # the refusal is the point
                    report[name] = f"refused: {type(exc).__name__}: {exc}"
            client.close()
            try:
                credentials_path(data_dir).read_text()
                report["credential"] = "read"
            except OSError as exc:
                report["credential"] = f"refused: {type(exc).__name__}"
        except BaseException as exc:  # reported to the parent
            report["error"] = repr(exc)
        finally:
            os.write(write_fd, json.dumps(report).encode())
            os._exit(0)
    os.close(write_fd)
    chunks = []
    while chunk := os.read(read_fd, 65536):
        chunks.append(chunk)
    os.close(read_fd)
    os.waitpid(pid, 0)
    return json.loads(b"".join(chunks))


def _world_traversable(path: Path) -> Path:
    """``path`` under a directory ``nobody`` may enter (pytest's tmp root is 0700), so
    that only chggen's own permissions stand in nobody's way."""
    path.mkdir(parents=True, exist_ok=True)
    for parent in [path, *path.parents]:
        if parent == Path("/"):
            break
        parent.chmod(parent.stat().st_mode | 0o711)
    return path


def test_another_user_cannot_read_or_write_the_embedded_database():
    base = _world_traversable(Path(f"/tmp/chggen-multiuser-{os.getpid()}"))
    data_dir = base / "data"
    server = EmbeddedServer(data_dir)
    info = server.start()
    try:
        import pymongo

        owner = pymongo.MongoClient(info.uri)
        owner.chggen.outputs.insert_one({"by": "owner"})
        owner.close()
        report = _as_nobody(info.host, info.port, data_dir)
        assert report.get("uid") == NOBODY, report
        for action in ("list", "read", "write"):
            assert report[action].startswith("refused"), report
            assert "requires authentication" in report[action], report
        assert report["credential"] == "refused: PermissionError", report
        assert data_dir.stat().st_mode & 0o777 == 0o700
        assert credentials_path(data_dir).stat().st_mode & 0o777 == 0o600
        owner = pymongo.MongoClient(info.uri)
        assert [d["by"] for d in owner.chggen.outputs.find()] == ["owner"]  # nothing added
        owner.close()
    finally:
        server.stop()
        import shutil

        shutil.rmtree(base, ignore_errors=True)


def test_control_an_open_server_is_reachable_by_nobody():
    """Without authentication (the old default) the same child gets in: the harness
    really acts as another user against the server."""
    base = _world_traversable(Path(f"/tmp/chggen-multiuser-open-{os.getpid()}"))
    server = EmbeddedServer(base / "data", auth=False)
    info = server.start()
    try:
        report = _as_nobody(info.host, info.port, base / "data")
        assert report.get("uid") == NOBODY, report
        assert report["list"].startswith("ok") and report["write"] == "ok: True", report
        import pymongo

        owner = pymongo.MongoClient(info.uri)
        assert [d["by"] for d in owner.chggen.outputs.find()] == ["nobody"]
        owner.close()
    finally:
        server.stop()
        import shutil

        shutil.rmtree(base, ignore_errors=True)
