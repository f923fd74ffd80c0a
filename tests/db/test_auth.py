"""The embedded server's authentication: first start, upgrade of an open data directory."""

from __future__ import annotations

import pytest
from pymongo import MongoClient
from pymongo.errors import OperationFailure

from chggen_flows.db import EmbeddedServer
from chggen_flows.db.credentials import OWNER, credentials_path, read_credential


def _anonymous(info) -> MongoClient:
    return MongoClient(
        f"mongodb://{info.host}:{info.port}/?directConnection=true", serverSelectionTimeoutMS=5000
    )


def test_an_open_data_directory_is_upgraded_with_its_data_and_strangers_dropped(tmp_path):
    data_dir = tmp_path / "data"
    old = EmbeddedServer(data_dir, auth=False).start()
    client = MongoClient(old.uri)
    client.chggen.outputs.insert_many([{"i": i} for i in range(3)])
    # someone else gave themselves a way in while the server was open
    client.admin.command("createUser", "mallory", pwd="x", roles=["root"])
    client.chggen.command("createUser", "mallory2", pwd="x", roles=["readWrite"])
    client.close()
    data_dir.chmod(0o755)

    server = EmbeddedServer(data_dir)
    try:
        info = server.start()
        assert info.auth and info.pid != old.pid
        assert "upgraded the data directory" in info.note and "all data kept" in info.note
        assert "which accepted connections from any local user" in info.note
        assert data_dir.stat().st_mode & 0o777 == 0o700
        assert credentials_path(data_dir).stat().st_mode & 0o777 == 0o600
        owner = MongoClient(info.uri)
        assert owner.chggen.outputs.count_documents({}) == 3  # nothing lost
        users = [u["user"] for u in owner.admin.command("usersInfo", 1)["users"]]
        assert users == [OWNER]
        assert owner.chggen.command("usersInfo", 1)["users"] == []
        owner.close()
        with pytest.raises(OperationFailure, match="requires authentication"):
            _anonymous(info).chggen.outputs.find_one()
        stranger = MongoClient(
            f"mongodb://mallory:x@{info.host}:{info.port}/?directConnection=true",
            serverSelectionTimeoutMS=5000,
        )
        with pytest.raises(OperationFailure):
            stranger.chggen.outputs.find_one()

        # later starts: same credential, nothing to say
        password = read_credential(data_dir).password
        server.stop()
        again = server.start()
        assert again.note is None and password in again.uri
        assert read_credential(data_dir).password == password
    finally:
        server.stop()
