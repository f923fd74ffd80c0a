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

    graph = grimp.build_graph(
        "chggen_flows", "makers", include_external_packages=True, cache_dir=None
    )
    top_level = {module.split(".")[0] for module in graph.modules}
    assert "pymongo" in top_level  # the graph does see third-party imports
    assert "secantus" not in top_level and "secantusdb" not in top_level
