"""The documentation site builds and its command-line examples work.

Conventions (also in docs/index.md, "Conventions of these pages"):

- In a ```` ```console ```` block every line starting with ``$ `` is a shell command
  (a trailing ``\\`` continues it on the next line); other lines are sample output and
  are not compared. Each block runs, command after command, with ``bash`` in a fresh
  temporary directory, with ``CHGGEN_DATA_DIR`` in another temporary directory, no user
  configuration and the test venv's ``chggen`` and ``python`` first on ``PATH``. Every
  command must exit 0.
- An HTML comment ``<!-- docs-test: needs-db -->`` on the line before the block runs it
  against the test session's SecantusDB server (``CHGGEN_MONGO_URI`` etc. from the
  ``db_env`` fixture).
- ``<!-- docs-test: needs-campaign -->`` runs it against a finished tiny 4-candidate
  Li-Si campaign (gpu and cpu jobs, run once per test session in its own databases on
  that server; about a minute, so these blocks are marked slow); its id is in the
  environment variable ``CAMPAIGN``. Blocks must not change that campaign.
- ```` ```bash ````, ```` ```text ```` and other blocks are not run (cluster set-up,
  hour-long campaigns). Their ``chggen`` lines are still checked statically: the command
  must exist and every ``--option`` must be one of its options.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
MARKER = re.compile(r"<!--\s*docs-test:\s*([\w-]+)\s*-->")
FENCE = re.compile(r"^(`{3,})\s*([\w+-]*)")
MARKERS = {"needs-db", "needs-campaign"}
COMMAND_TIMEOUT_S = 300


@dataclass
class Block:
    """One fenced code block of a docs page."""

    page: str
    line: int
    lang: str
    lines: list[str] = field(default_factory=list)
    markers: set[str] = field(default_factory=set)

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def code_blocks(path: Path) -> list[Block]:
    """Fenced code blocks of a markdown file, with the docs-test markers before them."""
    blocks: list[Block] = []
    current: Block | None = None
    fence = ""
    previous = ""
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if current is None:
            match = FENCE.match(line)
            if match:
                fence = match.group(1)
                current = Block(path.name, number, match.group(2).lower())
                current.markers = set(MARKER.findall(previous))
            elif line:
                previous = line
        elif line.startswith(fence) and line.strip("`") == "":
            blocks.append(current)
            current, previous = None, ""
        else:
            current.lines.append(raw)
    return blocks


def joined_lines(lines: list[str]) -> list[str]:
    """Lines with shell continuations (a trailing backslash) joined, stripped."""
    out: list[str] = []
    pending = ""
    for raw in lines:
        line = raw.strip()
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        out.append(pending + line)
        pending = ""
    if pending:
        out.append(pending.strip())
    return out


def commands(block: Block) -> list[str]:
    """The ``$ `` commands of a console block, continuation lines joined."""
    return [line[2:].strip() for line in joined_lines(block.lines) if line.startswith("$ ")]


def nav_pages(nav: list) -> list[str]:
    """Every markdown file named in a mkdocs nav (nested sections flattened)."""
    pages = []
    for item in nav:
        value = next(iter(item.values())) if isinstance(item, dict) else item
        if isinstance(value, list):
            pages.extend(nav_pages(value))
        else:
            pages.append(value)
    return pages


PAGES = sorted(DOCS.glob("*.md"))
CONSOLE = [b for p in PAGES for b in code_blocks(p) if b.lang == "console" and commands(b)]
STATIC = [
    (b, line.removeprefix("$ "))
    for p in PAGES
    for b in code_blocks(p)
    if b.lang != "console"
    for line in joined_lines(b.lines)
    if re.match(r"^(\$ )?chggen(\s|$)", line)
]


def test_every_nav_page_exists_and_every_page_is_in_the_nav():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    nav = nav_pages(config["nav"])
    missing = [p for p in nav if not (DOCS / p).is_file()]
    assert not missing, f"pages in mkdocs.yml nav but not in docs/: {missing}"
    unlisted = sorted({p.name for p in PAGES} - set(nav))
    assert not unlisted, f"docs pages missing from the mkdocs.yml nav: {unlisted}"


def test_mkdocs_build_strict(tmp_path):
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            # Not -q: quiet mode hides the warnings that --strict turns into a failure.
            "--strict",
            "-f",
            str(ROOT / "mkdocs.yml"),
            "-d",
            str(tmp_path / "site"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert res.returncode == 0, res.stderr + res.stdout
    assert (tmp_path / "site" / "index.html").is_file()


def test_markers_are_known():
    unknown = {(b.id, m) for p in PAGES for b in code_blocks(p) for m in b.markers - MARKERS}
    assert not unknown, f"unknown docs-test markers: {unknown}"


def base_env(tmp_path: Path) -> dict[str, str]:
    """The process environment without CHGGEN_* settings, no user config, venv on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHGGEN_")}
    env["CHGGEN_DATA_DIR"] = str(tmp_path / "chggen-data")
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg-config")
    env["CHGGEN_NO_PROGRESS"] = "1"
    env["OPENBLAS_NUM_THREADS"] = "1"
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.fixture(scope="session")
def docs_campaign(secantus_server, tmp_path_factory):
    """A finished tiny campaign in its own databases on the session's server, shared by
    every needs-campaign block; yields (environment, campaign id)."""
    import uuid

    from pymongo import MongoClient

    tmp_path = tmp_path_factory.mktemp("docs-campaign")
    tag = uuid.uuid4().hex[:12]
    env = base_env(tmp_path)
    env.update(
        CHGGEN_MONGO_URI=secantus_server.uri,
        CHGGEN_DATABASE=f"docs_{tag}",
        CHGGEN_LAUNCHPAD_DATABASE=f"docs_{tag}_fw",
        CHGGEN_DEVICE="cpu",
    )
    yield env, run_tiny_campaign(tmp_path, env)
    client: MongoClient = MongoClient(secantus_server.uri)
    try:
        client.drop_database(env["CHGGEN_DATABASE"])
        client.drop_database(env["CHGGEN_LAUNCHPAD_DATABASE"])
    finally:
        client.close()


@pytest.fixture
def docs_env(tmp_path, request):
    """Environment of a console block (see the module docstring), its working directory."""
    block: Block = request.param
    env = base_env(tmp_path)
    if "needs-campaign" in block.markers:
        campaign_env, campaign = request.getfixturevalue("docs_campaign")
        env.update({k: v for k, v in campaign_env.items() if k.startswith("CHGGEN_")})
        env["CAMPAIGN"] = campaign
    elif "needs-db" in block.markers:
        request.getfixturevalue("db_env")
        env.update({k: v for k, v in os.environ.items() if k.startswith("CHGGEN_")})
    workdir = tmp_path / "work"
    workdir.mkdir()
    return block, env, workdir


def run_shell(command: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    """``command`` under ``bash -eo pipefail`` (the way console blocks are run)."""
    return subprocess.run(
        ["bash", "-c", f"set -eo pipefail\n{command}"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
    )


def run_tiny_campaign(tmp_path: Path, env: dict[str, str]) -> str:
    """Submit and run (gpu and cpu jobs) the campaign tests' tiny Li-Si spec; its id."""
    from tests.campaign.helpers import tiny_checkpoint, tiny_spec, write_spec

    spec = write_spec(tmp_path, tiny_spec(tiny_checkpoint(tmp_path / "tiny.pt")))
    for command in ("chggen db init", f"chggen campaign submit {spec}", "chggen run -c gpu -c cpu"):
        res = run_shell(command, env, tmp_path)
        assert res.returncode == 0, f"set-up `{command}` failed:\n{res.stdout}\n{res.stderr}"
        if command.startswith("chggen campaign submit"):
            campaign = res.stdout.split("submitted ")[1].split()[0]
    return campaign


@pytest.mark.parametrize(
    "docs_env",
    [
        pytest.param(b, id=b.id, marks=[pytest.mark.slow] if "needs-campaign" in b.markers else [])
        for b in CONSOLE
    ],
    indirect=True,
)
def test_console_examples_run(docs_env):
    block, env, workdir = docs_env
    for command in commands(block):
        res = run_shell(command, env, workdir)
        assert res.returncode == 0, (
            f"{block.id}: `$ {command}` exited {res.returncode}\n"
            f"stdout:\n{res.stdout[-3000:]}\nstderr:\n{res.stderr[-3000:]}\n"
            "(console blocks run in an empty directory: create their input files in the "
            "block, or fence examples that cannot run here as ```bash; see docs/index.md)"
        )


def _leaf_command(tokens: list[str]):
    """The click command a ``chggen ...`` token list names, and the remaining tokens."""
    import typer.main

    from chggen_flows.cli.app import app

    command = typer.main.get_command(app)
    rest = tokens[1:]
    # Root options come before the sub-command.
    while rest and rest[0] in ("--config", "--debug", "--version"):
        rest = rest[2:] if rest[0] == "--config" else rest[1:]
    while rest and hasattr(command, "commands") and not rest[0].startswith("-"):
        sub = command.commands.get(rest[0])
        assert sub is not None, f"`chggen` has no command {rest[0]!r} here"
        command, rest = sub, rest[1:]
    return command, rest


@pytest.mark.parametrize(
    "block,line", STATIC, ids=[f"{b.id}:{i}" for i, (b, _) in enumerate(STATIC)]
)
def test_static_examples_name_real_commands_and_options(block, line):
    tokens = []
    for token in shlex.split(line, comments=True):
        if token in {"|", ">", ">>", "&&", "||", ";", "2>", "&"}:
            break
        tokens.append(token)
    command, rest = _leaf_command(tokens)
    options = {"--help"}
    for param in command.params:
        options.update(getattr(param, "opts", []))
        options.update(getattr(param, "secondary_opts", []))
    for token in rest:
        if token.startswith("-") and not re.fullmatch(r"-[\d.]*", token):
            name = token.split("=", 1)[0]
            assert name in options, (
                f"{block.id}: `{line}` uses {name}, not an option of `{command.name}` "
                f"(options: {sorted(options)})"
            )
