"""Report build time vs campaign size, and where the time goes.

Builds the report of synthetic campaigns of 10^3, 10^4 and 10^5 candidates
(``chggen_flows.report.synthetic``: the columns and missing values of a real
``load_candidates`` frame) side by side and prints, per size, the time of gathering the
numbers, drawing the PNG figures and writing the HTML, with ratios to the smallest size.
The issue's target is 10^4 candidates in under a minute. A second comparison shows the
locality analysis (best candidates vs one reference) with each coordination method,
since it is the slowest optional section.

With ``--db N`` the whole ``chggen report`` path is timed as well: an embedded
SecantusDB server (temporary directory) is filled with the stage documents of an
N-candidate campaign (one document per stage and batch of 100, as the stage jobs write
them: 7 stages, so 7 records per candidate), then reading them with the results API
(``load_candidates``) and building the report are timed separately.

    OPENBLAS_NUM_THREADS=1 nice python benchmarks/bench_report.py --db 10000
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
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


def fill_database(store, frame: pd.DataFrame, campaign: str, batch: int = 100) -> None:
    """Stage documents of ``frame``'s candidates, as the campaign's stage jobs write them."""
    from chggen_flows.campaign.registry import registry
    from chggen_flows.makers.schemas import STAGES

    # NaN -> None, as pydantic serialises missing values.
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    now = datetime.now(UTC).isoformat()
    from chggen_flows.db.stores import OUTPUTS_COLLECTION, store_database

    collection = store_database(store)[OUTPUTS_COLLECTION]
    for stage in STAGES[:-1]:
        docs = []
        for start in range(0, len(records), batch):
            candidates = [{**r, "stage": stage} for r in records[start : start + batch]]
            output = {
                "@class": "StageDocument",
                "@module": "chggen_flows.makers.schemas",
                "stage": stage,
                "campaign": campaign,
                "batch_id": f"b{start // batch}",
                "candidates": candidates,
            }
            docs.append(
                {
                    "uuid": str(uuid.uuid4()),
                    "index": 1,
                    "output": output,
                    "metadata": {"campaign": campaign},
                    "completed_at": now,
                }
            )
        collection.insert_many(docs)
    registry(store).insert_one({"campaign": campaign, "name": "bench", "submitted": now})


def time_database(n: int, workdir: Path) -> dict[str, float]:
    """Seconds to read an ``n``-candidate campaign with load_candidates and report it."""
    from chggen_flows.campaign.results import load_candidates
    from chggen_flows.db import EmbeddedServer, get_job_store
    from chggen_flows.settings import Settings

    server = EmbeddedServer(workdir / "db")
    info = server.start()
    try:
        settings = Settings(mongo_uri=info.uri, database="bench", data_dir=workdir / "data")
        store = get_job_store(settings)
        store.connect()
        t0 = time.perf_counter()
        fill_database(store, synthetic_candidates(n, campaign="bench-db", seed=2), "bench-db")
        t1 = time.perf_counter()
        frame = load_candidates(store, "bench-db")
        t2 = time.perf_counter()
        build_report(frame, workdir / "report-db", progress=False)
        t3 = time.perf_counter()
    finally:
        server.stop()
    assert len(frame) == n
    return {"fill": t1 - t0, "load": t2 - t1, "build": t3 - t2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--locality-structures", type=int, default=10)
    parser.add_argument(
        "--db", type=int, default=0, help="Also time N candidates via the database."
    )
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

    if args.db:
        with tempfile.TemporaryDirectory() as tmp:
            t = time_database(args.db, Path(tmp))
        total = t["load"] + t["build"]
        print(
            f"\nchggen report path, {args.db} candidates in SecantusDB (7 stage records each, "
            f"insert {t['fill']:.1f} s):\n  load_candidates {t['load']:.2f} s + build_report "
            f"{t['build']:.2f} s = {total:.2f} s (load is {t['load'] / total:.0%})"
        )


if __name__ == "__main__":
    main()
