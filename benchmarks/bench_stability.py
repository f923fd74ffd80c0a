"""Benchmark E_d throughput (cached vs rebuilt phase diagram) and de-duplication.

Usage::

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_stability.py [--n 1000] [--n-dedup 300]

1. E_d of ``n`` random Zn-P-S candidates against the shipped offline (CHGNet) hull:
   ``compute_e_d`` with the provider's cached phase diagram vs building a new
   ``PhaseDiagram`` for every candidate (what a per-candidate job would do).
2. De-duplication of ``n_dedup`` structures: the shipped Zn-P-S reference structures,
   each copied several times with small random displacements and energy noise, so
   that StructureMatcher has real work (true duplicates and near misses); compared
   with pymatgen's own ``StructureMatcher.group_structures`` (groups by composition
   only, no energy criterion).
"""

from __future__ import annotations

import argparse
import random
import time

from pymatgen.analysis.phase_diagram import PhaseDiagram
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Composition
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from chggen_flows.core.stability import compute_e_d, deduplicate, get_reference
from chggen_flows.core.stability.references import OfflineCHGNetReference


def random_candidates(n: int, rng: random.Random) -> list[tuple[Composition, float]]:
    """Random Zn-P-S compositions with energies near the hull's range (eV/atom)."""
    items = []
    for _ in range(n):
        counts = {el: rng.randint(0, 6) for el in ("Zn", "P", "S")}
        if not any(counts.values()):
            counts["S"] = 1
        items.append((Composition(counts), rng.uniform(-5.0, -3.5)))
    return items


def bench_e_d(n: int, rng: random.Random) -> None:
    items = random_candidates(n, rng)
    cached = get_reference("offline")
    start = time.perf_counter()
    records = compute_e_d(items, cached)
    t_cached = time.perf_counter() - start

    entries = OfflineCHGNetReference().entries(["Zn", "P", "S"])
    start = time.perf_counter()
    rebuilt = []
    for comp, energy in items:
        diagram = PhaseDiagram(entries)  # per candidate, as without the provider's cache
        rebuilt.append(energy - diagram.get_hull_energy_per_atom(comp))
    t_rebuilt = time.perf_counter() - start
    worst = max(abs(r.e_d - e) for r, e in zip(records, rebuilt, strict=True))
    print(f"E_d, {n} Zn-P-S candidates vs {len(entries)} CHGNet reference entries")
    print(f"  cached phase diagram : {t_cached:8.3f} s  ({n / t_cached:9.1f} candidates/s)")
    print(f"  rebuilt per candidate: {t_rebuilt:8.3f} s  ({n / t_rebuilt:9.1f} candidates/s)")
    print(
        f"  speed-up (rebuilt / cached): {t_rebuilt / t_cached:.1f}x; max |dE_d| {worst:.1e} eV/atom"
    )


def bench_dedup(n: int, rng: random.Random) -> None:
    entries = OfflineCHGNetReference().entries(["Zn", "P", "S"])
    base = [(e.structure, e.energy_per_atom) for e in entries]
    items = []
    for k in range(n):
        structure, energy = base[k % len(base)]
        copy = structure.copy()
        copy.perturb(0.02 * rng.random())
        sg = SpacegroupAnalyzer(structure, symprec=0.1).get_space_group_number()
        items.append((f"c{k}", copy, energy + rng.uniform(-0.003, 0.003), sg))
    start = time.perf_counter()
    result = deduplicate(items)
    elapsed = time.perf_counter() - start
    start = time.perf_counter()
    groups = StructureMatcher().group_structures([item[1] for item in items])
    t_pmg = time.perf_counter() - start
    print(f"De-duplication, {n} structures ({len(base)} distinct crystals, perturbed copies)")
    print(
        f"  deduplicate (composition + space group + energy, then StructureMatcher): "
        f"{elapsed:7.3f} s ({n / elapsed:7.1f} structures/s); "
        f"{len(result.representatives)} kept, {len(result.duplicate_of)} duplicates"
    )
    print(
        f"  pymatgen StructureMatcher.group_structures (composition only):          "
        f"{t_pmg:7.3f} s ({n / t_pmg:7.1f} structures/s); {len(groups)} groups"
    )
    print(f"  speed-up: {t_pmg / elapsed:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="E_d candidates")
    parser.add_argument("--n-dedup", type=int, default=300, help="structures to de-duplicate")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    bench_e_d(args.n, rng)
    bench_dedup(args.n_dedup, rng)


if __name__ == "__main__":
    main()
