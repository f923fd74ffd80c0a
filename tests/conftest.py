"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

os.environ.setdefault("CHGGEN_NO_PROGRESS", "1")
os.environ.setdefault("COLUMNS", "200")


def pytest_configure(config) -> None:
    """Stop when ``chggen_flows.makers`` is missing or comes from another checkout.

    The makers install from the top-level ``makers/`` folder (setup.py). Run from a
    repository root, ``chggen_flows`` is this checkout's folder; its makers come from the
    editable install's finder, which may point at another checkout, or from nowhere when
    the project is not installed (or installed as a wheel, which that folder shadows).
    """
    import importlib.util
    from pathlib import Path

    import chggen_flows

    package = Path(chggen_flows.__file__).resolve().parent
    spec = importlib.util.find_spec("chggen_flows.makers")
    found = Path(spec.origin).resolve().parent if spec and spec.origin else None
    if found not in (package / "makers", package.parent / "makers"):
        raise pytest.UsageError(
            f"chggen_flows is imported from {package} but chggen_flows.makers "
            + (f"from {found}" if found else "is not importable")
            + f": install this checkout (pip install -e {package.parent})"
        )


@dataclass
class CLIResult:
    """Exit code and captured output of one ``chggen`` invocation."""

    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys):
    """Run ``chggen ARGS...`` in-process, as the console script does; returns a CLIResult."""
    from chggen_flows.cli.app import run

    def invoke(*args: object) -> CLIResult:
        capsys.readouterr()
        code = 0
        try:
            run([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out = capsys.readouterr()
        return CLIResult(code, out.out, out.err)

    return invoke


@pytest.fixture
def isolated_env(monkeypatch, tmp_path):
    """An environment with no chggen configuration; returns the data directory.

    Removes every ``CHGGEN_<SETTING>`` variable and CHGGEN_CONFIG, points
    XDG_CONFIG_HOME at an empty directory (no user YAML file) and sets CHGGEN_DATA_DIR
    to ``tmp_path / "chggen-data"``, so ``load_settings()`` gives the defaults and any
    embedded server lives in the test's temporary directory.
    """
    from chggen_flows.settings import Settings

    for name in Settings.model_fields:
        monkeypatch.delenv(f"CHGGEN_{name.upper()}", raising=False)
    monkeypatch.delenv("CHGGEN_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    data_dir = tmp_path / "chggen-data"
    monkeypatch.setenv("CHGGEN_DATA_DIR", str(data_dir))
    return data_dir


@pytest.fixture(scope="session")
def secantus_server(tmp_path_factory):
    """A real SecantusDB server for the whole test session; yields its ``ServerInfo``.

    Started through :class:`chggen_flows.db.EmbeddedServer` on a free loopback port with
    its storage in a temporary directory, and stopped when the session ends. Use
    ``secantus_server.uri`` with pymongo directly, or the ``db_settings`` fixture for
    chggen code (JobStore, LaunchPad).
    """
    from chggen_flows.db import EmbeddedServer

    server = EmbeddedServer(tmp_path_factory.mktemp("secantus"))
    info = server.start()
    yield info
    server.stop()


@pytest.fixture
def db_settings(secantus_server, tmp_path):
    """``Settings`` pointing at the session's SecantusDB server, isolated per test.

    ``database`` and ``launchpad_database`` are unique names (dropped after the test),
    ``data_dir`` is a fresh temporary directory and ``device`` is ``cpu``. Pass it to
    ``chggen_flows.db.get_job_store`` / ``get_launchpad`` (``init_database`` creates the
    collections and indexes). For ``chggen`` CLI tests use ``db_env``, which exports
    the same settings as ``CHGGEN_*`` variables.
    """
    import uuid

    from pymongo import MongoClient

    from chggen_flows.settings import Settings

    tag = uuid.uuid4().hex[:12]
    settings = Settings(
        mongo_uri=secantus_server.uri,
        database=f"test_{tag}",
        launchpad_database=f"test_{tag}_fw",
        data_dir=tmp_path / "chggen-data",
        device="cpu",
    )
    yield settings
    client: MongoClient = MongoClient(secantus_server.uri)
    try:
        client.drop_database(settings.database)
        client.drop_database(settings.launchpad_database)
    finally:
        client.close()


@pytest.fixture
def db_env(db_settings, isolated_env, monkeypatch):
    """``db_settings`` exported as ``CHGGEN_*`` environment variables; returns the settings.

    For tests that run ``chggen`` commands (``cli`` fixture) or other code calling
    ``load_settings()``: on top of ``isolated_env``, CHGGEN_MONGO_URI, CHGGEN_DATABASE,
    CHGGEN_LAUNCHPAD_DATABASE, CHGGEN_DATA_DIR and CHGGEN_DEVICE are set.
    """
    monkeypatch.setenv("CHGGEN_MONGO_URI", db_settings.mongo_uri.get_secret_value())
    monkeypatch.setenv("CHGGEN_DATABASE", db_settings.database)
    monkeypatch.setenv("CHGGEN_LAUNCHPAD_DATABASE", db_settings.launchpad_database)
    monkeypatch.setenv("CHGGEN_DATA_DIR", str(db_settings.data_dir))
    monkeypatch.setenv("CHGGEN_DEVICE", db_settings.device)
    return db_settings


@pytest.fixture(scope="session")
def auth_server(tmp_path_factory):
    """A second SecantusDB server, started with ``--auth``; yields its ``ServerInfo``.

    Besides its owner (the credential chggen generated), it has a user ``chggen`` with
    password ``right`` (role root, in ``admin``). Started on first use only, stopped at
    the end of the session.
    """
    from pymongo import MongoClient

    from chggen_flows.db import EmbeddedServer

    server = EmbeddedServer(tmp_path_factory.mktemp("secantus-auth"), auth=True)
    info = server.start()
    client: MongoClient = MongoClient(info.uri)
    client.admin.command("createUser", "chggen", pwd="right", roles=["root"])
    client.close()
    yield info
    server.stop()
