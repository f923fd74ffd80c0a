"""Batched CHGNet relaxation vs CHGNet's StructOptimizer one structure at a time.

Relaxes the same rattled Materials Project structures (20-60 atoms, from the MPTS-52
validation split) three ways, each in a child process so its peak memory (max RSS) is
its own: ``BatchRelaxer``; CHGNet's ``StructOptimizer`` one structure at a time with the
same model and thread settings; and ``StructOptimizer`` as the authors ran it (plain
``CHGNet.load()``, no thread settings). Prints wall times, their ratios, the agreement
of the final energies, and how close the batched relaxation is to the cost of its bare
CHGNet calls (graph building and forward/backward timed inside the run).

    OPENBLAS_NUM_THREADS=1 nice python benchmarks/bench_relax.py --n 32 --steps 100

All variants get the same step budget (``--steps``; the authors' 500 makes the
one-at-a-time run take very long on a shared 2-core machine).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")
DEFAULT_CSV = Path(__file__).resolve().parents[2] / "shared/data/structures/mpts_52/val.csv.gz"


def load_structures(csv: Path, n: int, seed: int) -> list:
    """``n`` structures of 20-60 atoms, each rattled by 0.1 Å and expanded by 3%."""
    import pandas as pd
    from pymatgen.core import Structure

    rng = np.random.default_rng(seed)
    frame = pd.read_csv(csv)
    picked = []
    for cif in frame["cif"].iloc[rng.permutation(len(frame))]:
        structure = Structure.from_str(cif, fmt="cif")
        if 20 <= len(structure) <= 60:
            shifts = rng.normal(size=(len(structure), 3))
            shifts *= 0.1 / np.linalg.norm(shifts, axis=1, keepdims=True)
            for i, shift in enumerate(shifts):
                structure.translate_sites([i], shift, frac_coords=False)
            structure.scale_lattice(structure.volume * 1.03)
            picked.append(structure)
        if len(picked) == n:
            return picked
    raise SystemExit(f"only {len(picked)} structures of 20-60 atoms in {csv}")


def forward_sweep(model, structures: list) -> dict:
    """Seconds for one energy+force+stress CHGNet pass over all structures, per batch size."""
    graphs = [model.graph_converter(s) for s in structures]
    model.predict_graph(graphs[:2], task="efs", batch_size=2)  # warm-up
    times, cpu = {}, {}
    for size in (1, 2, 4, 8, 16, 32):
        start, start_cpu = time.perf_counter(), time.process_time()
        model.predict_graph(graphs, task="efs", batch_size=size)
        times[size] = time.perf_counter() - start
        cpu[size] = time.process_time() - start_cpu
    return {"variant": "sweep", "times": times, "cpu": cpu}


def relax_one_by_one(optimizer, structures: list, steps: int) -> tuple[list, list]:
    """Final energies (eV/atom) and steps of StructOptimizer runs, one structure each."""
    energies, counts = [], []
    for structure in structures:
        trajectory = optimizer.relax(structure, steps=steps, fmax=0.1, verbose=False)["trajectory"]
        energies.append(float(trajectory.energies[-1]) / len(structure))
        counts.append(len(trajectory.energies) - 2)
    return energies, counts


def variant_result(variant: str, start: tuple[float, float], structures: list, **fields) -> dict:
    """Timings since ``start`` (wall, CPU), peak memory and thread count of a variant."""
    import torch

    return {
        "variant": variant,
        "wall_s": time.perf_counter() - start[0],
        "cpu_s": time.process_time() - start[1],
        "n_atoms": [len(s) for s in structures],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "torch_threads": torch.get_num_threads(),
        **fields,
    }


def run_authors(args: argparse.Namespace) -> dict:
    """The authors' set-up: CHGNet's StructOptimizer with the library's default threads."""
    from chgnet.model import CHGNet, StructOptimizer

    structures = load_structures(args.csv, args.n, args.seed)
    optimizer = StructOptimizer(model=CHGNet.load(verbose=False), use_device=args.device)
    start = time.perf_counter(), time.process_time()
    energies, steps = relax_one_by_one(optimizer, structures, args.steps)
    return variant_result(
        "authors_defaults",
        start,
        structures,
        graph_s=float("nan"),
        forward_s=float("nan"),
        energies=energies,
        steps=steps,
        device=args.device,
    )


def run_variant(variant: str, args: argparse.Namespace) -> dict:
    """Relax with one variant in this process; returns timings and final energies."""
    from chggen_flows.core.relax import BatchRelaxer, RelaxSettings

    if variant == "authors_defaults":
        return run_authors(args)
    structures = load_structures(args.csv, args.n, args.seed)
    relaxer = BatchRelaxer(
        RelaxSettings(
            max_steps=args.steps,
            device=args.device,
            batch_size=args.batch_size,
            threads=args.threads,
        )
    )
    if variant == "sweep":
        return forward_sweep(relaxer.model, structures)
    start = time.perf_counter(), time.process_time()
    if variant == "batched":
        records = relaxer.relax(structures, progress=False)
        energies = [r.final_energy_per_atom for r in records]
        steps = [r.n_steps for r in records]
    else:
        from chgnet.model import StructOptimizer

        model = relaxer.model
        predict_graph = model.predict_graph

        def timed_predict_graph(*a, **kw):  # time StructOptimizer's forward calls too
            t0 = time.perf_counter()
            out = predict_graph(*a, **kw)
            relaxer.forward_time += time.perf_counter() - t0
            return out

        model.predict_graph = timed_predict_graph
        optimizer = StructOptimizer(model=model, use_device=str(relaxer.device))
        energies, steps = relax_one_by_one(optimizer, structures, args.steps)
    return variant_result(
        variant,
        start,
        structures,
        graph_s=relaxer.graph_time,
        forward_s=relaxer.forward_time,
        energies=energies,
        steps=steps,
        device=str(relaxer.device),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--batch-size", type=int, default=None, help="default: automatic")
    parser.add_argument(
        "--variant",
        choices=["batched", "struct_optimizer", "authors_defaults", "sweep"],
        help=argparse.SUPPRESS,
    )
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args.variant, args)))
        return

    results = {}
    # The authors' variant runs without this library's thread settings (no
    # OPENBLAS_NUM_THREADS=1, torch's default pool), as their scripts did.
    plain_env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    for variant in ("struct_optimizer", "batched", "authors_defaults"):
        cmd = [sys.executable, __file__, *sys.argv[1:], "--variant", variant]
        env = plain_env if variant == "authors_defaults" else None
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
        results[variant] = json.loads(out.strip().splitlines()[-1])
    cmd = [sys.executable, __file__, *sys.argv[1:], "--variant", "sweep"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    sweep = json.loads(out.strip().splitlines()[-1])
    ref, bat, authors = (
        results["struct_optimizer"],
        results["batched"],
        results["authors_defaults"],
    )
    diff = np.abs(np.array(bat["energies"]) - np.array(ref["energies"]))
    import torch

    from chggen_flows.core.relax import auto_batch_size

    size = args.batch_size or auto_batch_size(bat["n_atoms"], torch.device(bat["device"]))
    print(
        f"{args.n} structures, {min(bat['n_atoms'])}-{max(bat['n_atoms'])} atoms "
        f"(mean {np.mean(bat['n_atoms']):.0f}), <= {args.steps} steps, {bat['device']}, "
        f"batch size {size}"
    )
    for r in (ref, bat):
        print(
            f"  {r['variant']:>16}: wall {r['wall_s']:8.1f} s  CPU {r['cpu_s']:8.1f} s  "
            f"steps {sum(r['steps']):6d}  "
            f"graphs {r['graph_s'] or float('nan'):6.1f} s  forward {r['forward_s']:7.1f} s  "
            f"peak RSS {r['peak_rss_mb']:6.0f} MB"
        )
    print(
        f"  {'authors_defaults':>16}: wall {authors['wall_s']:8.1f} s  CPU "
        f"{authors['cpu_s']:8.1f} s  steps {sum(authors['steps']):6d}  torch threads "
        f"{authors['torch_threads']}, BLAS threads default  peak RSS "
        f"{authors['peak_rss_mb']:6.0f} MB"
    )
    print(
        f"  speed-up (StructOptimizer / batched, same thread settings): wall "
        f"{ref['wall_s'] / bat['wall_s']:.2f}x, CPU time {ref['cpu_s'] / bat['cpu_s']:.2f}x"
    )
    print(
        f"  speed-up (authors' defaults / batched): wall {authors['wall_s'] / bat['wall_s']:.2f}x,"
        f" CPU time {authors['cpu_s'] / bat['cpu_s']:.2f}x"
    )
    print(
        f"  batched wall / its CHGNet forward time: {bat['wall_s'] / bat['forward_s']:.2f}; "
        f"/ (graphs + forward): {bat['wall_s'] / (bat['graph_s'] + bat['forward_s']):.2f}"
    )
    print(
        f"  |E_batched - E_StructOptimizer| eV/atom: median {np.median(diff):.1e}, "
        f"max {diff.max():.1e}"
    )
    print(
        "  bare CHGNet efs pass over all structures, speed-up vs batch size 1 (wall / CPU): "
        + ", ".join(
            f"{b}: {sweep['times']['1'] / t:.2f}x / {sweep['cpu']['1'] / sweep['cpu'][b]:.2f}x"
            for b, t in sweep["times"].items()
        )
    )


if __name__ == "__main__":
    main()
