"""Recompute the shipped offline reference sets (CHGNet-relaxed known structures).

Run once per CHGNet model change::

    python -m chggen_flows.core.stability.build_references \\
        --hull-dir ../shared/data/hull --out chggen_flows/data/references

Inputs (both in ``--hull-dir``, see its README for provenance and licences):
``mp_structures_in_target_chemsys.json.gz`` (43 records of known Materials Project
structures of Zn-P-S, Li-Si and Li-P-S) and ``elemental_prototypes.json.gz`` (diamond
Si, hcp Zn, bcc Li built from experimental lattice constants). Every distinct structure
is relaxed once with CHGNet and one gzipped JSON per chemical system is written.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from monty.serialization import loadfn
from pymatgen.core import Structure

from chggen_flows.core.stability.references import atomic_dump, chgnet_entries

SYSTEMS = ("Li-Si", "Zn-P-S", "Li-P-S")
KNOWN_FILE = "mp_structures_in_target_chemsys.json.gz"
PROTOTYPE_FILE = "elemental_prototypes.json.gz"
LICENCE = (
    "Structures: Materials Project (CC BY 4.0) via the MP-20 / MPTS-52 benchmark files "
    "(CDVAE, MIT; DiffCSP / WyckoffTransformer, Apache-2.0); elemental prototypes built "
    "from textbook lattice constants. Energies: computed here with CHGNet (BSD-3-Clause)."
)


def reference_structures(hull_dir: Path) -> dict[str, dict[str, Any]]:
    """Distinct known structures by id, with the systems they belong to and provenance."""
    found: dict[str, dict[str, Any]] = {}
    for record in loadfn(hull_dir / KNOWN_FILE):
        item = found.setdefault(
            record["material_id"],
            {
                "structure": record["structure"],
                "systems": set(),
                "source": f"{KNOWN_FILE} ({record['source']})",
                "mp_formation_energy_per_atom": record["formation_energy_per_atom"],
                "mp_e_above_hull": record["e_above_hull"],
            },
        )
        item["systems"].add(record["chemsys_target"])
    for record in loadfn(hull_dir / PROTOTYPE_FILE):
        structure: Structure = record["structure"]
        element = structure.composition.elements[0].symbol
        found[f"prototype-{element}"] = {
            "structure": structure,
            "systems": {s for s in SYSTEMS if element in s.split("-")},
            "source": f"{PROTOTYPE_FILE}: {record['description']}",
        }
    return found


def build(hull_dir: Path, out_dir: Path, systems: Sequence[str] = SYSTEMS) -> list[Path]:
    """Relax every reference structure once and write one reference set per system."""
    import chgnet

    known = reference_structures(hull_dir)
    ids = sorted(i for i, item in known.items() if item["systems"] & set(systems))
    entries = chgnet_entries([known[i]["structure"] for i in ids], ids)
    for entry in entries:
        provenance = {
            k: v for k, v in known[entry.entry_id].items() if k not in ("structure", "systems")
        }
        entry.data.update(provenance)
    written = []
    for system in systems:
        path = out_dir / f"{system}.json.gz"
        atomic_dump(
            {
                "chemsys": system,
                "functional": "GGA_GGA+U",
                "energies": f"CHGNet {chgnet.__version__} pretrained, relaxed with "
                "chggen_flows.core.relax.BatchRelaxer (default RelaxSettings)",
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "command": "python -m chggen_flows.core.stability.build_references",
                "licence": LICENCE,
                "entries": [e for e in entries if system in known[e.entry_id]["systems"]],
            },
            path,
        )
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hull-dir", type=Path, required=True, help="shared/data/hull")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS), help="chemical systems")
    args = parser.parse_args(argv)
    for path in build(args.hull_dir, args.out, args.systems):
        print(path)


if __name__ == "__main__":
    main()
