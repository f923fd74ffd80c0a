"""Sampling quality of a score model: clashes and CHGNet relaxation of its structures.

Generates candidates with the full sampler (the authors' 200 levels, M = 5) and, as the
"no model" baseline, puts the same atoms uniformly at random into the same lattices.
For both sets it prints the share of structures with no two atoms closer than 1 Å and,
after CHGNet relaxation (FIRE + cell filter, fmax 0.1 eV/Å), the median energy drop dE,
the median displacement RMSD, the median final energy and the converged share. A
useful model gives fewer clashes and a smaller dE than random positions. The figures
go to the model card (docs/model_card.md).

    OPENBLAS_NUM_THREADS=1 python benchmarks/model_quality.py --num 8
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from pymatgen.core import Composition, Structure

from chggen_flows.core.generation import GenerationRequest, generate
from chggen_flows.core.model import load_score_model
from chggen_flows.core.relax import BatchRelaxer, RelaxSettings

CLASH = 1.0  # Å


def min_distance(structure: Structure) -> float:
    """Shortest interatomic distance, periodic images included (Å)."""
    if len(structure) == 1:
        return min(structure.lattice.abc)
    matrix = structure.distance_matrix + np.eye(len(structure)) * 1e9
    return float(matrix.min())


def random_twin(structure: Structure, rng: np.random.Generator) -> Structure:
    """The same lattice and species with uniformly random fractional positions."""
    return Structure(structure.lattice, structure.species, rng.random((len(structure), 3)))


def summarise(label: str, structures: list[Structure], relaxer: BatchRelaxer) -> None:
    distances = np.array([min_distance(s) for s in structures])
    start = time.perf_counter()
    records = relaxer.relax(structures)
    ok = [r for r in records if r.ok]
    print(
        f"  {label:>13}: no clash (>= {CLASH} Å) {np.mean(distances >= CLASH):5.0%}  "
        f"median min distance {np.median(distances):.2f} Å  relaxed {len(ok)}/{len(records)}  "
        f"median dE {np.median([r.de for r in ok]):.3f} eV/atom  "
        f"median RMSD {np.median([r.rmsd for r in ok]):.2f} Å  "
        f"median E_final {np.median([r.final_energy_per_atom for r in ok]):.3f} eV/atom  "
        f"converged {np.mean([r.converged for r in ok]):.0%}  "
        f"({time.perf_counter() - start:.0f} s relaxing)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--formulas", default="Li3Si:4,ZnPS3:2", help="formula:Z pairs, comma-separated"
    )
    parser.add_argument("--num", type=int, default=8, help="candidates per formula")
    parser.add_argument("--checkpoint", default=None, help="default: the shipped model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-steps", type=int, default=500)
    args = parser.parse_args()

    model = load_score_model(args.checkpoint)
    relaxer = BatchRelaxer(RelaxSettings(max_steps=args.max_steps))
    rng = np.random.default_rng(args.seed)
    for item in args.formulas.split(","):
        formula, z = item.split(":")
        request = GenerationRequest(Composition(formula), int(z))
        start = time.perf_counter()
        candidates = generate([request] * args.num, model, seed=args.seed, device="cpu")
        generated = [c.structure for c in candidates]
        print(
            f"{formula} Z={z}: {args.num} candidates of {len(generated[0])} atoms, "
            f"generated in {time.perf_counter() - start:.0f} s"
        )
        summarise("score model", generated, relaxer)
        summarise("random (no model)", [random_twin(s, rng) for s in generated], relaxer)


if __name__ == "__main__":
    main()
