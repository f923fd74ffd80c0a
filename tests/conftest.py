"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

os.environ.setdefault("CHGGEN_NO_PROGRESS", "1")
os.environ.setdefault("COLUMNS", "200")


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
