"""One prepared GPU session (issue 16): train, sample and relax, and write the figures.

A GPU is lent for about 15 minutes of device time, all tries together, so this script
does everything in one run and writes what it measured as it goes (a run cut short
still leaves the figures of the finished parts):

1. **training**: a larger score model (``--preset``, default "paper") on a dataset
   tensor file (``chggen train --save-dataset``) for ``--train-seconds`` (< 9 min);
   the checkpoint goes to ``OUT/train/``; reports atoms/s and the peak GPU memory;
2. **host syncs**: CUDA synchronisations per sampler model call, counted with
   ``torch.cuda.set_sync_debug_mode`` (CUDA only);
3. **sampling**: candidates sampled in one batch, and the first ``--single`` of them
   again one at a time with the same seeds (seconds per structure, and the largest
   difference between the two);
4. **relaxation**: CHGNet ``BatchRelaxer`` on rattled dataset structures vs CHGNet's
   ``StructOptimizer`` one structure at a time on the first ``--single`` (seconds per
   structure, energy differences); graphs built by ``--graph-workers`` processes
   (default: automatic), with the time spent on graphs and in CHGNet, the measured atoms
   per call and the peak GPU memory.

With the defaults (paper preset, 300 s of training, 64 candidates at 100 levels, 32
relaxations of 100 steps, 8 of each one at a time) a run takes about 8 minutes on a
GPU (estimated: not yet run on one).

Usage (see docs/performance.md, "GPU session")::

    OPENBLAS_NUM_THREADS=1 python benchmarks/gpu_session.py --dataset data.dataset.pt \\
        --out gpu_out --device cuda --train-seconds 300

``--tiny`` runs the same steps with the tiny preset and a few structures (the CPU test).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pymatgen.core import Lattice, Structure

from chggen_flows.core.device import configure_threads, resolve_device
from chggen_flows.core.model.data import CrystalDataset


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def structures_of(dataset: CrystalDataset, count: int) -> list[Structure]:
    """The first ``count`` structures of a dataset file as pymatgen structures."""
    offsets = dataset.offsets.tolist()
    out = []
    for i in range(min(count, len(dataset))):
        n = int(dataset.counts[i])
        species = dataset.species[offsets[i] : offsets[i] + n].tolist()
        frac = dataset.frac[offsets[i] : offsets[i] + n].double().numpy()
        out.append(Structure(Lattice(dataset.lattice[i].double().numpy()), species, frac))
    return out


def run_training(
    dataset: CrystalDataset, out: Path, args: argparse.Namespace, device: torch.device
) -> dict[str, Any]:
    """Train for the time limit; atoms/s from the run's own counters."""
    from chggen_flows.core.model.checkpoint import read_checkpoint
    from chggen_flows.core.model.training import TrainConfig, train

    config = TrainConfig(
        data=[], output_dir=out / "train", preset=args.preset, batch_size=args.batch_size,
        val_fraction=args.val_fraction, device=str(device), epochs=10_000,
        checkpoint_every_steps=10**9, threads=args.threads, warmup_steps=args.warmup_steps,
    )  # fmt: skip
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    result = train(config, dataset=dataset, time_limit_s=args.train_seconds, progress=False)
    elapsed = time.perf_counter() - start
    state = read_checkpoint(result.last_checkpoint, kind="training")["resume"]["state"]
    return {
        "preset": args.preset,
        "checkpoint": str(result.best_model or result.last_checkpoint),
        "wall_s": elapsed,
        "steps": state["global_step"],
        "epochs": state["epoch"],
        "atoms_seen": state["atoms_seen"],
        "atoms_per_s": state["atoms_seen"] / max(state["wall_s"], 1e-9),
        "best_val": state["best_val"] if np.isfinite(state["best_val"]) else None,
        "peak_gpu_mib": torch.cuda.max_memory_allocated(device) / 2**20
        if device.type == "cuda"
        else None,
    }


def _requests(structures: list[Structure]):
    from chggen_flows.core.generation import GenerationRequest

    # each candidate gets the composition and cell of a dataset structure
    return [GenerationRequest(s.composition, 1, lattice=s.lattice) for s in structures]


def count_syncs(model, structures: list[Structure], device: torch.device) -> dict[str, Any]:
    """CUDA syncs per model call of the sampler (sync debug mode warns at each one)."""
    if device.type != "cuda":
        return {"skipped": "CUDA only (torch.cuda.set_sync_debug_mode)"}
    from chggen_flows.core.generation.sampler import SamplingJob, cuda_syncs_per_model_call

    jobs = [
        SamplingJob([site.specie.Z for site in s], s.lattice.matrix, seed=i)
        for i, s in enumerate(structures)
    ]
    return {"structures": len(jobs), **cuda_syncs_per_model_call(model, jobs, device, (2, 4))}


def run_sampling(
    checkpoint: str, structures: list[Structure], args: argparse.Namespace, device: torch.device
) -> dict[str, Any]:
    """The same candidates batched and one at a time (same seeds): time and agreement."""
    from chggen_flows.core.generation import GenerationRequest, SamplerSettings, generate
    from chggen_flows.core.model import load_score_model

    model = load_score_model(checkpoint, device=device)
    settings = SamplerSettings(n_levels=args.levels, n_corrector=args.correctors)
    requests = _requests(structures)
    generate(requests[:1], model, SamplerSettings(n_levels=2), seed=0, device=device)  # warm-up
    _sync(device)
    start = time.perf_counter()
    batched = generate(requests, model, settings, seed=args.seed, device=device, progress=False)
    batched_s = time.perf_counter() - start
    start = time.perf_counter()
    single = []
    # one at a time for the first few only: the per-structure time is what is compared
    for request, cand in zip(requests[: args.single], batched, strict=False):
        alone = GenerationRequest(
            request.composition, request.formula_units, request.lattice, seed=cand.metadata["seed"]
        )
        single.extend(generate([alone], model, settings, device=device, progress=False))
    single_s = time.perf_counter() - start
    diffs = []
    for a, b in zip(batched, single, strict=False):
        d = a.structure.frac_coords - b.structure.frac_coords
        diffs.append(float(np.abs(d - np.round(d)).max()))
    per_batched, per_single = batched_s / len(batched), single_s / len(single)
    return {
        "structures": len(requests),
        "structures_one_at_a_time": len(single),
        "atoms": int(sum(len(c.structure) for c in batched)),
        "model_calls_per_structure": batched[0].metadata["model_calls"],
        "batched_s": batched_s,
        "one_at_a_time_s": single_s,
        "batched_s_per_structure": per_batched,
        "one_at_a_time_s_per_structure": per_single,
        "speed_up": per_single / per_batched,
        "max_frac_difference": max(diffs),
        "syncs": count_syncs(model, structures[: min(len(structures), 64)], device),
    }


def run_relaxation(
    structures: list[Structure], args: argparse.Namespace, device: torch.device
) -> dict[str, Any]:
    """BatchRelaxer vs StructOptimizer on the same rattled structures, same model."""
    from chgnet.model import StructOptimizer

    from chggen_flows.core.relax import BatchRelaxer, RelaxSettings

    rng = np.random.default_rng(args.seed)
    rattled = [
        Structure(
            s.lattice,
            s.species,
            s.cart_coords + rng.normal(0, 0.1, (len(s), 3)),
            coords_are_cartesian=True,
        )
        for s in structures
    ]
    relaxer = BatchRelaxer(
        RelaxSettings(
            device=str(device),
            max_steps=args.relax_steps,
            threads=args.threads,
            graph_workers=args.graph_workers,
        )
    )
    # warm-up: starts the graph workers and measures the atoms per CUDA call
    relaxer.relax(rattled[:1], progress=False)
    relaxer.graph_time = relaxer.forward_time = 0.0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    _sync(device)
    start = time.perf_counter()
    records = relaxer.relax(rattled, progress=False)
    _sync(device)
    batched_s = time.perf_counter() - start
    graph_s, forward_s = relaxer.graph_time, relaxer.forward_time
    relaxer.close()
    optimizer = StructOptimizer(model=relaxer.model, use_device=str(device))
    start = time.perf_counter()
    energies = []
    for s in rattled[: args.single]:  # the first few: per-structure time is compared
        trajectory = optimizer.relax(s, steps=args.relax_steps, fmax=0.1, verbose=False)[
            "trajectory"
        ]
        energies.append(float(trajectory.energies[-1]) / len(s))
    single_s = time.perf_counter() - start
    diffs = [
        abs(r.final_energy_per_atom - e)
        for r, e in zip(records, energies, strict=False)
        if r.ok and np.isfinite(r.final_energy_per_atom)
    ]
    per_batched, per_single = batched_s / len(rattled), single_s / len(energies)
    return {
        "structures": len(rattled),
        "structures_struct_optimizer": len(energies),
        "max_steps": args.relax_steps,
        "batch_relaxer_s": batched_s,
        "struct_optimizer_s": single_s,
        "batch_relaxer_s_per_structure": per_batched,
        "struct_optimizer_s_per_structure": per_single,
        "speed_up": per_single / per_batched,
        "median_abs_energy_difference_ev_per_atom": float(np.median(diffs)) if diffs else None,
        "graph_workers": relaxer.graphs.workers,
        "pipeline": relaxer.pipeline,
        # seconds the relaxing process spent building or waiting for graphs, and in
        # CHGNet's calls, during the batched run
        "graph_s": graph_s,
        "forward_s": forward_s,
        "atoms_per_call": relaxer.atoms_per_call,
        "out_of_memory_retries": relaxer.out_of_memory_retries,
        "peak_gpu_mib": torch.cuda.max_memory_allocated(device) / 2**20
        if device.type == "cuda"
        else None,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, required=True, help="a .dataset.pt file")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--preset", default="paper", help="score-model preset to train")
    parser.add_argument("--train-seconds", type=float, default=300.0, help="< 540")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--warmup-steps", type=int, default=200)
    parser.add_argument("--val-fraction", type=float, default=0.02)
    parser.add_argument("--sample-structures", type=int, default=64)
    parser.add_argument("--levels", type=int, default=100, help="sampler noise levels")
    parser.add_argument("--correctors", type=int, default=1)
    parser.add_argument("--relax-structures", type=int, default=32)
    parser.add_argument("--relax-steps", type=int, default=100)
    parser.add_argument(
        "--single",
        type=int,
        default=8,
        help="structures also run one at a time (sampling, relaxation)",
    )
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--graph-workers",
        type=int,
        default=None,
        help="relaxation: CHGNet graph processes (default: automatic, 0 on the CPU)",
    )
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--skip", nargs="*", default=[], choices=["sampling", "relaxation"])
    parser.add_argument(
        "--tiny", action="store_true", help="tiny preset and a few structures (CPU test)"
    )
    args = parser.parse_args(argv)
    if args.tiny:
        args.preset, args.batch_size, args.warmup_steps = "tiny", 4, 1
        args.train_seconds = min(args.train_seconds, 3.0)
        args.sample_structures, args.levels = min(args.sample_structures, 3), 3
        args.relax_structures, args.relax_steps = min(args.relax_structures, 2), 2
    if args.train_seconds >= 540:
        parser.error("--train-seconds must stay below 540 (9 minutes) to fit the lease")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the session; returns (and writes to ``OUT/gpu_session.json``) the figures."""
    args = parse_args(argv)
    device = resolve_device(args.device)
    if device.type == "cpu":
        configure_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    report_path = args.out / "gpu_session.json"
    figures: dict[str, Any] = {
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }

    def save() -> None:  # after every part: a run cut short keeps what it measured
        report_path.write_text(json.dumps(figures, indent=1, default=float) + "\n")

    dataset = CrystalDataset.load(args.dataset)
    figures["dataset"] = {"structures": len(dataset), "atoms": int(dataset.counts.sum())}
    save()
    figures["training"] = run_training(dataset, args.out, args, device)
    save()
    if "sampling" not in args.skip:
        structures = structures_of(dataset, args.sample_structures)
        figures["sampling"] = run_sampling(
            figures["training"]["checkpoint"], structures, args, device
        )
        save()
    if "relaxation" not in args.skip:
        figures["relaxation"] = run_relaxation(
            structures_of(dataset, args.relax_structures), args, device
        )
        save()
    print(json.dumps(figures, indent=1, default=float))
    return figures


if __name__ == "__main__":
    main()
