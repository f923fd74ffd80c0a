"""The import-layer contracts of pyproject.toml hold (science core free of workflow code)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_linter_contracts_pass():
    lint_imports = Path(sys.executable).parent / "lint-imports"
    command = [str(lint_imports)] if lint_imports.exists() else [shutil.which("lint-imports")]
    assert command[0], "import-linter is not installed (pip install -e '.[dev]')"
    result = subprocess.run(
        [*command, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    kept = re.search(r"Contracts: (\d+) kept, 0 broken", report)
    assert kept and int(kept.group(1)) >= 3, report


def test_gpl_database_server_is_never_imported():
    """SecantusDB is GPL-2.0-only: chggen-flows (BSD-3-Clause) only runs it as a process."""
    import grimp

    graph = grimp.build_graph("chggen_flows", include_external_packages=True, cache_dir=None)
    top_level = {module.split(".")[0] for module in graph.modules}
    assert "pymongo" in top_level  # the graph does see third-party imports
    assert "secantus" not in top_level and "secantusdb" not in top_level


def test_nothing_generic_lands_at_the_top_level_of_site_packages(tmp_path):
    """The makers live in the repository's top-level ``makers/`` folder but install as
    ``chggen_flows.makers`` (a link): the only top-level package is ``chggen_flows``, and
    the pre-rename name ``makers.*`` of stored campaigns resolves to the same modules."""
    from pathlib import Path

    from setuptools import find_packages

    import chggen_flows.makers.schemas as schemas

    root = Path(__file__).parents[1]
    assert (root / "chggen_flows" / "makers").resolve() == (root / "makers").resolve()
    packages = find_packages(str(root), include=["chggen_flows*"])
    assert "chggen_flows.makers" in packages
    assert {p.split(".")[0] for p in packages} == {"chggen_flows"}
    legacy = __import__("makers.schemas", fromlist=["StageDocument"])
    assert legacy is schemas and legacy.StageDocument is schemas.StageDocument
