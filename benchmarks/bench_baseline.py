"""Did generation beat random search? A campaign with both arms on one system.

Runs a CHGGen campaign with a PyXtal random-search arm (``baseline: {kind: pyxtal}``)
locally with jobflow (the real stage jobs, in-memory JobStore, no FireWorks): the
shipped score model with the paper's sampler settings, CHGNet relaxations at the
default settings, the offline reference hull, no DFT. Then prints the search metrics
per arm (``chggen results --metrics``) and the cost of each arm: wall time of its jobs,
score-model calls and CHGNet steps (the E_d job is shared and listed apart).

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_baseline.py --system Li-Si --json li_si.json
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_baseline.py --system Zn-P-S
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from jobflow import JobStore, run_locally
from maggma.stores import MemoryStore

from chggen_flows.campaign.build import build_flow
from chggen_flows.campaign.metrics import campaign_metrics
from chggen_flows.campaign.spec import CampaignSpec
from chggen_flows.core.device import configure_threads
from chggen_flows.core.model import resolve_checkpoint

#: 3 compositions x formula units 1, 2 x 2 lattices x 4 candidates = 48 per arm.
SYSTEMS = {
    "Li-Si": {"compositions": ["Li5Si2", "Li3Si", "Li2Si"], "guests": ["Li"]},
    "Zn-P-S": {"compositions": ["ZnPS3", "ZnP2S6", "Zn2P2S7"], "guests": ["Zn"]},
}


QUICK = {
    "lattices_per_composition": 1,
    "candidates_per_lattice": 1,
    "sampler": {"n_levels": 10, "n_corrector": 1},
    "inpaint": {"jump_length": 2, "n_resample": 1},
    "relax": {"max_steps": 5},
}


def spec_for(
    system: str,
    seed: int,
    quick: bool = False,
    framework_mode: str = "first",
    guest_symmetry: str = "free",
    baseline: bool = True,
    checkpoint: str | None = None,
) -> CampaignSpec:
    """The benchmark campaign of ``system`` with a PyXtal arm (``quick``: a smoke test).

    ``framework_mode`` and ``guest_symmetry`` set ``framework.mode`` and
    ``inpaint.guest_symmetry`` (the symmetry issue's comparison); ``baseline=False``
    leaves the random-search arm out; ``checkpoint`` replaces the shipped score model
    (e.g. a system fine-tune).
    """
    extra: dict = {"framework": {"mode": framework_mode}}
    if baseline:
        extra["baseline"] = {"kind": "pyxtal"}
    options = {**QUICK} if quick else {}
    options["inpaint"] = {**options.get("inpaint", {}), "guest_symmetry": guest_symmetry}
    return CampaignSpec.model_validate(
        {
            "name": f"bench-baseline-{system}",
            **SYSTEMS[system],
            "formula_units": [1, 2],
            "lattices_per_composition": 2,
            "candidates_per_lattice": 4,
            # absolute: the jobs run in a temporary folder
            "model": {
                "device": "cpu",
                "checkpoint": str(resolve_checkpoint(checkpoint).resolve()) if checkpoint else None,
            },
            "stability": {"reference": "offline", "dft": False},
            "batch_size": 48,
            "seed": seed,
            **extra,
            **options,
        }
    )


def symmetry_summary(store: JobStore, campaign: str) -> dict:
    """Symmetric shares (unconditional, inpainting, symmetric guests), what was imposed,
    and the rejection reasons per arm."""
    from chggen_flows.campaign.results import load_candidates
    from chggen_flows.report.data import normalise_frame, symmetry_rates

    frame = normalise_frame(load_candidates(store, campaign))
    rate = symmetry_rates(frame, None)[0].model_dump()
    sym = frame[frame["guest_symmetry"] == "symmetric"]
    reasons = (
        frame[~frame["valid"].fillna(True).astype(bool)]
        .assign(reason=lambda f: f["rejected_reason"].astype(str).str.split(":").str[0])
        .groupby(["arm", "reason"])
        .size()
    )
    return {
        "rates": rate,
        "imposed": sym["imposed_symbol"].value_counts().to_dict(),
        "n_subgroup": int(sym["imposed_subgroup"].fillna(False).astype(bool).sum()),
        "guest_displacement_median": float(sym["guest_displacement"].median())
        if len(sym)
        else None,
        "n_held": int(sym["symmetry_held"].fillna(False).astype(bool).sum()),
        "n_held_known": int(sym["symmetry_held"].notna().sum()),
        "rejections": {f"{a} / {r}": int(n) for (a, r), n in reasons.items()},
    }


def arm_costs(store: JobStore, campaign: str) -> dict[str, dict[str, float]]:
    """Wall time, model calls and CHGNet steps of each arm's stage jobs."""
    costs: dict[str, dict[str, float]] = {}
    for doc in store.query(
        {"metadata.campaign": campaign, "output.@class": "StageDocument"},
        properties=["output.batch_id", "output.summary", "output.provenance.wall_time_s"],
    ):
        out = doc["output"]
        arm = {"b": "chggen", "r": "baseline:pyxtal"}.get(out["batch_id"][0], "shared (E_d)")
        item = costs.setdefault(arm, {"wall_time_s": 0.0, "model_calls": 0, "chgnet_steps": 0})
        item["wall_time_s"] += float(out["provenance"].get("wall_time_s") or 0.0)
        item["model_calls"] += int(out["summary"].get("model_calls", 0))
        item["chgnet_steps"] += int(out["summary"].get("chgnet_steps", 0))
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", choices=sorted(SYSTEMS), default="Li-Si")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, help="write metrics and costs here")
    parser.add_argument("--quick", action="store_true", help="tiny settings: a smoke test")
    parser.add_argument("--framework-mode", default="first", help="first, highest or fan_out")
    parser.add_argument(
        "--guest-symmetry", default="free", help="free, symmetric or compare (inpainting)"
    )
    parser.add_argument("--no-baseline", action="store_true", help="no random-search arm")
    parser.add_argument(
        "--checkpoint", default=None, help="score model file or shipped:SYSTEM (default: shipped)"
    )
    args = parser.parse_args()
    configure_threads(args.threads)
    spec = spec_for(
        args.system,
        args.seed,
        args.quick,
        framework_mode=args.framework_mode,
        guest_symmetry=args.guest_symmetry,
        baseline=not args.no_baseline,
        checkpoint=args.checkpoint,
    )
    campaign = f"bench-{args.system.lower()}-{args.seed}"
    plan = build_flow(spec, campaign)
    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        run_locally(plan.flow, store=store, ensure_success=True, root_dir=tmp)
    wall = time.perf_counter() - start
    metrics = campaign_metrics(store, campaign)
    costs = arm_costs(store, campaign)
    table = metrics.to_frame()
    columns = [
        "arm",
        "composition",
        "n_candidates",
        "n_valid",
        "e_d_median",
        "e_d_min",
        "best_spacegroup_symbol",
        "share_e_d_below_0",
        "share_e_d_below_0.03",
        "share_e_d_below_0.1",
        "symmetric_share",
        "n_unique",
        "n_rediscovered",
        "rediscovered",
        "n_novel",
        "n_sun",
    ]
    present = [c for c in columns if c in table.columns]
    print(
        f"== {args.system}: {plan.n_candidates} candidates, {len(plan.flow.jobs)} jobs, "
        f"{wall / 60:.1f} min =="
    )
    print("| " + " | ".join(present) + " |")
    print("|" + "---|" * len(present))
    for row in table[present].to_dict("records"):
        cells = [
            f"{v:.3f}" if isinstance(v, float) else ("" if v is None else str(v))
            for v in row.values()
        ]
        print("| " + " | ".join(cells) + " |")
    print("\n| arm | wall time (min) | model calls | CHGNet steps |\n|---|---|---|---|")
    for arm, item in costs.items():
        print(
            f"| {arm} | {item['wall_time_s'] / 60:.1f} | {item['model_calls']:,} | "
            f"{item['chgnet_steps']:,} |"
        )
    symmetry = symmetry_summary(store, campaign)
    print("\nsymmetry:", json.dumps(symmetry, indent=1, default=str))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "metrics": metrics.model_dump(),
                    "costs": costs,
                    "wall_s": wall,
                    "symmetry": symmetry,
                    "settings": vars(args) | {"json": str(args.json)},
                },
                indent=1,
                default=str,
            )
        )


if __name__ == "__main__":
    main()
