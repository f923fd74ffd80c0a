"""Training-step throughput of score-model architectures on real MP batches (one thread).

Measures, side by side in one run, DSM training steps (forward + backward + AdamW) of the
`cpu` preset in the format-1 architecture (24-neighbour cap, envelope on the radial
basis only), the format-2 default (every neighbour within the cutoff, envelope on the
radial weights) and a few variants, on the same random batches of 32 structures of at
most 30 atoms. Prints training atoms/s and edges per atom: the figures behind the
"Smooth at the cutoff" section of docs/model.md.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_training_step.py --data runs/mp_train.dataset.pt
"""

from __future__ import annotations

import argparse
import time

import torch

from chggen_flows.core.model import ScoreModel, ScoreModelConfig
from chggen_flows.core.model.data import read_structures
from chggen_flows.core.model.neighbors import batched_neighbor_list
from chggen_flows.core.model.training import dsm_loss

VARIANTS = {
    "format 1 (cap 24, envelope on basis)": {"max_neighbors": 24, "radial_envelope": "basis"},
    "format 2 (shipped)": {},
    "format 2, cutoff 4.5 Å": {"cutoff": 4.5},
    "format 2, 48x0e+24x1o+12x2e": {"hidden_irreps": "48x0e+24x1o+12x2e"},
    "format 2, 3 blocks": {"num_blocks": 3},
    "format 2, 4 blocks": {"num_blocks": 4},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", action="append", required=True)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(1)
    dataset = read_structures(args.data, max_atoms=30)
    generator = torch.Generator().manual_seed(0)
    batches = [
        dataset.batch(torch.randint(len(dataset), (args.batch_size,), generator=generator))
        for _ in range(args.steps)
    ]
    sigmas = [torch.exp(torch.empty(args.batch_size).uniform_(-6.9, 2.3)) for _ in batches]
    for name, overrides in VARIANTS.items():
        torch.manual_seed(0)
        model = ScoreModel(ScoreModelConfig.preset("cpu", elements=dataset.elements, **overrides))
        optimizer = torch.optim.AdamW(model.parameters(), 1e-3)
        first = batches[0]
        graph = batched_neighbor_list(
            first.pos, first.lattice, first.batch, model.config.cutoff, model.config.max_neighbors
        )
        start, atoms = time.perf_counter(), 0
        for batch, sigma in zip(batches, sigmas, strict=True):
            loss = dsm_loss(model, batch, sigma, torch.randn(batch.num_atoms, 3))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            atoms += batch.num_atoms
        elapsed = time.perf_counter() - start
        print(
            f"{name:40s} {sum(p.numel() for p in model.parameters()):7d} params  "
            f"{atoms / elapsed:6.0f} atoms/s  {elapsed / args.steps:.2f} s/step  "
            f"{len(graph.center) / first.num_atoms:.1f} edges/atom",
            flush=True,
        )


if __name__ == "__main__":
    main()
