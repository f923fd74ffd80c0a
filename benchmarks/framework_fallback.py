"""Issue 26 item 5: does the bounded host search (``highest``, ``fan_out``) reject
candidates the paper's rule keeps, and does the fallback recover them?

Generates candidates with a score model (the paper's sampler by default), relaxes them
with CHGNet and runs the framework stage on each relaxed structure in every mode:
``first`` (the paper's rule), ``highest`` without and with the fallback, and ``fan_out``.
Prints the hosts found per mode and how many of ``highest``'s are fallbacks.

    OPENBLAS_NUM_THREADS=1 python benchmarks/framework_fallback.py \
        --checkpoint shipped:Zn-P-S --formula ZnPS3:2 --num 16 --threads 1
"""

from __future__ import annotations

import argparse
import collections
import time

from pymatgen.core import Composition

from chggen_flows.core.generation import GenerationRequest, SamplerSettings, generate
from chggen_flows.core.model import load_score_model
from chggen_flows.core.relax import BatchRelaxer, RelaxSettings
from chggen_flows.core.symmetry import FrameworkSettings, host_candidates

MODES = {
    "first (paper)": FrameworkSettings(mode="first"),
    "highest, no fallback": FrameworkSettings(mode="highest", fallback=False),
    "highest (fallback)": FrameworkSettings(mode="highest"),
    "fan_out (fallback)": FrameworkSettings(mode="fan_out"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="model file or shipped:SYSTEM")
    parser.add_argument("--formula", action="append", help="formula:Z (repeatable)")
    parser.add_argument("--num", type=int, default=16, help="candidates per formula")
    parser.add_argument("--n-levels", type=int, default=SamplerSettings.default("n_levels"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()

    start = time.time()
    model = load_score_model(args.checkpoint, device="cpu")
    requests = []
    for item in args.formula or ["ZnPS3:2"]:
        formula, z = item.split(":")
        requests += [GenerationRequest(Composition(formula), int(z))] * args.num
    sampler = SamplerSettings(n_levels=args.n_levels)
    candidates = generate(requests, model, sampler, seed=args.seed, device="cpu")
    records = BatchRelaxer(RelaxSettings(max_steps=500, threads=args.threads)).relax(
        [c.structure for c in candidates]
    )
    found: collections.Counter[str] = collections.Counter()
    fallbacks = collections.Counter()
    relaxed = 0
    for request, record in zip(requests, records, strict=True):
        if not record.ok:
            continue
        relaxed += 1
        guest = min(request.composition.elements, key=lambda el: el.X).symbol
        line = []
        for name, settings in MODES.items():
            best = host_candidates(record.structure, [guest], settings)[0]
            found[name] += best.ok
            fallbacks[name] += best.fallback
            line.append(
                f"{name}: {best.spacegroup_symbol if best.ok else '-'}"
                + (" (fallback)" if best.fallback else "")
            )
        print(
            f"{request.composition.reduced_formula} Z={request.formula_units}: " + "; ".join(line),
            flush=True,
        )
    print(f"candidates: {len(requests)}, relaxed: {relaxed}")
    for name in MODES:
        print(f"{name}: host for {found[name]} of {relaxed}, fallbacks {fallbacks[name]}")
    print(f"wall time: {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
