"""The root ``chggen`` command: help, version, command groups, --debug."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from chggen_flows import __version__

GROUPS = ("db", "config")


def test_version(cli):
    res = cli("--version")
    assert res.exit_code == 0 and res.stdout.strip() == f"chggen-flows {__version__}"


def test_help_lists_the_groups(cli):
    res = cli("--help")
    assert res.exit_code == 0
    for group in GROUPS:
        assert group in res.stdout


@pytest.mark.parametrize(
    "command",
    [
        ("db",),
        ("db", "start"),
        ("db", "stop"),
        ("db", "status"),
        ("db", "init"),
        ("config",),
        ("config", "show"),
        ("config", "path"),
    ],
)
def test_every_command_has_help(cli, command):
    res = cli(*command, "--help")
    assert res.exit_code == 0
    assert "Usage:" in res.stdout and len(res.stdout.splitlines()) > 3


def test_debug_shows_the_traceback(cli, isolated_env, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("nope: 1\n")
    res = cli("--config", bad, "config", "show")
    assert res.exit_code == 2 and "Traceback" not in res.stderr
    with pytest.raises(Exception, match="unknown setting 'nope'"):
        cli("--debug", "--config", bad, "config", "show")


def test_console_script_exits_2_on_user_errors(isolated_env, tmp_path):
    chggen = Path(sys.executable).parent / "chggen"  # installed by pip install -e .
    ok = subprocess.run([chggen, "--version"], capture_output=True, text=True)
    assert ok.returncode == 0 and __version__ in ok.stdout
    bad = subprocess.run(
        [chggen, "--config", tmp_path / "missing.yaml", "config", "show"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2
    assert "Error:" in bad.stderr and "Hint:" in bad.stderr and "Traceback" not in bad.stderr
