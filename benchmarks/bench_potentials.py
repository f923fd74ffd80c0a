"""Potentials side by side: accuracy against the Materials Project, and speed.

Accuracy (``accuracy``): the known structures of the shared hull data (the structures of
the shipped offline sets: ``hull/mp_structures_in_target_chemsys.json.gz`` with their MP
formation energies and E_hull, the elemental prototypes, and ``hull/known_structures``)
are relaxed with each potential through the same ``BatchRelaxer`` (default settings:
FIRE + cell filter, fmax 0.1 eV/Å, 500 steps). Per system (Zn-P-S, Li-P-S, Li-Si), the
potential's hull of these structures gives each MP record's E_hull, compared with

- MP's own E_hull (against MP's complete hull, which has phases this set lacks), and
- the "same-phases MP hull": MP formation energies of the same records (elements at 0),
  the fair target for a hull of these phases only,

as MAE and as stable/unstable classification at 0 (within 1 meV/atom) and 0.1 eV/atom.
Formation energies (against each potential's own lowest elemental phases) are compared
with MP's. The known Li-Si phases of ``hull/known_structures`` (all on or within a few
meV of MP's hull) are listed with each potential's E_hull.

Speed (``speed``): the same structures, rattled, relaxed a fixed number of FIRE steps
(fmax tiny) by each potential through the same engine and the same threads, in one run:
structures/s and atoms/s.

    OPENBLAS_NUM_THREADS=1 nice -n 10 python benchmarks/bench_potentials.py accuracy \\
        --potentials chgnet chgnet-r2scan --out benchmarks/results/DATE
    ... speed --potentials chgnet chgnet-r2scan sevennet-0 sevennet-l3i5 --steps 20
    ... fused      # CHGNet predict_graph vs one-backward-pass calls, interleaved
    ... table --out benchmarks/results/DATE      # markdown tables from the JSON files

Each potential's accuracy result is its own JSON file (``accuracy_<potential>.json``),
so potentials can run in separate processes and a cut-short run keeps what it did.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

HULL_DIR = Path("/work/shared/data/hull")
SYSTEMS = ("Zn-P-S", "Li-P-S", "Li-Si")
STABLE_TOL = 1e-3  # eV/atom: "on the hull"


def known(hull_dir: Path, max_atoms: int | None) -> dict:
    """The reference structures (primitive cells) by id, with systems and MP data."""
    from chggen_flows.core.stability.build_references import _primitive, reference_structures

    found = reference_structures(hull_dir, SYSTEMS)
    out = {}
    for key, item in sorted(found.items()):
        structure = _primitive(item.structure)
        if max_atoms and len(structure) > max_atoms:
            continue
        out[key] = {"structure": structure, "systems": sorted(item.systems), **item.provenance}
    return out


def relax_all(potential: str, items: dict, threads: int) -> dict:
    """Relax every structure with ``potential``; energies, steps and timings."""
    from chggen_flows.core.relax import BatchRelaxer, RelaxSettings

    relaxer = BatchRelaxer(RelaxSettings(potential=potential, device="cpu", threads=threads))
    ids = list(items)
    start = time.perf_counter()
    records = relaxer.relax([items[i]["structure"] for i in ids], progress=False)
    wall = time.perf_counter() - start
    return {
        "potential": potential,
        "version": relaxer.potential.version,
        "weights_checksum": relaxer.potential.weights_checksum,
        "functional": relaxer.potential.functional,
        "wall_s": wall,
        "records": {
            i: {
                "formula": r.structure.composition.reduced_formula,
                "n_atoms": len(r.structure),
                "energy_per_atom": r.final_energy_per_atom,
                "converged": r.converged,
                "n_steps": r.n_steps,
                "rejected": r.rejected_reason,
            }
            for i, r in zip(ids, records, strict=True)
        },
    }


def hull_metrics(result: dict, items: dict) -> dict:
    """E_hull and formation energies per system, against MP's."""
    from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
    from pymatgen.core import Composition

    out = {}
    recs = result["records"]
    for system in SYSTEMS:
        elements = set(system.split("-"))
        ids = [i for i in recs if system in items[i]["systems"] and recs[i]["rejected"] is None]
        entries = {
            i: PDEntry(
                Composition(recs[i]["formula"]) * 1,
                recs[i]["energy_per_atom"] * Composition(recs[i]["formula"]).num_atoms,
                name=i,
            )
            for i in ids
        }
        diagram = PhaseDiagram(list(entries.values()))
        # MP formation energies of the same phases (elements at 0): the same-phases hull
        mp_ids = [i for i in ids if items[i].get("mp_formation_energy_per_atom") is not None]
        mp_entries = {
            i: PDEntry(
                Composition(recs[i]["formula"]),
                items[i]["mp_formation_energy_per_atom"]
                * Composition(recs[i]["formula"]).num_atoms,
                name=i,
            )
            for i in mp_ids
        }
        elemental = [PDEntry(Composition(el), 0.0) for el in elements]
        mp_diagram = PhaseDiagram(list(mp_entries.values()) + elemental)
        rows = []
        for i in ids:
            e_hull = float(diagram.get_e_above_hull(entries[i], allow_negative=True))
            e_form = float(diagram.get_form_energy_per_atom(entries[i]))
            row = {
                "id": i,
                "formula": recs[i]["formula"],
                "e_hull": e_hull,
                "e_form": e_form,
                "converged": recs[i]["converged"],
            }
            if i in mp_entries:
                row["mp_e_hull"] = items[i]["mp_e_above_hull"]
                row["mp_e_hull_same_phases"] = float(
                    mp_diagram.get_e_above_hull(mp_entries[i], allow_negative=True)
                )
                row["mp_e_form"] = items[i]["mp_formation_energy_per_atom"]
            rows.append(row)
        out[system] = rows
    return out


def summary(rows: list[dict]) -> dict:
    """MAE and classification agreement of a potential's E_hull against MP's."""
    mp = [r for r in rows if "mp_e_hull" in r]

    def classify(values, cut):
        return np.array(values) <= cut

    res = {"n": len(mp)}
    for target in ("mp_e_hull", "mp_e_hull_same_phases"):
        ours = np.array([r["e_hull"] for r in mp])
        theirs = np.array([r[target] for r in mp])
        res[f"mae_{target}"] = float(np.mean(np.abs(ours - theirs)))
        for cut, name in ((STABLE_TOL, "0"), (0.1, "0.1")):
            a, b = classify(ours, cut), classify(theirs, cut)
            res[f"agree_{name}_{target}"] = float(np.mean(a == b))
            tp = int(np.sum(a & b))
            res[f"f1_{name}_{target}"] = (
                float(2 * tp / (np.sum(a) + np.sum(b))) if np.sum(a) + np.sum(b) else float("nan")
            )
    res["mae_e_form"] = float(np.mean([abs(r["e_form"] - r["mp_e_form"]) for r in mp]))
    return res


def run_accuracy(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    items = known(args.hull_dir, args.max_atoms)
    print(f"{len(items)} structures, {sum(len(v['structure']) for v in items.values())} atoms")
    for potential in args.potentials:
        result = relax_all(potential, items, args.threads)
        result["max_atoms"] = args.max_atoms
        result["hulls"] = hull_metrics(result, items)
        result["summary"] = {
            **{s: summary(rows) for s, rows in result["hulls"].items()},
            "all": summary([r for rows in result["hulls"].values() for r in rows]),
        }
        path = args.out / f"accuracy_{potential}.json"
        path.write_text(json.dumps(result, indent=1))
        print(potential, f"{result['wall_s']:.0f} s", json.dumps(result["summary"]["all"]))


def run_speed(args: argparse.Namespace) -> None:
    """Fixed FIRE steps per structure, every potential, the same engine and threads."""
    import torch

    from chggen_flows.core.relax import BatchRelaxer, RelaxSettings

    torch.set_num_threads(args.threads)
    items = known(args.hull_dir, args.max_atoms)
    rng = np.random.default_rng(0)
    structures = []
    for item in list(items.values())[: args.n]:
        s = item["structure"].copy()
        s.perturb(0.05, seed=int(rng.integers(1 << 30)))
        structures.append(s)
    atoms = sum(len(s) for s in structures)
    rows = []
    for potential in args.potentials:
        relaxer = BatchRelaxer(
            RelaxSettings(
                potential=potential,
                device="cpu",
                threads=args.threads,
                fmax=1e-6,
                max_steps=args.steps,
            )
        )
        relaxer.relax(structures[:2], progress=False)  # warm-up (first-call costs)
        relaxer.graph_time = relaxer.forward_time = 0.0
        start, cpu = time.perf_counter(), time.process_time()
        records = relaxer.relax(structures, progress=False)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        calls = sum(r.n_steps + 1 for r in records)
        rows.append(
            {
                "potential": potential,
                "structures": len(structures),
                "atoms": atoms,
                "evaluations": calls,
                "wall_s": wall,
                # one thread: CPU time is what the run cost, whatever else ran beside it
                "cpu_s": cpu,
                "graph_s": relaxer.graph_time,
                "model_s": relaxer.forward_time,
                "structure_steps_per_s": calls / wall,
                "atom_steps_per_s": calls * atoms / len(structures) / wall,
                "structures_per_s_at_100_steps": calls / wall / 100,
                "structure_steps_per_cpu_s": calls / cpu,
                "atom_steps_per_cpu_s": calls * atoms / len(structures) / cpu,
            }
        )
        print(json.dumps(rows[-1]))
    (args.out / f"speed_{'_'.join(args.potentials)}.json").write_text(json.dumps(rows, indent=1))


def run_fused(args: argparse.Namespace) -> None:
    """CHGNet's predict_graph vs fused_forward on the same graphs, calls interleaved.

    Alternating the two in one process, repeated, keeps a loaded machine's drift out of
    the ratio; medians of ``--repeats`` pairs per cell-size group.
    """
    import pandas as pd
    import torch
    from pymatgen.core import Structure

    from chggen_flows.core.relax.potentials import load_potential
    from chggen_flows.core.relax.potentials.chgnet import fused_forward

    torch.set_num_threads(args.threads)
    potential = load_potential("chgnet", "cpu")
    model = potential.model
    frame = pd.read_csv(args.csv, nrows=400)
    cells = [Structure.from_str(c, fmt="cif") for c in frame["cif"]]
    rows = []
    for lo, hi, batch in ((4, 16, 8), (20, 60, 1), (20, 60, 4)):
        chosen = [c for c in cells if lo <= len(c) <= hi][:batch]
        graphs = [model.graph_converter(c) for c in chosen]
        plain, fused = [], []
        for _ in range(args.repeats):
            start = time.perf_counter()
            a = model.predict_graph(graphs, task="efs", batch_size=len(graphs))
            plain.append(time.perf_counter() - start)
            start = time.perf_counter()
            b = fused_forward(model, graphs)
            fused.append(time.perf_counter() - start)
        a = [a] if isinstance(a, dict) else a
        same = all(
            np.array_equal(x["f"], y["f"]) and np.array_equal(x["s"], y["s"])
            for x, y in zip(a, b, strict=True)
        )
        rows.append(
            {
                "atoms": [len(c) for c in chosen],
                "predict_graph_s": float(np.median(plain[1:])),
                "fused_s": float(np.median(fused[1:])),
                "ratio": float(np.median(plain[1:]) / np.median(fused[1:])),
                "bit_identical": same,
            }
        )
        print(json.dumps(rows[-1]))
    (args.out / "fused_calls.json").write_text(json.dumps(rows, indent=1))


def run_table(args: argparse.Namespace) -> None:
    """Markdown tables of every ``accuracy_*.json`` in ``--out``."""
    results = [json.loads(p.read_text()) for p in sorted(args.out.glob("accuracy_*.json"))]
    print(
        "| potential | system | n | E_hull MAE vs MP | vs same-phases MP hull | "
        "agree at 0 | agree at 0.1 | E_form MAE | wall (s) |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for res in results:
        for system in (*SYSTEMS, "all"):
            s = res["summary"][system]
            print(
                f"| {res['potential']} | {system} | {s['n']} | {s['mae_mp_e_hull']:.3f} | "
                f"{s['mae_mp_e_hull_same_phases']:.3f} | "
                f"{s['agree_0_mp_e_hull_same_phases']:.2f} | "
                f"{s['agree_0.1_mp_e_hull_same_phases']:.2f} | {s['mae_e_form']:.3f} | "
                f"{res['wall_s']:.0f} |"
            )
    print()
    known_ids = [r["id"] for r in results[0]["hulls"]["Li-Si"]] if results else []
    print("| Li-Si phase | " + " | ".join(r["potential"] for r in results) + " |")
    print("|---|" + "---:|" * len(results))
    for i in known_ids:
        cells = []
        for res in results:
            row = next((r for r in res["hulls"]["Li-Si"] if r["id"] == i), None)
            cells.append("n/a" if row is None else f"{row['e_hull'] * 1000:.0f}")
        formula = next(r["formula"] for r in results[0]["hulls"]["Li-Si"] if r["id"] == i)
        print(f"| {formula} ({i}) | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["accuracy", "speed", "fused", "table"])
    parser.add_argument("--potentials", nargs="+", default=["chgnet", "chgnet-r2scan"])
    parser.add_argument("--hull-dir", type=Path, default=HULL_DIR)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-atoms", type=int, default=None, help="leave out larger cells")
    parser.add_argument("--n", type=int, default=16, help="speed: structures")
    parser.add_argument("--steps", type=int, default=20, help="speed: FIRE steps each")
    parser.add_argument("--repeats", type=int, default=7, help="fused: call pairs per group")
    parser.add_argument(
        "--csv", type=Path, default=Path("/work/shared/data/structures/mpts_52/val.csv.gz")
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    parts = {"accuracy": run_accuracy, "speed": run_speed, "fused": run_fused, "table": run_table}
    parts[args.part](args)


if __name__ == "__main__":
    main()
