"""Batched vs one-at-a-time sampling, and the sampler's overhead over the bare model.

Run::

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_generation.py [--n-levels 5 --n-corrector 2]

Three variants on the same 64 candidates (20-40 atoms each, seeded), same model and
settings, in one run:

1. one-at-a-time: ``generate`` called once per candidate (the authors' way);
2. batched: one ``generate`` call, all candidates in one batched graph per model call;
3. bare model: the same number of forward passes on the same batch, nothing else,
   measured twice: (a) the time spent inside the model's forward passes during the
   batched run itself (same inputs; the rest of that run is the sampler's overhead),
   (b) a separate loop over the final structures (neighbour-list cost depends on
   positions and the machine's load drifts, so (b) is the noisier of the two).

The schedule is shortened (``--n-levels``, default 5, with ``--n-corrector`` 2) so the
measurement takes a minute; the cost per model call does not depend on the schedule,
so structures/hour are extrapolated to the full schedule (200 levels, M = 5: 1,195
model calls per structure). The model is the shipped checkpoint when present, else an
untrained model of the shipped ("cpu") size, which costs the same per call.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from pymatgen.core import Composition

from chggen_flows.core.device import configure_threads, resolve_device
from chggen_flows.core.generation import GenerationRequest, SamplerSettings, generate
from chggen_flows.core.generation.batching import PackedBatch
from chggen_flows.core.model import ScoreModel, ScoreModelConfig, default_checkpoint_path

FORMULAS = ("ZnPS3", "Zn2P2S7", "Li3PS4", "Li7P3S11", "LiSi", "Li5Si2", "ZnS", "Li2S")


def candidates(n: int, seed: int = 0) -> list[GenerationRequest]:
    """``n`` requests of 20-40 atoms over Zn-P-S / Li-P-S / Li-Si formulas."""
    rng = np.random.default_rng(seed)
    requests = []
    while len(requests) < n:
        composition = Composition(FORMULAS[int(rng.integers(len(FORMULAS)))])
        size = int(composition.num_atoms)
        z_choices = [z for z in range(1, 41) if 20 <= z * size <= 40]
        if z_choices:
            z = z_choices[int(rng.integers(len(z_choices)))]
            requests.append(GenerationRequest(composition, z, seed=len(requests)))
    return requests


def load_model(device: torch.device) -> tuple[ScoreModel, str]:
    """The shipped model, or an untrained model of the same size."""
    if default_checkpoint_path().is_file():
        from chggen_flows.core.model import load_score_model

        return load_score_model(device=device), "shipped checkpoint"
    torch.manual_seed(0)
    model = ScoreModel(ScoreModelConfig()).to(device).eval()
    return model, "untrained model of the shipped (cpu) size (no checkpoint shipped yet)"


class TimedModel:
    """A score model wrapper that adds up the wall time of its forward passes."""

    def __init__(self, model: ScoreModel, device: torch.device) -> None:
        self.model, self.device, self.seconds = model, device, 0.0
        self.elements = model.elements

    def __call__(self, *args: torch.Tensor) -> torch.Tensor:
        start = time.perf_counter()
        out = self.model(*args)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        self.seconds += time.perf_counter() - start
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=64)
    parser.add_argument("--n-levels", type=int, default=5)
    parser.add_argument("--n-corrector", type=int, default=2)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    threads = configure_threads()
    device = resolve_device(args.device)
    model, model_note = load_model(device)
    requests = candidates(args.candidates)
    natoms = sum(int(r.composition.num_atoms) * r.formula_units for r in requests)
    settings = SamplerSettings(n_levels=args.n_levels, n_corrector=args.n_corrector)
    calls = args.n_levels + (args.n_levels - 1) * args.n_corrector
    full_calls = 200 + 199 * 5
    print(f"device {device}, {threads} torch threads; model: {model_note}")
    print(f"{len(requests)} candidates, {natoms} atoms ({natoms / len(requests):.1f}/structure)")
    print(
        f"schedule: {args.n_levels} levels, M = {args.n_corrector}: {calls} model calls/structure"
    )

    generate(requests[:2], model, settings, device=device, progress=False)  # warm-up
    start = time.perf_counter()
    for request in requests:
        generate([request], model, settings, device=device, progress=False)
    t_single = time.perf_counter() - start

    timed = TimedModel(model, device)
    start = time.perf_counter()
    batched = generate(requests, timed, settings, device=device, progress=False)
    t_batched = time.perf_counter() - start

    packed = PackedBatch.from_lists(
        [[s.Z for s in c.structure.species] for c in batched],
        [c.structure.lattice.matrix for c in batched],
        device,
        torch.float32,
    )
    pos = torch.tensor(
        np.concatenate([c.structure.cart_coords for c in batched]),
        dtype=torch.float32,
        device=device,
    )
    sigmas = np.geomspace(settings.sigma_min, settings.sigma_max, calls)
    start = time.perf_counter()
    with torch.inference_mode():
        for sigma in sigmas:
            level = torch.full((packed.n_structures,), float(sigma), device=device)
            model(packed.species, pos, packed.lattice, packed.batch, level)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t_model = time.perf_counter() - start

    variants = (
        ("one-at-a-time", t_single),
        ("batched", t_batched),
        ("model in run", timed.seconds),
        ("model loop", t_model),
    )
    rate = {name: natoms * calls / t for name, t in variants}
    for name, t in variants:
        per_hour = 3600 * len(requests) / (t * full_calls / calls)
        print(f"{name:>14}: {t:7.2f} s  {rate[name]:8.0f} atoms/s  "
              f"{per_hour:7.0f} structures/h at the full schedule")  # fmt: skip
    print(f"batched / one-at-a-time speed-up: {t_single / t_batched:.2f}x")
    print(
        "sampler / bare model (atoms/s, same batch): "
        f"{rate['batched'] / rate['model in run']:.2f} (model time inside the run), "
        f"{rate['batched'] / rate['model loop']:.2f} (separate loop)"
    )


if __name__ == "__main__":
    main()
