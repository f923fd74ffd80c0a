"""Benchmark E_d throughput (cached vs rebuilt phase diagram) and de-duplication.

Usage::

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_stability.py [--n 1000] [--n-dedup 300] \\
        [--n-distinct 150]

1. E_d of ``n`` random Zn-P-S candidates against the shipped offline (CHGNet) hull:
   ``compute_e_d`` with the provider's cached phase diagram vs building a new
   ``PhaseDiagram`` for every candidate (what a per-candidate job would do).
2. De-duplication of ``n_dedup`` structures: the shipped Zn-P-S reference structures,
   each copied several times with small random displacements and energy noise, so
   that StructureMatcher has real work (true duplicates and near misses); compared
   with pymatgen's own ``StructureMatcher.group_structures`` (groups by composition
   only, no energy criterion).
3. De-duplication of ``n_distinct`` random ZnPS3 cells with spread energies (no
   duplicates: the energy criterion spares almost every StructureMatcher call).
"""

from __future__ import annotations

import argparse
import random
import time

from pymatgen.analysis.phase_diagram import PhaseDiagram
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Composition, Lattice, Structure
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


def perturbed_copies(n: int, rng: random.Random) -> list[tuple[str, Structure, float, int]]:
    """The shipped Zn-P-S crystals, copied with small displacements and ±3 meV/atom noise."""
    entries = OfflineCHGNetReference().entries(["Zn", "P", "S"])
    items = []
    for k in range(n):
        entry = entries[k % len(entries)]
        copy = entry.structure.copy()
        copy.perturb(0.02 * rng.random())
        sg = SpacegroupAnalyzer(entry.structure, symprec=0.1).get_space_group_number()
        items.append((f"c{k}", copy, entry.energy_per_atom + rng.uniform(-0.003, 0.003), sg))
    return items


def distinct_candidates(n: int, rng: random.Random) -> list[tuple[str, Structure, float, int]]:
    """Random ZnPS3 cells (2 formula units, ~24 Å^3/atom) with energies spread over
    0.5 eV/atom: one formula, mostly P1, no duplicates, like raw generated candidates."""
    items = []
    for k in range(n):
        lattice = Lattice.from_parameters(
            *(rng.uniform(5.0, 7.0) for _ in range(3)), *(rng.uniform(75, 105) for _ in range(3))
        )
        species = ["Zn"] * 2 + ["P"] * 2 + ["S"] * 6
        structure = Structure(lattice, species, [[rng.random() for _ in range(3)] for _ in species])
        structure.scale_lattice(24.0 * len(structure))
        sg = SpacegroupAnalyzer(structure, symprec=0.1).get_space_group_number()
        items.append((f"r{k}", structure, rng.uniform(-4.5, -4.0), sg))
    return items


def bench_dedup(items: list[tuple[str, Structure, float, int]], what: str) -> None:
    start = time.perf_counter()
    result = deduplicate(items)
    elapsed = time.perf_counter() - start
    start = time.perf_counter()
    groups = StructureMatcher().group_structures([item[1] for item in items])
    t_pmg = time.perf_counter() - start
    n = len(items)
    print(f"De-duplication, {n} structures: {what}")
    print(
        f"  deduplicate (formula + space group + 2 meV/atom, then StructureMatcher): "
        f"{elapsed:7.3f} s ({n / elapsed:7.1f} structures/s); "
        f"{len(result.representatives)} kept, {len(result.duplicate_of)} duplicates"
    )
    print(
        f"  pymatgen StructureMatcher.group_structures (formula only):              "
        f"{t_pmg:7.3f} s ({n / t_pmg:7.1f} structures/s); {len(groups)} groups"
    )
    print(f"  speed-up: {t_pmg / elapsed:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="E_d candidates")
    parser.add_argument("--n-dedup", type=int, default=300, help="structures to de-duplicate")
    parser.add_argument("--n-distinct", type=int, default=150, help="distinct candidates")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    bench_e_d(args.n, rng)
    bench_dedup(perturbed_copies(args.n_dedup, rng), "shipped Zn-P-S crystals, perturbed copies")
    bench_dedup(distinct_candidates(args.n_distinct, rng), "distinct random ZnPS3 candidates")


if __name__ == "__main__":
    main()
