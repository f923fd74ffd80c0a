"""Report build time vs campaign size, and where the time goes.

Builds the report of synthetic campaigns of 10^3, 10^4 and 10^5 candidates
(``chggen_flows.report.synthetic``: the columns and missing values of a real
``load_candidates`` frame) side by side and prints, per size, the time of gathering the
numbers, drawing the PNG figures and writing the HTML, with ratios to the smallest size.
The issue's target is 10^4 candidates in under a minute. A second comparison shows the
locality analysis (best candidates vs one reference) with each coordination method,
since it is the slowest optional section.

    OPENBLAS_NUM_THREADS=1 nice python benchmarks/bench_report.py
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from pymatgen.core import Lattice, Structure

from chggen_flows.core.analysis import METHODS, compare_locality
from chggen_flows.report import build_report, gather
from chggen_flows.report.data import normalise_frame
from chggen_flows.report.figures import FIGURES
from chggen_flows.report.synthetic import synthetic_candidates


def time_build(n: int, out: Path) -> dict[str, float]:
    """Seconds for gather, figures and the full build of an ``n``-candidate report."""
    frame = synthetic_candidates(n, seed=1)
    t0 = time.perf_counter()
    df = normalise_frame(frame)
    summary = gather(df)
    t1 = time.perf_counter()
    for spec in FIGURES:
        fig = spec.draw(summary, df)
        if fig is not None:
            fig.savefig(out / f"{spec.name}.png")
    t2 = time.perf_counter()
    build_report(frame, out / f"report-{n}", progress=False)
    t3 = time.perf_counter()
    return {"gather": t1 - t0, "figures": t2 - t1, "build": t3 - t2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--locality-structures", type=int, default=10)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        rows = {n: time_build(n, Path(tmp)) for n in args.sizes}
    base = rows[args.sizes[0]]["build"]
    print(f"{'candidates':>10} {'gather s':>9} {'figures s':>10} {'build s':>8} {'x smallest':>10}")
    for n, t in rows.items():
        print(
            f"{n:>10} {t['gather']:>9.2f} {t['figures']:>10.2f} {t['build']:>8.2f} "
            f"{t['build'] / base:>10.1f}"
        )

    # Locality section: k "generated" 2x2x2 zinc-blende supercells (64 atoms, rattled)
    # against the primitive reference, per coordination method.
    zb = Structure.from_spacegroup(
        "F-43m", Lattice.cubic(5.41), ["Zn", "S"], [[0, 0, 0], [0.25, 0.25, 0.25]]
    )
    generated = []
    for seed in range(args.locality_structures):
        s = zb * (2, 2, 2)
        s.perturb(0.1, min_distance=0.05, seed=seed)
        generated.append(s)
    times = {}
    for method in METHODS:
        t0 = time.perf_counter()
        compare_locality(generated, [zb.get_primitive_structure()], method=method)
        times[method] = time.perf_counter() - t0
    fastest = min(times.values())
    n_sites = sum(len(s) for s in generated)
    print(f"\nlocality analysis, {len(generated)} structures / {n_sites} sites vs 1 reference:")
    for method, t in times.items():
        print(f"{method:>10} {t:>7.2f} s  {1e3 * t / n_sites:>6.1f} ms/site  x{t / fastest:.1f}")


if __name__ == "__main__":
    main()
