"""Why the framework stage finds no host: symmetry and local motifs of relaxed candidates.

Generates candidates with a score model (full sampler), relaxes them with CHGNet and, for
each, prints the framework stage's verdict (paper's ladder), the space group spglib finds
for the guest-free host at every rung, the smallest tolerance at which the host has an
inversion centre (a brute-force check independent of spglib: if it is far above the
ladder's top rung, the host is genuinely P1, not a tolerance artefact) and the neighbours
of one element (e.g. P in Zn-P-S: P2S6 units give P with three S and one P). Summaries at
the end. Outputs of 2026-12-07 are in benchmarks/results/2026-12-07/.

    OPENBLAS_NUM_THREADS=1 python benchmarks/framework_failures.py \
        --checkpoint shipped:Zn-P-S --formula ZnP2S6:2 --num 16 --element P
"""

from __future__ import annotations

import argparse
import collections
import itertools

import numpy as np
from pymatgen.core import Composition, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from chggen_flows.core.generation import GenerationRequest, generate
from chggen_flows.core.model import load_score_model
from chggen_flows.core.relax import BatchRelaxer, RelaxSettings
from chggen_flows.core.symmetry import FrameworkSettings, extract_framework

# the eight inversion centres of a cell differ by half lattice vectors
_HALF_SHIFTS = np.array(list(itertools.product((0.0, 0.5), repeat=3)))


def inversion_tolerance(structure: Structure, refine: int = 20) -> float:
    """Smallest largest-displacement (Å) with which an inversion maps the structure onto
    itself, each image to its nearest atom of the same species.

    An inversion that maps atom i exactly onto atom j (same species) has its centre at
    their midpoint, so the midpoints (and their half-lattice shifts) are the starting
    centres; a midpoint is at most twice as far off as the best centre, and the
    ``refine`` best are then moved freely (Nelder-Mead) to the minimum nearby.
    """
    from scipy.optimize import minimize

    frac = structure.frac_coords
    species = np.array([site.species_string for site in structure])
    matrix = structure.lattice.matrix
    masks = [species == element for element in set(species)]

    def worst(centre: np.ndarray) -> float:
        image = 2 * centre - frac
        miss = 0.0
        for mask in masks:
            delta = image[mask][:, None, :] - frac[mask][None, :, :]
            delta -= np.round(delta)
            miss = max(miss, np.linalg.norm(delta @ matrix, axis=-1).min(axis=1).max())
        return float(miss)

    starts = []
    for i, j in itertools.combinations_with_replacement(range(len(structure)), 2):
        if species[i] == species[j]:
            d = frac[j] - frac[i]
            d -= np.round(d)
            starts.extend(frac[i] + d / 2 + _HALF_SHIFTS)
    ranked = sorted(starts, key=worst)[:refine]
    best = worst(ranked[0])
    for start in ranked:
        result = minimize(
            worst, start, method="Nelder-Mead", options={"xatol": 1e-6, "fatol": 1e-6}
        )
        best = min(best, float(result.fun))
    return best


def ladder_groups(structure: Structure, settings: FrameworkSettings) -> list[int | None]:
    """spglib's space-group number at each rung of the ladder (None: no dataset)."""
    groups = []
    for symprec, angle in settings.ladder:
        try:
            groups.append(SpacegroupAnalyzer(structure, symprec, angle).get_space_group_number())
        except ValueError:
            groups.append(None)
    return groups


def environments(structure: Structure, element: str, cutoff: float) -> list[str]:
    """Sorted neighbour symbols within ``cutoff`` of every atom of ``element``."""
    return [
        "".join(sorted(n.species_string for n in structure.get_neighbors(site, cutoff)))
        for site in structure
        if site.species_string == element
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="model file or shipped:SYSTEM")
    parser.add_argument("--formula", default="ZnP2S6:2", help="formula:Z")
    parser.add_argument("--num", type=int, default=16)
    parser.add_argument("--guest", default=None, help="default: most electropositive element")
    parser.add_argument("--element", default="P", help="element whose neighbours are counted")
    parser.add_argument("--cutoff", type=float, default=2.5, help="neighbour cutoff (Å)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()

    formula, z = args.formula.split(":")
    composition = Composition(formula)
    guest = args.guest or min(composition.elements, key=lambda el: el.X).symbol
    model = load_score_model(args.checkpoint, device="cpu")
    request = GenerationRequest(composition, int(z))
    candidates = generate([request] * args.num, model, seed=args.seed, device="cpu")
    relaxer = BatchRelaxer(RelaxSettings(max_steps=500, threads=args.threads))
    records = relaxer.relax([c.structure for c in candidates])
    settings = FrameworkSettings()
    verdicts: collections.Counter[str] = collections.Counter()
    motifs: collections.Counter[str] = collections.Counter()
    tolerances = []
    for index, record in enumerate(records):
        if not record.ok:
            verdicts["not relaxed"] += 1
            continue
        result = extract_framework(record.structure, [guest])
        host = record.structure.copy()
        host.remove_species([guest])
        tolerance = inversion_tolerance(host)
        tolerances.append(tolerance)
        motifs.update(environments(record.structure, args.element, args.cutoff))
        verdict = result.spacegroup_symbol if result.ok else result.reason.rsplit(": ", 1)[-1]
        verdicts["host found" if result.ok else verdict] += 1
        print(
            f"{index:3d}: {verdict}; host groups per rung {ladder_groups(host, settings)}; "
            f"host inversion needs {tolerance:.2f} Å",
            flush=True,
        )
    print(f"verdicts: {dict(verdicts)}")
    if tolerances:
        print(
            f"host inversion tolerance: median {np.median(tolerances):.2f} Å, "
            f"min {min(tolerances):.2f} Å (ladder's top rung: {settings.ladder[-1][0]} Å)"
        )
    total = sum(motifs.values())
    print(
        f"{args.element} neighbours within {args.cutoff} Å: "
        + ", ".join(f"{k or '-'} {v / total:.0%}" for k, v in motifs.most_common(8))
    )


if __name__ == "__main__":
    main()
