"""Did generation beat the baselines? One campaign with every arm, on one system.

Runs a CHGGen campaign locally with jobflow (the real stage jobs, in-memory JobStore, no
FireWorks): the unconditional arm (the shipped score model with the paper's sampler,
CHGNet relaxations at the default settings, the offline reference hull, no DFT), a
PyXtal random-search arm (``baseline: {kind: pyxtal}``), and optionally the host arms
of issue 26 (``--hosts analogue substitution frameworks``, templates from the shared MP
structure sets with the guest elements excluded) and the adaptation stage of issue 28
(``--adapt``: the model fine-tuned on the shared MP structures related to the system,
the target compositions held out). Then prints the search metrics per arm (``chggen
results --metrics``, costs included) and, with ``--adapt`` or ``--held-out``, whether
the held-out known phases of the targets were found.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_baseline.py --system Li-Si --json li_si.json
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_baseline.py --system Zn-P-S \
        --checkpoint shipped:Zn-P-S --hosts analogue substitution --json zn_p_s.json
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_baseline.py --system Li-P-S --no-baseline \
        --adapt --json li_p_s_adapt.json
"""

from __future__ import annotations

import argparse
import glob
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
    "Li-P-S": {"compositions": ["Li3PS4", "Li4P2S6", "Li7P3S11"], "guests": ["Li"]},
}
SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "structures"


def shared_structure_files() -> list[str]:
    """The shared MP-20 bi/ternary and MPTS-52 sets (templates and adaptation source)."""
    root = SHARED if SHARED.exists() else Path("/work/shared/data/structures")
    files = sorted(
        glob.glob(str(root / "mp_20_biternary" / "*.csv.gz"))
        + glob.glob(str(root / "mpts_52" / "*.csv.gz"))
    )
    if not files:
        raise SystemExit(f"no shared structure sets under {root}")
    return [str(Path(f).resolve()) for f in files]


#: ``--short``: the shortened sampler of the host benchmarks, fewer CHGNet steps.
SHORT = {
    "sampler": {"n_levels": 60, "n_corrector": 2},
    "inpaint": {"n_resample": 2},
    "relax": {"max_steps": 200},
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
    compositions: list[str] | None = None,
    hosts: dict | None = None,
    adapt: dict | None = None,
    short: dict | None = None,
) -> CampaignSpec:
    """The benchmark campaign of ``system`` with a PyXtal arm (``quick``: a smoke test).

    ``framework_mode`` and ``guest_symmetry`` set ``framework.mode`` and
    ``inpaint.guest_symmetry`` (the symmetry issue's comparison); ``baseline=False``
    leaves the random-search arm out; ``checkpoint`` replaces the shipped score model
    (e.g. a system fine-tune); ``compositions`` replaces the system's targets; ``hosts``
    and ``adapt`` are the ``hosts`` and ``model.adapt`` sections; ``short`` replaces
    sampler, inpaint and relax settings (``{"sampler": {...}, ...}``).
    """
    extra: dict = {"framework": {"mode": framework_mode}}
    if baseline:
        extra["baseline"] = {"kind": "pyxtal"}
    if hosts:
        extra["hosts"] = hosts
    model: dict = {
        "device": "cpu",
        # absolute: the jobs run in a temporary folder
        "checkpoint": str(resolve_checkpoint(checkpoint).resolve()) if checkpoint else None,
    }
    if adapt:
        model["adapt"] = adapt
    options = {**QUICK} if quick else {}
    for section, values in (short or {}).items():
        options[section] = {**options.get(section, {}), **values}
    options["inpaint"] = {**options.get("inpaint", {}), "guest_symmetry": guest_symmetry}
    return CampaignSpec.model_validate(
        {
            "name": f"bench-baseline-{system}",
            **SYSTEMS[system],
            **({"compositions": compositions} if compositions else {}),
            "formula_units": [1, 2],
            "lattices_per_composition": 2,
            "candidates_per_lattice": 4,
            "model": model,
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


def held_out_found(
    store: JobStore, campaign: str, compositions: list[str], sources: list[str]
) -> dict[str, dict]:
    """The known phases of ``compositions`` in ``sources`` (what ``--adapt`` holds out)
    and, per arm, which of them a valid candidate matches (StructureMatcher defaults)."""
    from pymatgen.analysis.structure_matcher import StructureMatcher
    from pymatgen.core import Composition

    from chggen_flows.campaign.results import load_candidates, load_structures
    from chggen_flows.core.sources.base import SourceFilter
    from chggen_flows.core.sources.base import load_structures as load_source

    targets = frozenset(Composition(c).reduced_formula for c in compositions)
    known = load_source(sources, SourceFilter(formulas=targets))
    frame = load_candidates(store, campaign)
    valid = frame[frame["valid"].astype(bool)]
    structures = load_structures(store, campaign, valid["candidate_id"])
    matcher = StructureMatcher()
    found: dict[str, dict] = {
        "known": {e.material_id: e.structure.composition.reduced_formula for e in known}
    }
    for arm, group in valid.assign(arm=valid["arm"].fillna("chggen")).groupby("arm"):
        hits = set()
        for cid in group["candidate_id"]:
            structure = structures.get(cid)
            if structure is None:
                continue
            for entry in known:
                same = entry.structure.composition.reduced_formula == (
                    structure.composition.reduced_formula
                )
                if same and matcher.fit(structure, entry.structure):
                    hits.add(entry.material_id)
        found[str(arm)] = sorted(hits)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", choices=sorted(SYSTEMS), default="Li-Si")
    parser.add_argument("--compositions", nargs="+", help="replace the system's targets")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tag", default="", help="added to the campaign id (parallel runs)")
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
    parser.add_argument(
        "--hosts", nargs="+", default=[], help="host arms: analogue substitution frameworks"
    )
    parser.add_argument("--templates", type=int, default=8, help="hosts.max_templates")
    parser.add_argument("--per-host", type=int, default=2, help="hosts.candidates_per_host")
    parser.add_argument(
        "--frameworks-per-target", type=int, default=8, help="hosts.frameworks_per_target"
    )
    parser.add_argument("--adapt", action="store_true", help="model.adapt on the shared MP sets")
    parser.add_argument("--adapt-steps", type=int, default=1000, help="model.adapt.max_steps")
    parser.add_argument("--adapt-minutes", type=float, default=20.0)
    parser.add_argument(
        "--held-out", action="store_true", help="report the targets' known phases found"
    )
    parser.add_argument(
        "--short",
        action="store_true",
        help="shortened sampler (60 levels, 2 correctors, 2 RePaint passes), <= 200 CHGNet steps",
    )
    args = parser.parse_args()
    configure_threads(args.threads)
    compositions = args.compositions or SYSTEMS[args.system]["compositions"]
    sources = shared_structure_files() if (args.hosts or args.adapt or args.held_out) else []
    hosts = None
    if args.hosts:
        hosts = {
            "arms": args.hosts,
            "max_templates": args.templates,
            "candidates_per_host": args.per_host,
            "frameworks_per_target": args.frameworks_per_target,
        }
        if set(args.hosts) - {"frameworks"}:
            # honest templates: no compound of a guest element (no Zn compound for Zn-P-S)
            hosts |= {"source": sources, "exclude_elements": SYSTEMS[args.system]["guests"]}
    adapt = None
    if args.adapt:
        adapt = {
            "source": sources,
            "max_steps": 40 if args.quick else args.adapt_steps,
            "max_minutes": args.adapt_minutes,
            "steps_per_epoch": 100,
            "exclude_formulas": compositions,
        }
    spec = spec_for(
        args.system,
        args.seed,
        args.quick,
        framework_mode=args.framework_mode,
        guest_symmetry=args.guest_symmetry,
        baseline=not args.no_baseline,
        checkpoint=args.checkpoint,
        compositions=args.compositions,
        hosts=hosts,
        adapt=adapt,
        short=SHORT if args.short else None,
    )
    # an adaptation resumes from its run folder, which is named by the campaign id
    campaign = f"bench-{args.system.lower()}-{args.seed}{'-' + args.tag if args.tag else ''}"
    plan = build_flow(spec, campaign)
    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        run_locally(plan.flow, store=store, ensure_success=True, root_dir=tmp)
    wall = time.perf_counter() - start
    metrics = campaign_metrics(store, campaign)
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
    costs = {arm.arm: arm.costs for arm in metrics.arms}
    print("\n| arm | wall time (min) | model calls | CHGNet steps |\n|---|---|---|---|")
    for arm, item in costs.items():
        print(
            f"| {arm} | {item.get('wall_time_s', 0) / 60:.1f} | "
            f"{int(item.get('model_calls', 0)):,} | {int(item.get('chgnet_steps', 0)):,} |"
        )
    symmetry = symmetry_summary(store, campaign)
    print("\nsymmetry:", json.dumps(symmetry, indent=1, default=str))
    held_out = None
    if args.adapt or args.held_out:
        held_out = held_out_found(store, campaign, compositions, sources)
        print("\nheld-out known phases found:", json.dumps(held_out, indent=1))
    adaptation = adaptation_summary(store, campaign) if args.adapt else None
    if adaptation:
        print("\nadaptation:", json.dumps(adaptation, indent=1, default=str))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "metrics": metrics.model_dump(),
                    "costs": costs,
                    "wall_s": wall,
                    "symmetry": symmetry,
                    "held_out": held_out,
                    "adaptation": adaptation,
                    "settings": vars(args) | {"json": str(args.json)},
                },
                indent=1,
                default=str,
            )
        )


def adaptation_summary(store: JobStore, campaign: str) -> dict | None:
    """The adapt job's output (related structures, steps, held-out losses, wall time)."""
    for doc in store.query(
        {"metadata.campaign": campaign, "name": {"$regex": "adapt"}}, properties=["output"]
    ):
        output = doc.get("output")
        if isinstance(output, dict):
            return {k: v for k, v in output.items() if k not in ("checkpoint", "structure")}
    return None


if __name__ == "__main__":
    main()
