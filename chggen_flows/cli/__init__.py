"""The ``chggen`` command line (typer).

Each command group lives in its own module and registers itself on the root app in
:mod:`chggen_flows.cli.app`; :func:`main` turns :class:`~chggen_flows.errors.ChggenError`
into a one-line message with a hint and exit code 2.
"""

from __future__ import annotations

import os

# Before numpy/torch are imported: one BLAS thread avoids over-subscription on CPUs.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")


def main() -> None:
    """Entry point of the ``chggen`` console script."""
    from chggen_flows.cli.app import run

    run()
