"""Score-model benchmarks: inference and training throughput, memory, neighbour lists.

Usage::

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_model.py [--threads 2] [--quick]
        [--device cpu|cuda|cuda:N] [--sizes 1 4 16 64 256] [--only split inference ...]

Prints, side by side in one run:

* inference atoms/s of the shipped CPU-sized model and the authors' size ("paper"
  preset) for batches of ``--sizes`` structures (about 12 atoms each, 20 Å^3/atom), on
  ``--device``, with the peak GPU memory (``torch.cuda.max_memory_allocated``) on CUDA;
* training throughput (structures/s, atoms/s) and peak resident memory of both sizes;
* neighbour-list time of vesin-torch vs pymatgen's ``Structure.get_neighbor_list``
  for 20-200-atom cells, and their ratio;
* the split of a sampler's model call (issue 16): neighbour list / rest of the
  forward / sampler bookkeeping (noise, wrapping, norms) at 1, 64 and 512 structures,
  timed inside ``reverse_diffusion`` with the shipped-size model. It uses only public
  entry points, so it also measures older versions of the package (run it with
  ``PYTHONPATH`` pointing at another checkout).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time

import numpy as np
import torch
from pymatgen.core import Lattice, Structure
from vesin_torch import NeighborList

from chggen_flows.core.device import configure_threads, resolve_device
from chggen_flows.core.model import ScoreModel, ScoreModelConfig
from chggen_flows.core.model.data import CrystalDataset
from chggen_flows.core.model.neighbors import batched_neighbor_list
from chggen_flows.core.model.training import TrainConfig, train

ELEMENTS = ("Li", "Si")


def random_structures(count: int, atoms: int, seed: int = 0) -> list[Structure]:
    """Random Li/Si cells at 20 Å^3/atom with mildly skewed lattices."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        angles = rng.uniform(75, 105, 3)
        lattice = Lattice.from_parameters(
            1.0, rng.uniform(0.8, 1.2), rng.uniform(0.8, 1.2), *angles
        )
        lattice = lattice.scale(20.0 * atoms)
        species = rng.choice(ELEMENTS, atoms).tolist()
        out.append(Structure(lattice, species, rng.random((atoms, 3))))
    return out


def batch_of(structures: list[Structure], device: torch.device):
    dataset = CrystalDataset.from_structures((str(i), s) for i, s in enumerate(structures))
    batch = dataset.batch(range(len(structures)), torch.float32, device)
    sigma = torch.full((len(structures),), 0.1, device=device)
    return (batch.species, batch.pos, batch.lattice, batch.batch, sigma), batch.num_atoms


def inference(
    preset: str, sizes: list[int], device: torch.device, seconds: float
) -> dict[int, tuple[float, float, float]]:
    """(atoms/s wall, atoms/s CPU time, peak GPU MiB or nan) of a randomly initialised
    model per batch size (speed does not depend on the weights)."""
    model = ScoreModel(ScoreModelConfig.preset(preset, elements=ELEMENTS)).to(device).eval()
    rates = {}
    for size in sizes:
        inputs, atoms = batch_of(random_structures(size, 12, seed=size), device)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        with torch.no_grad():
            model(*inputs)  # warm-up
            calls, start, cpu_start = 0, time.perf_counter(), time.process_time()
            while time.perf_counter() - start < seconds or calls < 2:
                model(*inputs)
                calls += 1
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            wall = time.perf_counter() - start
        peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else np.nan
        rates[size] = (
            calls * atoms / wall,
            calls * atoms / (time.process_time() - cpu_start),
            peak,
        )
    return rates


class _Timer:
    """Wall time spent inside wrapped calls (synchronising CUDA around each)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.seconds = 0.0
        self.calls = 0

    def time(self, fn, *args, **kwargs):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.seconds += time.perf_counter() - start
        self.calls += 1
        return out


class _TimedScore:
    """A score function timed per call; forwards ``prepare`` where the model has it
    (issue 16's sampler prepares the model once per chunk)."""

    def __init__(self, fn, timer: _Timer) -> None:
        self.fn, self.timer = fn, timer
        prepare = getattr(fn, "prepare", None)
        if callable(prepare):
            self.prepare = lambda *args: _TimedScore(prepare(*args), timer)

    def __call__(self, *args):
        return self.timer.time(self.fn, *args)


def call_split(
    preset: str, sizes: list[int], device: torch.device, levels: int = 3
) -> dict[int, dict[str, float]]:
    """ms per model call inside the sampler: neighbour list, rest of the forward, and
    the sampler's own work (everything in ``reverse_diffusion`` outside the model)."""
    from chggen_flows.core.generation.sampler import (
        SamplerSettings,
        SamplingJob,
        reverse_diffusion,
    )
    from chggen_flows.core.model import network

    model = ScoreModel(ScoreModelConfig.preset(preset, elements=ELEMENTS)).to(device).eval()
    settings = SamplerSettings(n_levels=levels, n_corrector=1, min_distance=0.0)
    visits = list(range(levels, -1, -1))
    original = network.batched_neighbor_list
    out = {}
    for size in sizes:
        structures = random_structures(size, 12, seed=size)
        jobs = [
            SamplingJob([site.specie.Z for site in s], s.lattice.matrix, seed=i)
            for i, s in enumerate(structures)
        ]
        reverse_diffusion(model, jobs[:1], settings, [1, 0], device)  # warm-up
        model_timer, neighbor_timer, total = _Timer(device), _Timer(device), _Timer(device)
        network.batched_neighbor_list = lambda *a, _t=neighbor_timer, **k: _t.time(
            original, *a, **k
        )
        try:
            total.time(
                reverse_diffusion, _TimedScore(model, model_timer), jobs, settings, visits, device
            )
        finally:
            network.batched_neighbor_list = original
        calls = model_timer.calls
        out[size] = {
            "neighbour list": neighbor_timer.seconds / calls * 1e3,
            "rest of forward": (model_timer.seconds - neighbor_timer.seconds) / calls * 1e3,
            "sampler": (total.seconds - model_timer.seconds) / calls * 1e3,
            "total": total.seconds / calls * 1e3,
        }
    return out


def _peak_rss_mib() -> float:
    """Peak resident memory of this process (VmHWM; resets on exec, unlike ru_maxrss)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _train_worker(preset: str, steps: int, threads: int, queue: mp.Queue) -> None:
    import tempfile

    configure_threads(threads)
    structures = random_structures(64, 12) + random_structures(64, 20, seed=1)
    dataset = CrystalDataset.from_structures((f"x-{i}", s) for i, s in enumerate(structures))
    base = _peak_rss_mib()
    with tempfile.TemporaryDirectory() as tmp:
        config = TrainConfig(
            data=[], output_dir=tmp, preset=preset, batch_size=16, val_fraction=0.0,
            threads=threads, device="cpu", checkpoint_every_steps=10**6, epochs=100,
        )  # fmt: skip
        train(config, dataset=dataset, max_steps=2)  # warm-up
        start = time.perf_counter()
        train(config, dataset=dataset, max_steps=steps, resume=True)
        elapsed = time.perf_counter() - start
    atoms_per_step = 16 * 16  # 16 structures of 16 atoms on average
    queue.put((steps * 16 / elapsed, steps * atoms_per_step / elapsed, _peak_rss_mib(), base))


def training(preset: str, steps: int, threads: int) -> tuple[float, float, float, float]:
    """(structures/s, atoms/s, peak RSS MiB, RSS MiB before training) in a fresh process."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_train_worker, args=(preset, steps, threads, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def _seconds(fn, repeats: int) -> float:
    """CPU seconds per call: all three variants are single-threaded, and CPU time is far
    less disturbed than wall time by other processes on a shared machine."""
    fn()
    start = time.process_time()
    for _ in range(repeats):
        fn()
    return (time.process_time() - start) / repeats


def neighbor_lists(
    sizes: list[int], cutoff: float, repeats: int
) -> dict[int, tuple[float, float, float]]:
    """Seconds per cell: raw vesin-torch, the model's wrapper (adds vectors), pymatgen."""
    out = {}
    for atoms in sizes:
        structure = random_structures(1, atoms, seed=atoms)[0]
        pos = torch.tensor(structure.cart_coords)
        lattice = torch.tensor(structure.lattice.matrix)
        batch = torch.zeros(atoms, dtype=torch.long)
        raw = NeighborList(cutoff=cutoff, full_list=True, n_threads=1)
        out[atoms] = (
            _seconds(lambda: raw.compute(pos, lattice, True, "ijS"), repeats),  # noqa: B023
            _seconds(
                lambda: batched_neighbor_list(pos, lattice[None], batch, cutoff, counts=[atoms]),  # noqa: B023
                repeats,
            ),
            _seconds(lambda: structure.get_neighbor_list(cutoff), repeats),  # noqa: B023
        )
    return out


def batched_neighbor_lists(
    cells: int, atoms: int, cutoff: float, repeats: int
) -> tuple[float, float]:
    """CPU seconds for ``cells`` structures: one batched call vs one pymatgen call per cell."""
    structures = random_structures(cells, atoms, seed=7)
    (_, pos, lattice, batch, _), _ = batch_of(structures, torch.device("cpu"))
    counts = [atoms] * cells
    ours = _seconds(
        lambda: batched_neighbor_list(pos, lattice, batch, cutoff, counts=counts), repeats
    )
    theirs = _seconds(lambda: [s.get_neighbor_list(cutoff) for s in structures], repeats)
    return ours, theirs


def sample_quality(
    model: ScoreModel, count: int, composition: str, formula_units: int, v0: float, threads: int
) -> dict[str, float]:
    """Generate ``count`` structures (full schedule), relax them with CHGNet, summarise.

    Returns the share with no atoms closer than 1 Å, and the median energy drop (dE,
    eV/atom) and RMSD (Å) of the CHGNet relaxation (authors' criterion: FIRE, fmax 0.1
    eV/Å, 500 steps) over the structures that could be relaxed.
    """
    from pymatgen.core import Composition

    from chggen_flows.core.generation import GenerationRequest, generate
    from chggen_flows.core.generation.candidate import min_interatomic_distance
    from chggen_flows.core.relax import BatchRelaxer, RelaxSettings

    request = GenerationRequest(Composition(composition), formula_units=formula_units, v0=v0)
    start = time.perf_counter()
    candidates = generate([request] * count, model, seed=11, device="cpu", progress=False)
    generated = time.perf_counter() - start
    structures = [c.structure for c in candidates]
    far_apart = [min_interatomic_distance(s) >= 1.0 for s in structures]
    start = time.perf_counter()
    records = BatchRelaxer(RelaxSettings(device="cpu", threads=threads)).relax(structures)
    relaxed = [r for r in records if r.ok]
    return {
        "share_min_distance_ge_1A": float(np.mean(far_apart)),
        "median_dE_eV_per_atom": float(np.median([r.de for r in relaxed])) if relaxed else np.nan,
        "median_rmsd_A": float(np.median([r.rmsd for r in relaxed])) if relaxed else np.nan,
        "share_relaxed_converged": float(np.mean([r.converged for r in records])),
        "generation_s": generated,
        "relaxation_s": time.perf_counter() - start,
    }


SECTIONS = ("inference", "training", "neighbors", "split")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="shorter timings")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[1, 4, 16, 64, 256], help="structures per call"
    )
    parser.add_argument(
        "--split-sizes", type=int, nargs="+", default=[1, 64, 512], help="for --only split"
    )
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument(
        "--batched-search",
        action="store_true",
        help="use the GPU's batched neighbour search on the CPU too (issue 16 and later)",
    )
    parser.add_argument(
        "--quality",
        type=int,
        default=0,
        metavar="N",
        help="only: generate N Li5Si2 (Z=2) cells with the shipped model and with an "
        "untrained one, relax them with CHGNet and compare (minutes)",
    )
    args = parser.parse_args()
    if args.quality:
        configure_threads(args.threads)
        from chggen_flows.core.model import load_score_model

        trained = load_score_model(device="cpu")
        torch.manual_seed(0)
        untrained = ScoreModel(trained.config).eval()
        epochs = trained.training_metadata.get("epochs_completed")
        print(f"## Sample quality: {args.quality} x Li5Si2 (Z=2, V0 22 Å^3/atom), full schedule")
        for name, model in ((f"shipped (epoch {epochs})", trained), ("untrained", untrained)):
            print(name, sample_quality(model, args.quality, "Li5Si2", 2, 22.0, args.threads))
        return
    configure_threads(args.threads)
    seconds = 1.0 if args.quick else 3.0
    sizes = args.sizes
    device = resolve_device(args.device)
    if args.batched_search:
        from chggen_flows.core.model import neighbors

        neighbors.BATCHED_SEARCH_DEVICES = (*neighbors.BATCHED_SEARCH_DEVICES, device.type)
    search = " (batched neighbour search)" if args.batched_search else ""
    print(f"torch {torch.__version__}, {args.threads} thread(s), device {device}{search}")

    if "inference" in args.only:
        print(f"\n## Inference (atoms/s, 12-atom cells, float32, {device})")
        small = inference("cpu", sizes, device, seconds)
        paper = inference("paper", sizes, device, seconds)
        print("wall-clock atoms/s (CPU-time atoms/s in brackets: the idle-core rate at 1 thread)")
        memory = f" {'cpu MiB':>8} {'paper MiB':>9}" if device.type == "cuda" else ""
        print(f"{'structures':>10} {'cpu preset':>18} {'paper preset':>18} {'ratio':>6}{memory}")
        for size in sizes:
            (a, a_cpu, a_mem), (b, b_cpu, b_mem) = small[size], paper[size]
            peak = f" {a_mem:>8.0f} {b_mem:>9.0f}" if device.type == "cuda" else ""
            print(
                f"{size:>10} {a:>8.0f} ({a_cpu:>7.0f}) {b:>8.0f} ({b_cpu:>7.0f}) {a / b:>6.1f}{peak}"
            )

    if "split" in args.only:
        print(f"\n## Sampler model call split (ms per call, cpu preset, 12-atom cells, {device})")
        print(f"{'structures':>10} {'neighbours':>11} {'forward':>9} {'sampler':>9} {'total':>9}")
        for size, split in call_split("cpu", args.split_sizes, device).items():
            print(
                f"{size:>10} {split['neighbour list']:>11.2f} {split['rest of forward']:>9.2f} "
                f"{split['sampler']:>9.2f} {split['total']:>9.2f}"
            )

    if "training" in args.only:
        print("\n## Training (batch 16 structures of 12-20 atoms, CPU)")
        steps = 10 if args.quick else 30
        for preset in ("cpu", "paper"):
            rate, atom_rate, peak, base = training(
                preset, steps if preset == "cpu" else steps // 3, args.threads
            )
            print(
                f"{preset:>6}: {rate:.1f} structures/s, {atom_rate:.0f} atoms/s, "
                f"peak RSS {peak:.0f} MiB ({base:.0f} MiB before training)"
            )

    if "neighbors" in args.only:
        print("\n## Neighbour lists (cutoff 5 Å, CPU ms per cell)")
        print(
            f"{'atoms':>6} {'vesin':>8} {'wrapper':>8} {'pymatgen':>9} {'pmg/vesin':>10} "
            f"{'pmg/wrapper':>12}"
        )
        for atoms, (raw, ours, theirs) in neighbor_lists([20, 50, 100, 200], 5.0, 200).items():
            print(
                f"{atoms:>6} {raw * 1e3:>8.3f} {ours * 1e3:>8.3f} {theirs * 1e3:>9.3f} "
                f"{theirs / raw:>10.1f} {theirs / ours:>12.1f}"
            )
        ours, theirs = batched_neighbor_lists(64, 12, 5.0, 20)
        print(
            f"batch of 64 12-atom cells: wrapper {ours * 1e3:.2f} ms, pymatgen "
            f"{theirs * 1e3:.2f} ms, pymatgen/wrapper {theirs / ours:.1f}"
        )


if __name__ == "__main__":
    main()
