"""Cross-check of the offline Li-Si hull: CHGNet vs independent DFT, old hull vs new.

For each known Li-Si phase: the CHGNet formation energy and distance to the hull in the
shipped offline set, the GPAW PBE formation energy of the same MP geometry (Oviedo et
al. 2023, via shared/data/hull/known_structures), the MP formation energy where the
shipped entry carries it, and the E_d the same CHGNet energy had against the previous
shipped hull (2026-11-25, Li, Si and Li15Si4 only). Prints a Markdown table
(docs/stability.md) or JSON.

    python benchmarks/hull_crosscheck.py [--json]
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
from pymatgen.core import Composition

from chggen_flows.core.stability import EntriesFileReference, compute_e_d, get_reference

DATA = Path(__file__).parents[1] / "tests" / "test_data" / "references"
PHASES = {
    "LiSi": "mp-795",
    "Li12Si7": "mp-1314",
    "Li7Si3": "mp-1201871",
    "Li13Si4": "mp-672287",
    "Li15Si4": "mp-569849",
    "Li21Si5": "mp-29720",
}


def rows() -> list[dict]:
    """One dict per known Li-Si compound."""
    new = get_reference("offline")
    old = EntriesFileReference(DATA / "Li-Si_2026-11-25.json.gz")
    diagram = new.phase_diagram(["Li", "Si"])
    entries = {e.entry_id: e for e in new.entries(["Li", "Si"])}
    gpaw = {
        Composition(r["formula"]).reduced_formula: float(r["Eform_eV_per_atom"])
        for r in csv.DictReader((DATA / "formation_energies_gpaw_pbe.tsv").open(), delimiter="\t")
    }
    out = []
    for formula, mp_id in PHASES.items():
        entry = entries[mp_id]
        item = [(entry.composition, entry.energy_per_atom)]
        out.append(
            {
                "phase": formula,
                "id": mp_id,
                "x_si": entry.composition.get_atomic_fraction("Si"),
                "e_form_chgnet": diagram.get_form_energy_per_atom(entry),
                "e_above_hull_chgnet": diagram.get_e_above_hull(entry),
                "e_form_gpaw": gpaw.get(formula),
                "e_form_mp": entry.data.get("mp_formation_energy_per_atom"),
                "e_d_old_hull": compute_e_d(item, old)[0].e_d,
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    table = rows()
    both = [(r["e_form_chgnet"], r["e_form_gpaw"]) for r in table if r["e_form_gpaw"] is not None]
    diff = np.array([a - b for a, b in both])
    if args.json:
        print(json.dumps({"rows": table, "mae_vs_gpaw": float(np.abs(diff).mean())}, indent=2))
        return
    print(
        "| phase | id | E_form CHGNet | above hull (CHGNet) | E_form GPAW PBE | CHGNet - GPAW "
        "| E_d vs old hull |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in table:
        gpaw = r["e_form_gpaw"]
        delta = "" if gpaw is None else f"{r['e_form_chgnet'] - gpaw:+.3f}"
        print(
            f"| {r['phase']} | {r['id']} | {r['e_form_chgnet']:+.3f} | "
            f"{r['e_above_hull_chgnet']:.3f} | {'' if gpaw is None else f'{gpaw:+.3f}'} | "
            f"{delta} | {r['e_d_old_hull']:+.3f} |"
        )
    print(
        f"\nMAE CHGNet vs GPAW PBE over {len(diff)} phases: {np.abs(diff).mean():.3f} eV/atom; "
        f"mean signed {diff.mean():+.3f}"
    )


if __name__ == "__main__":
    main()
