"""``chggen config``: merged settings with secrets masked, the file in use, bad files."""

from __future__ import annotations

import json

import yaml


def test_show_merges_file_env_and_masks_secrets(cli, isolated_env, monkeypatch, tmp_path):
    config = tmp_path / "chggen.yaml"
    config.write_text("device: cpu\nthreads: 2\nmongo_password: topsecret\nmongo_port: 27018\n")
    monkeypatch.setenv("CHGGEN_THREADS", "4")
    monkeypatch.setenv("CHGGEN_MONGO_URI", "mongodb://alice:hunter2@db.example.org/")
    res = cli("--config", config, "config", "show")
    assert res.exit_code == 0, res.stderr
    shown = yaml.safe_load(res.stdout)
    assert shown["device"] == "cpu" and shown["threads"] == 4
    assert shown["mongo_uri"] == "mongodb://alice:**********@db.example.org/"
    assert shown["mongo_password"] == "**********"
    assert shown["data_dir"] == str(isolated_env)
    assert "hunter2" not in res.stdout and "topsecret" not in res.stdout

    res = cli("--config", config, "config", "show", "--json")
    assert json.loads(res.stdout)["mongo_port"] == 27018


def test_path_reports_the_file_in_use(cli, isolated_env, monkeypatch, tmp_path):
    res = cli("config", "path")
    assert res.exit_code == 0 and "No configuration file" in res.stdout
    config = tmp_path / "c.yaml"
    config.write_text("device: cpu\n")
    monkeypatch.setenv("CHGGEN_CONFIG", str(config))
    assert cli("config", "path").stdout.strip() == str(config)
    res = cli("--config", tmp_path / "missing.yaml", "config", "path")
    assert res.exit_code == 2 and "does not exist" in res.stderr


def test_invalid_yaml_and_unknown_key_exit_2(cli, isolated_env, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("device: cpu\n  threads: [\n")
    res = cli("--config", bad, "config", "show")
    assert res.exit_code == 2
    assert "invalid YAML" in res.stderr and "line 2" in res.stderr and "Traceback" not in res.stderr

    bad.write_text("mongo_url: mongodb://h/\n")
    res = cli("--config", bad, "db", "status")
    assert res.exit_code == 2
    assert "unknown setting 'mongo_url'" in res.stderr and "did you mean 'mongo_uri'" in res.stderr
    assert not (isolated_env / "server.json").exists()  # nothing started


def test_wrong_type_in_env_exit_2(cli, isolated_env, monkeypatch):
    monkeypatch.setenv("CHGGEN_DEVICE", "tpu")
    res = cli("config", "show")
    assert res.exit_code == 2
    assert "device (environment variable CHGGEN_DEVICE)" in res.stderr
