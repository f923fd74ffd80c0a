"""HTML/PNG reports of campaigns: the paper's figures from the candidates table.

``build_report(frame, out_dir)`` takes the frame of
``chggen_flows.campaign.results.load_candidates`` (or any frame with its columns) and
writes ``report.html`` (self-contained), ``summary.json``, ``figures/*.png`` and
``cifs/*.cif``; ``gather(frame)`` gives the numbers alone.
"""

from __future__ import annotations

from chggen_flows.report.build import ReportResult, StructureLoader, build_report
from chggen_flows.report.data import ReportSummary, gather

__all__ = [
    "ReportResult",
    "ReportSummary",
    "StructureLoader",
    "build_report",
    "gather",
]
