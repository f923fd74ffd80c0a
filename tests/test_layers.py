"""The import-layer contracts of pyproject.toml hold (science core free of workflow code).

The makers install as ``chggen_flows.makers`` from the top-level ``makers/`` folder
(``PACKAGE_DIR`` in setup.py). import-linter finds a package's modules by walking its
folder, so in a source checkout it would not see the makers under ``chggen_flows``: the
checks run on a copy of the Python files laid out as a wheel installs them.
"""

from __future__ import annotations

import re
import runpy
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def package_dirs() -> dict[str, Path]:
    """The folders of the packages setup.py maps away from their parent's folder."""
    mapping = runpy.run_path(str(ROOT / "setup.py"))["PACKAGE_DIR"]
    return {package: ROOT / folder for package, folder in mapping.items()}


@pytest.fixture(scope="module")
def installed_layout(tmp_path_factory) -> Path:
    """A folder holding ``chggen_flows`` as a wheel lays it out (Python files only)."""
    target = tmp_path_factory.mktemp("layout")
    python_only = shutil.ignore_patterns("__pycache__", "*.pyc", "data", "examples")
    shutil.copytree(ROOT / "chggen_flows", target / "chggen_flows", ignore=python_only)
    for package, folder in package_dirs().items():
        destination = target.joinpath(*package.split("."))
        assert not destination.exists(), f"{package} exists in two folders"
        shutil.copytree(folder, destination, ignore=python_only)
    return target


def test_makers_install_as_a_subpackage_without_a_link():
    """The only top-level package is ``chggen_flows``; no link, no import hook."""
    import chggen_flows.makers.schemas as schemas

    assert not (ROOT / "chggen_flows" / "makers").exists()
    assert package_dirs() == {"chggen_flows.makers": ROOT / "makers"}
    assert Path(schemas.__file__).resolve().parent.name == "makers"
    hooks = [finder for finder in sys.meta_path if "chggen" in type(finder).__module__]
    assert hooks == [], hooks


def test_import_linter_contracts_pass(installed_layout):
    command = [sys.executable, "-c", "from importlinter.cli import lint_imports_command as c; c()"]
    result = subprocess.run(
        [*command, "--no-cache", "--config", str(ROOT / "pyproject.toml")],
        cwd=installed_layout,
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    kept = re.search(r"Contracts: (\d+) kept, 0 broken", report)
    assert kept and int(kept.group(1)) >= 3, report
    assert "Makers do not import campaigns, reports or the CLI KEPT" in report, report


def test_import_graph_sees_the_makers_and_not_the_gpl_server(installed_layout):
    """SecantusDB is GPL-2.0-only: chggen-flows (BSD-3-Clause) only runs it as a process.

    The graph is the one import-linter checks: it holds the makers' modules and their
    imports of the core (a contract on a package the graph lacks would pass vacuously).
    """
    script = textwrap.dedent(
        """
        import grimp
        graph = grimp.build_graph("chggen_flows", include_external_packages=True, cache_dir=None)
        top_level = {module.split(".")[0] for module in graph.modules}
        assert "pymongo" in top_level, top_level  # the graph does see third-party imports
        assert "secantus" not in top_level and "secantusdb" not in top_level, top_level
        makers = graph.find_children("chggen_flows.makers")
        assert {"chggen_flows.makers.relax", "chggen_flows.makers.flows"} <= makers, makers
        assert graph.direct_import_exists(
            importer="chggen_flows.makers.relax", imported="chggen_flows.core", as_packages=True
        )
        assert graph.direct_import_exists(
            importer="chggen_flows.campaign", imported="chggen_flows.makers", as_packages=True
        )
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=installed_layout,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
