"""Does the choice of potential change a campaign's answer? (issue 27)

One set of Li-Si candidates, generated once with the shipped score model (unconditional
generation, no inpainting), is relaxed and ranked by each potential through the same
``BatchRelaxer``, each against its own Li-Si hull (the shipped Li-Si set's structures
relaxed by that potential; the shipped set itself for ``chgnet``). Compared between
potentials: Spearman rank correlation of E_d, overlap of the candidates under 0.1
eV/atom, and which known Li-Si phases each rediscovers (relaxed candidates matched to
the hull's phases with pymatgen's StructureMatcher).

    OPENBLAS_NUM_THREADS=1 nice -n 10 python benchmarks/bench_potential_ranking.py \\
        generate --n-per-composition 8 --out benchmarks/results/DATE/ranking
    ... relax --potentials chgnet chgnet-r2scan sevennet-0 --max-steps 200 --out ...
    ... compare --out ...

Each step writes JSON under ``--out`` (``candidates.json``, ``ranking_<potential>.json``,
``compare.json``), so a cut-short run keeps what it finished.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

# Small cells (6-19 atoms) across the Li-Si line: (formula unit, Z).
COMPOSITIONS = (
    ("LiSi", 4),
    ("Li2Si", 3),
    ("Li3Si", 2),
    ("Li7Si3", 1),
    ("Li12Si7", 1),
    ("LiSi2", 2),
)
THRESHOLD = 0.1  # eV/atom


def generate_candidates(out: Path, n_per: int, n_levels: int, seed: int) -> None:
    from pymatgen.core import Composition

    from chggen_flows.core.generation import GenerationRequest, SamplerSettings, generate
    from chggen_flows.core.model import load_score_model

    requests = [
        GenerationRequest(Composition(formula), z, seed=seed + 1000 * k + i)
        for k, (formula, z) in enumerate(COMPOSITIONS)
        for i in range(n_per)
    ]
    start = time.perf_counter()
    model = load_score_model(device="cpu")
    settings = SamplerSettings(n_levels=n_levels)
    found = generate(requests, model, settings, seed=seed, device="cpu", progress=False)
    rows = [
        {
            "id": f"{c.structure.composition.reduced_formula}-{i:03d}",
            "valid": c.valid,
            "reason": c.reason,
            "structure": c.structure.as_dict(),
        }
        for i, c in enumerate(found)
    ]
    doc = {
        "n_levels": n_levels,
        "seed": seed,
        "compositions": COMPOSITIONS,
        "wall_s": time.perf_counter() - start,
        "candidates": rows,
    }
    (out / "candidates.json").write_text(json.dumps(doc))
    print(
        f"{len(rows)} candidates ({sum(r['valid'] for r in rows)} valid) in {doc['wall_s']:.0f} s"
    )


def hull(potential: str):
    """The Li-Si hull of ``potential``: the shipped Li-Si structures relaxed by it."""
    from monty.serialization import loadfn

    from chggen_flows.core.relax import RelaxSettings
    from chggen_flows.core.stability.references import (
        OfflineReference,
        relaxed_entries,
        shipped_reference_files,
    )

    path = next(p for p in shipped_reference_files() if p.name == "Li-Si.json.gz")
    if potential == "chgnet":
        return OfflineReference(files=[path]), loadfn(path)["entries"]
    entries = loadfn(path)["entries"]
    settings = RelaxSettings(potential=potential, device="cpu", threads=1)
    mine = relaxed_entries(
        [e.structure for e in entries], [e.entry_id for e in entries], settings, progress=False
    )
    return OfflineReference(files=[], extra_entries=mine, potential=potential), mine


def relax_and_rank(out: Path, potential: str, max_steps: int) -> None:
    from pymatgen.analysis.structure_matcher import StructureMatcher
    from pymatgen.core import Structure

    from chggen_flows.core.relax import BatchRelaxer, RelaxSettings
    from chggen_flows.core.stability import compute_e_d

    data = json.loads((out / "candidates.json").read_text())
    rows = [r for r in data["candidates"] if r["valid"]]
    start = time.perf_counter()
    provider, known = hull(potential)
    hull_s = time.perf_counter() - start
    settings = RelaxSettings(potential=potential, device="cpu", threads=1, max_steps=max_steps)
    start = time.perf_counter()
    with BatchRelaxer(settings) as relaxer:
        records = relaxer.relax([Structure.from_dict(r["structure"]) for r in rows], progress=False)
    relax_s = time.perf_counter() - start
    ok = [(row, rec) for row, rec in zip(rows, records, strict=True) if rec.ok]
    ed = compute_e_d(
        [(rec.structure.composition, rec.final_energy_per_atom) for _, rec in ok],
        provider,
        potential=potential,
    )
    matcher = StructureMatcher()
    compounds = [e for e in known if not e.composition.is_element]
    results = {}
    for (row, rec), e in zip(ok, ed, strict=True):
        same = [
            k.entry_id
            for k in compounds
            if k.composition.reduced_formula == rec.structure.composition.reduced_formula
            and matcher.fit(k.structure, rec.structure)
        ]
        results[row["id"]] = {
            "e_d": e.e_d,
            "converged": rec.converged,
            "n_steps": rec.n_steps,
            "matches": same,
        }
    doc = {
        "potential": potential,
        "max_steps": max_steps,
        "hull_s": hull_s,
        "relax_s": relax_s,
        "n_relaxed": len(ok),
        "n_rejected": len(rows) - len(ok),
        "reference": provider.label,
        "results": results,
    }
    (out / f"ranking_{potential}.json").write_text(json.dumps(doc, indent=1))
    below = sum(r["e_d"] < THRESHOLD for r in results.values())
    print(f"{potential}: {len(ok)} relaxed in {relax_s:.0f} s (hull {hull_s:.0f} s), {below} < 0.1")


def compare(out: Path) -> None:
    from scipy.stats import spearmanr

    docs = {
        json.loads(p.read_text())["potential"]: json.loads(p.read_text())
        for p in sorted(out.glob("ranking_*.json"))
    }
    summary: dict = {"per_potential": {}, "pairs": []}
    for name, doc in docs.items():
        res = doc["results"]
        summary["per_potential"][name] = {
            "n_relaxed": doc["n_relaxed"],
            "converged": sum(r["converged"] for r in res.values()),
            "below_0.1": sorted(k for k, r in res.items() if r["e_d"] < THRESHOLD),
            "rediscovered": sorted({m for r in res.values() for m in r["matches"]}),
            "relax_s": doc["relax_s"],
            "max_steps": doc["max_steps"],
        }
    for a, b in itertools.combinations(docs, 2):
        common = sorted(set(docs[a]["results"]) & set(docs[b]["results"]))
        x = [docs[a]["results"][k]["e_d"] for k in common]
        y = [docs[b]["results"][k]["e_d"] for k in common]
        rho = spearmanr(x, y).statistic if len(common) > 2 else float("nan")
        sa = {k for k in common if docs[a]["results"][k]["e_d"] < THRESHOLD}
        sb = {k for k in common if docs[b]["results"][k]["e_d"] < THRESHOLD}
        summary["pairs"].append(
            {
                "a": a,
                "b": b,
                "n": len(common),
                "spearman": float(rho),
                "below_a": len(sa),
                "below_b": len(sb),
                "below_both": len(sa & sb),
                "jaccard": len(sa & sb) / len(sa | sb) if sa | sb else float("nan"),
            }
        )
    (out / "compare.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("generate", "relax", "compare"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--n-per-composition", type=int, default=8)
    parser.add_argument("--n-levels", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--potentials", nargs="+", default=["chgnet", "chgnet-r2scan"])
    parser.add_argument("--max-steps", type=int, default=200)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    import torch

    torch.set_num_threads(1)
    if args.step == "generate":
        generate_candidates(args.out, args.n_per_composition, args.n_levels, args.seed)
    elif args.step == "relax":
        for potential in args.potentials:
            relax_and_rank(args.out, potential, args.max_steps)
    else:
        compare(args.out)


if __name__ == "__main__":
    main()
