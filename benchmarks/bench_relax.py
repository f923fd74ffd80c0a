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


def load_structures(csv: Path, n: int, seed: int, atoms: tuple[int, int] = (20, 60)) -> list:
    """``n`` structures of ``atoms`` (default 20-60) atoms, each rattled by 0.1 Å and
    expanded by 3%."""
    import pandas as pd
    from pymatgen.core import Structure

    rng = np.random.default_rng(seed)
    frame = pd.read_csv(csv)
    picked = []
    for cif in frame["cif"].iloc[rng.permutation(len(frame))]:
        structure = Structure.from_str(cif, fmt="cif")
        if atoms[0] <= len(structure) <= atoms[1]:
            shifts = rng.normal(size=(len(structure), 3))
            shifts *= 0.1 / np.linalg.norm(shifts, axis=1, keepdims=True)
            for i, shift in enumerate(shifts):
                structure.translate_sites([i], shift, frac_coords=False)
            structure.scale_lattice(structure.volume * 1.03)
            picked.append(structure)
        if len(picked) == n:
            return picked
    raise SystemExit(f"only {len(picked)} structures of {atoms[0]}-{atoms[1]} atoms in {csv}")


def _sync(device) -> None:
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def forward_sweep(
    relaxer, structures: list, batches: list[int], workers: int, forward: bool = True
) -> dict:
    """Per structures per call: graph building (in-process, pool), one efs call, memory.

    Times are the best of two repeats (the machine's load moves single runs); the
    graph times are what the relaxing process spends (building, or sending frames and
    receiving arrays).
    """
    import torch

    from chggen_flows.core.relax.graphs import GraphBuilder, frame_of

    model, device = relaxer.model, relaxer.device
    cuda = device.type == "cuda"
    pool = GraphBuilder(model.graph_converter, workers) if workers > 0 else None
    serial = GraphBuilder(model.graph_converter, 0)
    rows = []
    warm = serial.build(structures[:2])
    model.predict_graph(warm, task="efs", batch_size=2)  # warm-up
    if pool is not None:
        pool.build(structures[:2])  # start the workers
    for size in batches:
        chosen = [structures[i % len(structures)] for i in range(size)]
        frames = [frame_of(s) for s in chosen]
        row: dict = {"batch": size, "atoms": sum(len(s) for s in chosen)}
        best = float("inf")
        for _ in range(2):
            start = time.perf_counter()
            graphs = serial.build_frames(frames)
            best = min(best, time.perf_counter() - start)
        row["graph_serial_s"] = best
        if pool is not None:
            best, best_cpu = float("inf"), float("inf")
            for _ in range(2):
                start, start_cpu = time.perf_counter(), time.process_time()
                pool.build_frames(frames)
                best = min(best, time.perf_counter() - start)
                best_cpu = min(best_cpu, time.process_time() - start_cpu)
            # wall: until the graphs are back; CPU: what the relaxing process itself
            # spends (frames out, arrays in, CrystalGraph objects), the rest is the
            # workers' and overlaps CHGNet's call when pipelined
            row["graph_pool_s"], row["graph_pool_parent_cpu_s"] = best, best_cpu
        if not forward:
            rows.append(row)
            continue
        best, best_cpu = float("inf"), float("inf")
        for _ in range(2):
            if cuda:
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(device)
                before = torch.cuda.memory_allocated(device)
            _sync(device)
            start, start_cpu = time.perf_counter(), time.process_time()
            model.predict_graph(graphs, task="efs", batch_size=size)
            _sync(device)
            best = min(best, time.perf_counter() - start)
            best_cpu = min(best_cpu, time.process_time() - start_cpu)
        row["forward_s"], row["forward_cpu_s"] = best, best_cpu
        if cuda:
            peak = torch.cuda.max_memory_allocated(device) - before
            row["peak_gpu_mib"] = peak / 2**20
            row["bytes_per_atom"] = peak / row["atoms"]
        rows.append(row)
    if pool is not None:
        pool.close()
    return {"variant": "sweep", "device": str(device), "workers": workers, "rows": rows}


def print_sweep(sweep: dict) -> None:
    """The sweep as a table: graph time per call, its share of a step, forward time."""
    workers = sweep["workers"]
    print(
        f"  one efs call per batch size ({sweep['device']}; graphs in-process"
        + (f" and with {workers} worker(s))" if workers else ")")
    )
    head = "   batch  atoms  graphs in-proc (s)  share"
    if workers:
        head += "  graphs pool (s)  share  pool, parent CPU (s)"
    forward = all("forward_s" in r for r in sweep["rows"])
    if forward:
        head += "  forward (s)  atoms/s (forward)"
    else:
        head = (
            head.replace("  share", "")
            + "  ms/structure in-proc"
            + (", pool wall, pool parent CPU" if workers else "")
        )
    if any("peak_gpu_mib" in r for r in sweep["rows"]):
        head += "  peak GPU (MiB)  kB/atom"
    print(head)
    for r in sweep["rows"]:
        if not forward:
            per = [r["graph_serial_s"]] + (
                [r["graph_pool_s"], r["graph_pool_parent_cpu_s"]] if workers else []
            )
            print(
                f"  {r['batch']:6d} {r['atoms']:6d}  {r['graph_serial_s']:18.4f}"
                + (
                    f"  {r['graph_pool_s']:15.4f}  {r['graph_pool_parent_cpu_s']:20.4f}"
                    if workers
                    else ""
                )
                + "  "
                + " / ".join(f"{1e3 * t / r['batch']:.3f}" for t in per)
            )
            continue
        line = (
            f"  {r['batch']:6d} {r['atoms']:6d}  {r['graph_serial_s']:18.4f}"
            f"  {r['graph_serial_s'] / (r['graph_serial_s'] + r['forward_s']):5.0%}"
        )
        if workers:
            line += (
                f"  {r['graph_pool_s']:15.4f}"
                f"  {r['graph_pool_s'] / (r['graph_pool_s'] + r['forward_s']):5.0%}"
                f"  {r['graph_pool_parent_cpu_s']:20.4f}"
            )
        line += f"  {r['forward_s']:11.4f}  {r['atoms'] / r['forward_s']:17.0f}"
        if "peak_gpu_mib" in r:
            line += f"  {r['peak_gpu_mib']:14.1f}  {r['bytes_per_atom'] / 1e3:7.1f}"
        print(line)


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

    structures = load_structures(args.csv, args.n, args.seed, args.atoms)
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
    structures = load_structures(args.csv, args.n, args.seed, args.atoms)
    relaxer = BatchRelaxer(
        RelaxSettings(
            max_steps=args.steps,
            device=args.device,
            batch_size=args.batch_size,
            threads=args.threads,
            graph_workers=args.graph_workers,
        )
    )
    if variant == "sweep":
        return forward_sweep(
            relaxer, structures, args.batches, relaxer.graphs.workers, not args.graphs_only
        )
    start = time.perf_counter(), time.process_time()
    if variant == "batched":
        if relaxer.graphs.workers:  # start the workers first: seconds, once per relaxer
            relaxer.predict_energies(structures[:2])
            relaxer.graph_time = relaxer.forward_time = 0.0
        _sync(relaxer.device)
        start = time.perf_counter(), time.process_time()
        records = relaxer.relax(structures, progress=False)
        _sync(relaxer.device)
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
        graph_workers=relaxer.graphs.workers,
        atoms_per_call=relaxer.atoms_per_call,
        out_of_memory_retries=relaxer.out_of_memory_retries,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--atoms",
        type=lambda text: tuple(int(a) for a in text.split("-")),
        default=(20, 60),
        help="range of cell sizes, e.g. 4-16 (campaign-sized cells); default 20-60",
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--batch-size", type=int, default=None, help="default: automatic")
    parser.add_argument(
        "--graph-workers", type=int, default=None, help="graph processes; default: automatic"
    )
    parser.add_argument(
        "--batches",
        type=lambda text: [int(b) for b in text.split(",")],
        default=[1, 2, 4, 8, 16, 32],
        help="structures per call in the sweep, comma-separated (e.g. 1,8,32,128,512)",
    )
    parser.add_argument("--only", choices=["compare", "sweep"], default=None)
    parser.add_argument(
        "--skip-authors",
        action="store_true",
        help="compare: leave out the authors' set-up (the slowest variant)",
    )
    parser.add_argument(
        "--graphs-only", action="store_true", help="sweep: time graph building, no CHGNet calls"
    )
    parser.add_argument(
        "--variant",
        choices=["batched", "struct_optimizer", "authors_defaults", "sweep"],
        help=argparse.SUPPRESS,
    )
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args.variant, args)))
        return

    if args.only != "sweep":
        compare(args)
    if args.only != "compare":
        cmd = [sys.executable, __file__, *sys.argv[1:], "--variant", "sweep"]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        print_sweep(json.loads(out.strip().splitlines()[-1]))


def compare(args: argparse.Namespace) -> None:
    """The three relaxations, each in its own process, and their figures."""
    results = {}
    # The authors' variant runs without this library's thread settings (no
    # OPENBLAS_NUM_THREADS=1, torch's default pool), as their scripts did.
    plain_env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    variants = ("struct_optimizer", "batched") + (
        () if args.skip_authors else ("authors_defaults",)
    )
    for variant in variants:
        cmd = [sys.executable, __file__, *sys.argv[1:], "--variant", variant]
        env = plain_env if variant == "authors_defaults" else None
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
        results[variant] = json.loads(out.strip().splitlines()[-1])
    ref, bat, authors = (
        results["struct_optimizer"],
        results["batched"],
        results.get("authors_defaults"),
    )
    diff = np.abs(np.array(bat["energies"]) - np.array(ref["energies"]))
    import torch

    from chggen_flows.core.relax import auto_batch_size

    size = args.batch_size or auto_batch_size(
        bat["n_atoms"], torch.device(bat["device"]), bat["atoms_per_call"]
    )
    print(
        f"{args.n} structures, {min(bat['n_atoms'])}-{max(bat['n_atoms'])} atoms "
        f"(mean {np.mean(bat['n_atoms']):.0f}), <= {args.steps} steps, {bat['device']}, "
        f"batch size {size}, graph workers {bat['graph_workers']}"
        + (f", measured atoms per call {bat['atoms_per_call']}" if bat["atoms_per_call"] else "")
        + (
            f", out-of-memory retries {bat['out_of_memory_retries']}"
            if bat["out_of_memory_retries"]
            else ""
        )
    )
    for r in (ref, bat):
        print(
            f"  {r['variant']:>16}: wall {r['wall_s']:8.1f} s  CPU {r['cpu_s']:8.1f} s  "
            f"steps {sum(r['steps']):6d}  "
            f"graphs {r['graph_s'] or float('nan'):6.1f} s  forward {r['forward_s']:7.1f} s  "
            f"peak RSS {r['peak_rss_mb']:6.0f} MB"
        )
    if authors is not None:
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
    if authors is not None:
        print(
            f"  speed-up (authors' defaults / batched): wall "
            f"{authors['wall_s'] / bat['wall_s']:.2f}x, CPU time "
            f"{authors['cpu_s'] / bat['cpu_s']:.2f}x"
        )
    print(
        f"  batched wall / its CHGNet forward time: {bat['wall_s'] / bat['forward_s']:.2f}; "
        f"/ (graphs + forward): {bat['wall_s'] / (bat['graph_s'] + bat['forward_s']):.2f}; "
        f"graphs (building or waiting) {bat['graph_s'] / bat['wall_s']:.0%} of the wall time"
    )
    print(
        f"  |E_batched - E_StructOptimizer| eV/atom: median {np.median(diff):.1e}, "
        f"max {diff.max():.1e}"
    )


if __name__ == "__main__":
    main()
