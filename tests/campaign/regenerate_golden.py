"""Regenerate ``tests/test_data/campaign/golden_records.json`` (run deliberately only).

Runs the tiny campaign exactly as ``test_golden.py`` does and writes the fields the
golden file has always pinned (pandas records JSON, 10 significant digits). Usage,
from the repository root::

    OPENBLAS_NUM_THREADS=1 python -m tests.campaign.regenerate_golden [write]

Without ``write`` it only prints the new records' key figures.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from jobflow import JobStore, run_locally
from maggma.stores import MemoryStore

from chggen_flows.campaign.build import build_flow
from chggen_flows.campaign.results import load_candidates
from chggen_flows.campaign.spec import CampaignSpec
from tests.campaign.helpers import REFERENCE_CSV, tiny_checkpoint, tiny_spec
from tests.campaign.test_golden import GOLDEN


def main() -> None:
    """Run the tiny campaign and print (or, with ``write``, save) its records."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        checkpoint = tiny_checkpoint(tmp_path / "tiny.pt")
        raw = tiny_spec(checkpoint, stability={"reference": str(REFERENCE_CSV), "dft": False})
        plan = build_flow(CampaignSpec.model_validate(raw), "golden-00000001")
        store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
        run_locally(plan.flow, store=store, ensure_success=True, root_dir=tmp_path)
        frame = load_candidates(store, "golden-00000001")
    old = json.loads(GOLDEN.read_text())
    columns = list(old[0])  # the fields the golden file has always pinned
    new = frame[columns]
    print(new[["candidate_id", "seed", "de_uncond", "rmsd_uncond", "e_d"]].to_string())
    if sys.argv[1:] == ["write"]:
        GOLDEN.write_text(new.to_json(orient="records", indent=1, double_precision=10) + "\n")


if __name__ == "__main__":
    main()
