"""Choosing the server from the settings, and clear errors when it cannot be used."""

from __future__ import annotations

import time

import pytest

from chggen_flows.db import check_connection, get_job_store, resolve_uri, uri_with_database
from chggen_flows.db.server import free_port
from chggen_flows.errors import ConfigError, DatabaseError
from chggen_flows.settings import Settings


def _settings(tmp_path, **kwargs) -> Settings:
    return Settings(data_dir=tmp_path, database="conn_test", **kwargs)


def test_uri_settings_win_and_start_nothing(tmp_path):
    uri = "mongodb://db.example.org:27017/"
    assert resolve_uri(_settings(tmp_path, mongo_uri=uri)) == uri
    assert (
        resolve_uri(_settings(tmp_path, mongo_host="db.example.org"))
        == "mongodb://db.example.org:27017/"
    )
    assert (
        resolve_uri(
            _settings(tmp_path, mongo_port=27018, mongo_username="a b", mongo_password="p@ss")
        )
        == "mongodb://a+b:p%40ss@127.0.0.1:27018/"
    )
    # Credentials given apart from a URI without any are added to it.
    assert (
        resolve_uri(_settings(tmp_path, mongo_uri=uri, mongo_username="u", mongo_password="pw"))
        == "mongodb://u:pw@db.example.org:27017/"
    )
    # A password alone completes a URI that names the user; URI credentials win.
    assert (
        resolve_uri(_settings(tmp_path, mongo_uri="mongodb://u@h/?w=1", mongo_password="p"))
        == "mongodb://u:p@h/?w=1"
    )
    assert (
        resolve_uri(_settings(tmp_path, mongo_uri="mongodb://u:x@h", mongo_password="p"))
        == "mongodb://u:x@h"
    )
    with pytest.raises(ConfigError, match="no MongoDB user name"):
        resolve_uri(_settings(tmp_path, mongo_uri=uri, mongo_password="p"))
    assert not (tmp_path / "server.json").exists()


def test_embedded_server_is_required_running_when_start_is_false(tmp_path):
    with pytest.raises(DatabaseError, match="not running") as err:
        resolve_uri(_settings(tmp_path), start=False)
    assert "chggen db start" in err.value.hint


def test_unreachable_uri_fails_fast_with_a_hint(tmp_path):
    settings = _settings(tmp_path, mongo_uri=f"mongodb://127.0.0.1:{free_port()}/")
    began = time.monotonic()
    with pytest.raises(DatabaseError, match="cannot reach") as err:
        get_job_store(settings)
    assert time.monotonic() - began < 15
    assert "CHGGEN_MONGO_URI" in err.value.hint


def test_malformed_uri_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="invalid MongoDB URI"):
        check_connection(_settings(tmp_path, mongo_uri="mongodb://h:notaport/"))


def test_credentials_against_an_auth_server(auth_server, tmp_path):
    port = auth_server.port
    good = _settings(tmp_path, mongo_port=port, mongo_username="chggen", mongo_password="right")
    assert check_connection(good).startswith("mongodb://chggen:right@")

    wrong = _settings(tmp_path, mongo_port=port, mongo_username="chggen", mongo_password="wrong")
    with pytest.raises(DatabaseError, match="authentication failed") as err:
        check_connection(wrong)
    assert "wrong" not in str(err.value)  # the password is never echoed
    assert "CHGGEN_MONGO_PASSWORD" in err.value.hint

    anonymous = _settings(tmp_path, mongo_port=port)
    with pytest.raises(DatabaseError, match="refused access") as err:
        check_connection(anonymous)
    assert "CHGGEN_MONGO_USERNAME" in err.value.hint


def test_uri_with_database_keeps_auth_source():
    assert (
        uri_with_database("mongodb://127.0.0.1:5/?directConnection=true", "fw")
        == "mongodb://127.0.0.1:5/fw?directConnection=true"
    )
    assert uri_with_database("mongodb://u:p@h:1/", "fw") == "mongodb://u:p@h:1/fw?authSource=admin"
    assert uri_with_database("mongodb://u:p@h/users", "fw") == "mongodb://u:p@h/fw?authSource=users"
    assert (
        uri_with_database("mongodb://u:p@h/x?authSource=a&w=1", "fw")
        == "mongodb://u:p@h/fw?authSource=a&w=1"
    )
    assert (
        uri_with_database("mongodb://u:p@h1:1,h2:2/?replicaSet=rs", "fw")
        == "mongodb://u:p@h1:1,h2:2/fw?replicaSet=rs&authSource=admin"
    )


def test_multi_host_replica_set_uris_are_parsed_by_pymongo(tmp_path):
    from chggen_flows.db.connection import parse_mongo_uri

    uri = "mongodb://a.example.org:27017,b.example.org:27018,[::1]/chggen?replicaSet=rs0&w=majority"
    parts = parse_mongo_uri(uri)
    assert parts.hosts == (("a.example.org", 27017), ("b.example.org", 27018), ("::1", None))
    assert parts.database == "chggen" and parts.options == "replicaSet=rs0&w=majority"
    assert parts.parsed_options["replicaSet"] == "rs0"
    assert parts.uri() == uri  # every member and option survives a round trip
    # credentials go in front of the whole host list; the options stay as written
    settings = _settings(tmp_path, mongo_uri=uri, mongo_username="al:ice", mongo_password="p/w")
    assert resolve_uri(settings) == (
        "mongodb://al%3Aice:p%2Fw@a.example.org:27017,b.example.org:27018,[::1]"
        "/chggen?replicaSet=rs0&w=majority"
    )
    assert uri_with_database(resolve_uri(settings), "chggen_fireworks") == (
        "mongodb://al%3Aice:p%2Fw@a.example.org:27017,b.example.org:27018,[::1]"
        "/chggen_fireworks?replicaSet=rs0&w=majority&authSource=chggen"
    )
    # read-preference tags (repeated options, parsed into dicts) are kept verbatim
    tagged = "mongodb://a,b/?readPreference=nearest&readPreferenceTags=dc:ny&readPreferenceTags="
    assert uri_with_database(tagged, "x") == (
        "mongodb://a,b/x?readPreference=nearest&readPreferenceTags=dc:ny&readPreferenceTags="
    )


def test_srv_uris_are_parsed_without_a_dns_lookup(tmp_path):
    uri = "mongodb+srv://u:p@cluster0.example.invalid/?retryWrites=true&srvMaxHosts=2"
    assert uri_with_database(uri, "fw") == (
        "mongodb+srv://u:p@cluster0.example.invalid/fw?retryWrites=true&srvMaxHosts=2"
        "&authSource=admin"
    )
    settings = _settings(tmp_path, mongo_uri="mongodb+srv://cluster0.example.invalid/")
    assert resolve_uri(settings) == "mongodb+srv://cluster0.example.invalid/"


@pytest.mark.parametrize(
    "uri", ["mongodb://h:notaport/", "mongodb://u:p@ss@h/", "mongodb://a,b/?directConnection=true"]
)
def test_malformed_uris_are_config_errors_that_hide_the_password(tmp_path, uri):
    with pytest.raises(ConfigError, match="invalid MongoDB URI") as err:
        resolve_uri(_settings(tmp_path, mongo_uri=uri, mongo_username="u", mongo_password="pw"))
    assert "ss@" not in str(err.value)
