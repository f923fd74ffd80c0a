"""Fit of per-element atomic volumes, the regression behind the V0 fallback.

The model is additive: a compound's volume per atom is the composition-weighted mean of
per-element volumes, ``V/N = sum_e x_e v_e``, fitted by non-negative least squares
over known structures. The shipped table (``chggen_flows/data/volumes/``) was made
with::

    python -m chggen_flows.core.generation.volume_fit OUT.json CSV.gz [CSV.gz ...]

from the MP-20 (binary/ternary val+test) and MPTS-52 (val+test) CSVs of the shared
data folder (Materials Project structures, CC BY 4.0), deduplicated by material id.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from pymatgen.core import Composition
from scipy.optimize import nnls


def fit_element_volumes(
    compositions: Sequence[Composition], volumes_per_atom: Sequence[float]
) -> dict[str, dict[str, float]]:
    """Per-element volumes (Å^3/atom) by non-negative least squares.

    Parameters
    ----------
    compositions
        Compositions of the known structures.
    volumes_per_atom
        Their cell volume divided by the number of atoms.

    Returns
    -------
    dict
        ``{symbol: {"volume": v_e, "n_structures": count}}`` for every element present.
    """
    symbols = sorted({el.symbol for c in compositions for el in c.elements})
    column = {s: i for i, s in enumerate(symbols)}
    design = np.zeros((len(compositions), len(symbols)))
    for row, composition in enumerate(compositions):
        for element, fraction in composition.fractional_composition.items():
            design[row, column[element.symbol]] = fraction
    solution, _ = nnls(design, np.asarray(volumes_per_atom, dtype=float))
    counts = (design > 0).sum(axis=0)
    return {
        s: {"volume": round(float(solution[i]), 4), "n_structures": int(counts[i])}
        for s, i in column.items()
    }


def _main(out: str, *csv_files: str) -> None:
    import pandas as pd
    from pymatgen.core import Structure

    seen: set[str] = set()
    compositions: list[Composition] = []
    volumes: list[float] = []
    for path in csv_files:
        frame = pd.read_csv(path)
        for material_id, cif in zip(frame["material_id"], frame["cif"], strict=True):
            if material_id in seen:
                continue
            seen.add(material_id)
            structure = Structure.from_str(cif, fmt="cif")
            compositions.append(structure.composition)
            volumes.append(structure.volume / len(structure))
    table = fit_element_volumes(compositions, volumes)
    predicted = np.array(
        [
            sum(table[e.symbol]["volume"] * x for e, x in c.fractional_composition.items())
            for c in compositions
        ]
    )
    relative = np.abs(predicted - np.array(volumes)) / np.array(volumes)
    document = {
        "description": "Per-element atomic volumes (Å^3/atom) of an additive fit V/N = sum_e x_e v_e",
        "sources": [f"{Path(p).parent.name}/{Path(p).name}" for p in csv_files],
        "n_structures": len(volumes),
        "median_relative_error": round(float(np.median(relative)), 4),
        "p90_relative_error": round(float(np.quantile(relative, 0.9)), 4),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "elements": table,
    }
    Path(out).write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    _main(*sys.argv[1:])
