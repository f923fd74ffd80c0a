"""Settings: precedence of flags, environment, YAML file and defaults; errors; masking."""

from __future__ import annotations

from pathlib import Path

import pytest

from chggen_flows.errors import ConfigError
from chggen_flows.settings import (
    MASK,
    default_data_dir,
    load_settings,
    mask_uri,
    resolve_config_path,
)

pytestmark = pytest.mark.usefixtures("isolated_env")


def _yaml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "chggen.yaml"
    path.write_text(text)
    return path


def test_defaults(tmp_path, monkeypatch):
    monkeypatch.delenv("CHGGEN_DATA_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    settings = load_settings()
    assert settings.database == "chggen"
    assert settings.launchpad_database == "chggen_fireworks"
    assert settings.device == "auto"
    assert settings.mongo_uri is None and settings.threads is None
    assert settings.data_dir == tmp_path / "xdg-data" / "chggen" == default_data_dir()
    assert not settings.uses_external_server


def test_precedence_flags_over_env_over_file_over_defaults(tmp_path, monkeypatch):
    path = _yaml(tmp_path, "device: cuda\nthreads: 2\ndatabase: from_file\n")
    monkeypatch.setenv("CHGGEN_THREADS", "3")
    monkeypatch.setenv("CHGGEN_DATABASE", "from_env")
    settings = load_settings(path, database="from_flag", device=None)
    assert settings.database == "from_flag"  # flag > env
    assert settings.threads == 3  # env > file
    assert settings.device == "cuda"  # file > default; a None flag is ignored
    assert settings.launchpad_database == "chggen_fireworks"  # default


def test_config_file_from_env_and_user_file(tmp_path, monkeypatch):
    user_file = tmp_path / "xdg-config" / "chggen" / "config.yaml"
    assert resolve_config_path() is None  # absent user file: none
    user_file.parent.mkdir(parents=True)
    user_file.write_text("device: cpu\n")
    assert load_settings().device == "cpu"
    monkeypatch.setenv("CHGGEN_CONFIG", str(_yaml(tmp_path, "device: cuda\n")))
    assert load_settings().device == "cuda"  # CHGGEN_CONFIG beats the user file
    explicit = tmp_path / "other.yaml"
    explicit.write_text("device: auto\n")
    assert load_settings(explicit).device == "auto"  # the argument beats both


def test_relative_paths_in_yaml_are_relative_to_the_file(tmp_path, monkeypatch):
    path = _yaml(tmp_path, "data_dir: store\ncheckpoint: ~/model.pt\n")
    monkeypatch.delenv("CHGGEN_DATA_DIR")  # it would win over the file
    monkeypatch.chdir("/")
    settings = load_settings(path)
    assert settings.data_dir == tmp_path / "store"
    assert settings.checkpoint == Path.home() / "model.pt"


def test_host_or_port_from_env_select_an_external_server(monkeypatch):
    assert not load_settings().uses_external_server
    monkeypatch.setenv("CHGGEN_MONGO_HOST", "127.0.0.1")  # even the default value, if given
    assert load_settings().uses_external_server
    monkeypatch.delenv("CHGGEN_MONGO_HOST")
    monkeypatch.setenv("CHGGEN_MONGO_PORT", "27018")
    assert load_settings().uses_external_server


def test_data_dir_from_chggen_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CHGGEN_DATA_DIR", str(tmp_path / "d"))
    assert load_settings().data_dir == tmp_path / "d"


@pytest.mark.parametrize(
    ("text", "message", "hint"),
    [
        ("devic: cpu\n", "unknown setting 'devic'", "did you mean 'device'"),
        ("device: [cpu\n", "invalid YAML", "YAML mapping"),
        ("- device\n- cpu\n", "not a mapping", "key: value"),
        ("threads: many\n", "threads", "docs/configuration.md"),
        ("device: tpu\n", "device", "docs/configuration.md"),
        ("mongo_port: 70000\n", "mongo_port", "docs/configuration.md"),
        ("database: chggen.v2\n", "MongoDB database name", "docs/configuration.md"),
    ],
)
def test_bad_files_raise_config_errors_with_hints(tmp_path, text, message, hint):
    with pytest.raises(ConfigError, match=message) as err:
        load_settings(_yaml(tmp_path, text))
    assert hint in err.value.hint
    assert err.value.exit_code == 2


def test_missing_config_file_and_bad_env_value(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.yaml")
    monkeypatch.setenv("CHGGEN_THREADS", "zero")
    with pytest.raises(ConfigError, match="CHGGEN_THREADS"):
        load_settings()


def test_a_bad_uri_error_does_not_echo_its_password(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_settings(_yaml(tmp_path, "mongo_uri: http://u:hunter2@h/\n"))
    assert "hunter2" not in str(err.value)
    assert "mongodb://" in str(err.value)


def test_masked_hides_secrets(tmp_path):
    settings = load_settings(
        mongo_uri="mongodb://alice:hunter2@db:27017/x?tlsCertificateKeyFilePassword=pem",
        mongo_password="hunter3",
        mongo_username="alice",
    )
    shown = settings.masked()
    text = repr(shown) + repr(settings) + str(settings)
    assert "hunter2" not in text and "hunter3" not in text and "pem" not in text
    assert (
        shown["mongo_uri"]
        == f"mongodb://alice:{MASK}@db:27017/x?tlsCertificateKeyFilePassword={MASK}"
    )
    assert shown["mongo_password"] == MASK
    assert shown["mongo_username"] == "alice"
    assert settings.uses_external_server


def test_mask_uri_leaves_uris_without_password_alone():
    assert (
        mask_uri("mongodb://h:1/?directConnection=true") == "mongodb://h:1/?directConnection=true"
    )
    assert mask_uri("mongodb://user@h/") == "mongodb://user@h/"
    assert (
        mask_uri("mongodb+srv://u:p%40x@cluster.example/")
        == f"mongodb+srv://u:{MASK}@cluster.example/"
    )
    # An unescaped "@" or "/" in the password (invalid, but users write it) stays hidden.
    assert mask_uri("mongodb://u:se@cr/et@h:1/db") == f"mongodb://u:{MASK}@h:1/db"
