"""Shared helpers of the campaign tests: a tiny score model, tiny specs, worker processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from chggen_flows.settings import Settings

TEST_DATA = Path(__file__).resolve().parents[1] / "test_data" / "campaign"
REFERENCE_CSV = TEST_DATA / "li_si_reference.csv"
REPO = Path(__file__).resolve().parents[2]


def tiny_checkpoint(path: Path) -> Path:
    """An untrained tiny score model for Li and Si (seeded, so runs are reproducible)."""
    import torch

    from chggen_flows.core.model import ScoreModel, ScoreModelConfig, save_score_model

    torch.manual_seed(0)
    model = ScoreModel(ScoreModelConfig.preset("tiny", elements=("Li", "Si")))
    return save_score_model(model, path)


def li3si_seeds(n: int, lattice_seed: int, first_seed: int) -> list[Any]:
    """``n`` candidate seeds of Li3Si (Z = 2) on one lattice, the tiny model's system."""
    from chggen_flows.makers.schemas import CandidateSeed

    return [
        CandidateSeed(
            candidate_id=f"Li3Si-fu2-L000-S{i:03d}",
            composition="Li3Si",
            formula_units=2,
            lattice_index=0,
            sample_index=i,
            lattice_seed=lattice_seed,
            seed=first_seed + i,
        )
        for i in range(n)
    ]


def tiny_spec(checkpoint: Path, **overrides: Any) -> dict[str, Any]:
    """A 4-candidate Li-Si spec (2 batches) with tiny sampler and relaxation settings."""
    spec: dict[str, Any] = {
        "name": "tiny-li-si",
        "compositions": ["Li3Si", "Li2Si"],
        "guests": ["Li"],
        "formula_units": [2],
        "lattices_per_composition": 1,
        "candidates_per_lattice": 2,
        "batch_size": 2,
        "v0": {"source": "value", "value": 20.0},
        "model": {"checkpoint": str(checkpoint), "device": "cpu"},
        "sampler": {"n_levels": 5, "n_corrector": 1},
        "inpaint": {"jump_length": 2, "n_resample": 1},
        "relax": {"max_steps": 3},
        # threshold above every E_d a tiny model can give: the gate always sends some
        "stability": {
            "reference": str(REFERENCE_CSV),
            "dft_threshold": 10.0,
            "dft_max_candidates": 2,
        },
        "seed": 3,
    }
    spec.update(overrides)
    return spec


def write_spec(directory: Path, spec: dict[str, Any], name: str = "spec.yaml") -> Path:
    """Write a spec dict as YAML and return its path."""
    path = directory / name
    path.write_text(yaml.safe_dump(spec))
    return path


def settings_env(settings: Settings) -> dict[str, str]:
    """Environment for a ``chggen`` subprocess using ``settings``' database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHGGEN_")}
    env.update(
        CHGGEN_MONGO_URI=settings.mongo_uri.get_secret_value(),
        CHGGEN_DATABASE=settings.database,
        CHGGEN_LAUNCHPAD_DATABASE=settings.launchpad_database,
        CHGGEN_DATA_DIR=str(settings.data_dir),
        CHGGEN_DEVICE="cpu",
        CHGGEN_NO_PROGRESS="1",
        OPENBLAS_NUM_THREADS="1",
        XDG_CONFIG_HOME=str(settings.data_dir / "xdg-config"),
    )
    return env


def start_worker(settings: Settings, *args: str, log: Path | None = None) -> subprocess.Popen:
    """``chggen run ARGS`` in a subprocess (a real worker process)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    out = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115 (closed with the process)
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "chggen"), "run", *args],
        env=settings_env(settings),
        stdout=out,
        stderr=subprocess.STDOUT,
        cwd=str(settings.data_dir),
    )


def wait_for(predicate, timeout: float, interval: float = 0.5) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds passed."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(interval)
    return False


def fw_states(launchpad, campaign: str) -> dict[int, str]:
    """``{fw_id: state}`` of a campaign's FireWorks."""
    return {
        fw["fw_id"]: fw["state"]
        for fw in launchpad.fireworks.find({"spec.campaign": campaign}, {"fw_id": 1, "state": 1})
    }


def stage_documents(store, campaign: str) -> list[dict]:
    """(stage, batch, uuid) of every StageDocument output of a campaign."""
    store.connect()
    return list(
        store.query(
            {"metadata.campaign": campaign, "output.@class": "StageDocument"},
            properties=["output.stage", "output.batch_id", "output.candidates.candidate_id"],
        )
    )


def li_si_structures() -> dict[str, Any]:
    """Three small Li-Si cells: a symmetric Li3Si (Li3Bi type), a distorted copy (P1)
    and LiSi in a CsCl cell."""
    import numpy as np
    from pymatgen.core import Lattice, Structure

    li3si = Structure.from_spacegroup(
        "Fm-3m",
        Lattice.cubic(6.1),
        ["Si", "Li", "Li"],
        [[0, 0, 0], [0.25, 0.25, 0.25], [0.5, 0.5, 0.5]],
    )
    li3si = li3si.get_primitive_structure()
    distorted = li3si.copy()
    rng = np.random.default_rng(0)
    for i in range(len(distorted)):
        distorted.translate_sites([i], rng.normal(0, 0.25, 3), frac_coords=False)
    lisi = Structure(Lattice.cubic(2.9), ["Li", "Si"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    return {"Li3Si-sym": li3si, "Li3Si-p1": distorted, "LiSi-cscl": lisi}


def populate_campaign(store, campaign: str = "pop-00000001") -> str:
    """A campaign with real symmetry and E_d stage outputs in ``store`` (no LaunchPad).

    Runs the SymmetryMaker and EhullMaker jobs with jobflow on three relaxed-looking
    Li-Si cells plus one candidate rejected earlier, and registers the campaign.
    """
    from datetime import UTC, datetime

    from jobflow import Flow, run_locally

    from chggen_flows.campaign.registry import registry
    from chggen_flows.makers.ehull import EhullMaker
    from chggen_flows.makers.provenance import start_provenance
    from chggen_flows.makers.schemas import CandidateRecord, finish_document
    from chggen_flows.makers.symmetry import SymmetryMaker

    energies = {"Li3Si-sym": -3.00, "Li3Si-p1": -2.60, "LiSi-cscl": -3.70}
    records, structures = [], []
    for cid, structure in li_si_structures().items():
        comp = structure.composition
        records.append(
            CandidateRecord(
                campaign=campaign,
                candidate_id=cid,
                formula=comp.formula,
                reduced_formula=comp.reduced_formula,
                chemsys=comp.chemical_system,
                natoms=len(structure),
                formula_units=1,
                stage="relaxed_inpaint",
                energy_per_atom=energies[cid],
                de_uncond=0.1,
                rmsd_uncond=0.2,
            )
        )
        structures.append(structure)
    rejected = records[0].model_copy(
        update={
            "candidate_id": "Li3Si-rejected",
            "stage": "framework",
            "valid": False,
            "rejected_reason": "framework: no symmetric rung",
        }
    )
    records.append(rejected)
    structures.append(structures[0])
    doc = finish_document(
        "relaxed_inpaint",
        campaign,
        "b0000",
        records,
        structures,
        start_provenance("relaxed_inpaint", {}),
    )
    symmetry = SymmetryMaker().make(doc)
    ehull = EhullMaker(reference=str(REFERENCE_CSV), threshold=0.5).make(
        [symmetry.output], campaign
    )
    flow = Flow([symmetry, ehull])
    flow.update_metadata({"campaign": campaign})
    run_locally(flow, store=store, ensure_success=True)
    registry(store).insert_one(
        {
            "campaign": campaign,
            "name": "pop",
            "chemsys": "Li-Si",
            "mode": "unconditional",
            "submitted": datetime.now(UTC),
            "spec_hash": "0" * 64,
            "n_candidates": 4,
            "n_jobs": 2,
            "n_batches": 1,
            "spec": {},
            "state": "submitted",
        }
    )
    return campaign
