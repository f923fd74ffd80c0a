"""Throughput of host-framework extraction (tolerance ladder) and final classification.

Takes real Materials Project structures that contain a typical guest (Li, Na, Mg, Zn)
from the MPTS-52 validation split, rattles them by 0.1 Å (a relaxed candidate is never
exactly symmetric), and times side by side: the full ladder (``extract_framework``,
the host-symmetrisation step), a single-rung classification at the small tolerance
(``classify_symmetry``, the final step), and the success rate of the ladder.

    OPENBLAS_NUM_THREADS=1 nice python benchmarks/bench_symmetry.py --n 300
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path

import numpy as np

DEFAULT_CSV = Path(__file__).resolve().parents[2] / "shared/data/structures/mpts_52/val.csv.gz"
GUESTS = ("Li", "Na", "Mg", "Zn")


def load_candidates(csv: Path, n: int, seed: int) -> list[tuple[object, list[str]]]:
    """(rattled structure, guests present) pairs with a non-empty host."""
    import pandas as pd
    from pymatgen.core import Structure

    rng = np.random.default_rng(seed)
    frame = pd.read_csv(csv)
    picked = []
    for cif in frame["cif"].iloc[rng.permutation(len(frame))]:
        structure = Structure.from_str(cif, fmt="cif")
        elements = {el.symbol for el in structure.composition.elements}
        guests = [g for g in GUESTS if g in elements]
        if not guests or elements <= set(guests):
            continue
        shifts = rng.normal(size=(len(structure), 3))
        shifts *= 0.1 / np.linalg.norm(shifts, axis=1, keepdims=True)
        for i, shift in enumerate(shifts):
            structure.translate_sites([i], shift, frac_coords=False)
        picked.append((structure, guests))
        if len(picked) == n:
            break
    return picked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from chggen_flows.core.symmetry import classify_symmetry, extract_framework

    candidates = load_candidates(args.csv, args.n, args.seed)
    n_atoms = [len(s) for s, _ in candidates]

    start = time.perf_counter()
    results = [extract_framework(s, guests) for s, guests in candidates]
    ladder_s = time.perf_counter() - start

    start = time.perf_counter()
    infos = [classify_symmetry(s) for s, _ in candidates]
    classify_s = time.perf_counter() - start

    ok = sum(r.ok for r in results)
    rungs = Counter(r.symprec for r in results if r.ok)
    print(
        f"{len(candidates)} rattled (0.1 Å) MPTS-52 structures with guests {GUESTS}, "
        f"{min(n_atoms)}-{max(n_atoms)} atoms (mean {np.mean(n_atoms):.0f})"
    )
    print(
        f"  ladder (extract_framework): {len(candidates) / ladder_s:7.1f} structures/s, "
        f"{ok}/{len(candidates)} symmetric hosts; rung used: "
        + ", ".join(f"{k}: {v}" for k, v in sorted(rungs.items()))
    )
    print(
        f"  classify_symmetry(0.1, 10): {len(candidates) / classify_s:7.1f} structures/s, "
        f"{sum(i.symmetric for i in infos)}/{len(candidates)} symmetric"
    )
    print(f"  ladder / single classification time: {ladder_s / classify_s:.1f}x")


if __name__ == "__main__":
    main()
