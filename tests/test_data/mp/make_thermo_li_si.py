"""Write ``thermo_Li-Si.json``: Materials Project thermo-endpoint documents for Li-Si.

There is no network on the machines this project is developed on, so the response was
not recorded live: it is assembled, in the exact JSON shape the ``/materials/thermo/``
endpoint returns (``{"data": [ThermoDoc...], "meta": {...}}``, fields ``entries`` and
``thermo_type``), from real MP numbers in ``shared/data/hull`` (README there):
MP elemental reference entries (Li mp-1018134, Si mp-149; MP2020-corrected GGA) and MP
formation energies of Li15Si4 (mp-569849), LiSi (mp-570363) and metastable Li
(mp-567337). Energies: E = sum(elemental references) + formation energy x atoms.
Structures: MP's from the benchmark files; mp-149 and mp-1018134 have none there and
get the diamond Si and bcc Li prototypes (the hull only needs their energies). Run from
the repository root::

    python tests/test_data/mp/make_thermo_li_si.py ../shared/data/hull
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from monty.json import jsanitize
from monty.serialization import loadfn
from pymatgen.entries.computed_entries import ComputedStructureEntry

hull = Path(sys.argv[1])
refs = loadfn(hull / "2023-02-07-mp-elemental-reference-entries.json.gz")
known = {r["material_id"]: r for r in loadfn(hull / "mp_structures_in_target_chemsys.json.gz")}
protos = {r["formula"]: r["structure"] for r in loadfn(hull / "elemental_prototypes.json.gz")}
mu = {el: refs[el].energy_per_atom for el in ("Li", "Si")}

docs = []


def add(material_id, structure, e_form):
    comp = structure.composition
    energy = sum(mu[el.symbol] * n for el, n in comp.items()) + e_form * comp.num_atoms
    entry = ComputedStructureEntry(
        structure,
        energy,
        entry_id=f"{material_id}-GGA",
        parameters={"run_type": "GGA"},
        data={"material_id": material_id, "run_type": "GGA"},
    )
    docs.append(
        {
            "material_id": material_id,
            "thermo_type": "GGA_GGA+U",
            "chemsys": comp.chemical_system,
            "entries": {"GGA": entry.as_dict()},
        }
    )


add("mp-149", protos["Si"], 0.0)
# Li mp-1018134 (3-atom R-3m) has no structure in shared/data: bcc Li stands in for it.
add("mp-1018134", protos["Li"], 0.0)
for mid in ("mp-567337", "mp-569849", "mp-570363"):
    add(mid, known[mid]["structure"], known[mid]["formation_energy_per_atom"])

out = Path(__file__).with_name("thermo_Li-Si.json")
out.write_text(json.dumps(jsanitize({"data": docs, "meta": {"total_doc": len(docs)}}), indent=1))
print(out)
