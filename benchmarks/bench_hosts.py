"""Hosts from known crystals, random symmetric frameworks and disordered CIFs (issue 26).

Three benchmarks, from the science core only (inpainting, CHGNet relaxation, E_d on the
offline CHGNet reference; no campaign, no database):

``zn-p-s``
    ZnP2S6, Zn2P2S7, ZnPS3 at Z = 1, 2. Templates: the shared MP structure sets
    (MP-20 bi/ternary and MPTS-52 val/test) related to Zn-P-S with every Zn compound
    excluded. Arms: analogue inpainting (``--per-host`` candidates per template, up to
    ``--templates`` templates per composition and Z) and plain substitution of the same
    templates (one-for-one where the counts allow, no inpainting).
``li-si``
    Li5Si2, Li2Si, Li4Si at Z = 1, 2. Arms: random symmetric Si frameworks (PyXtal)
    + Li inpainting, and the PyXtal arm (random symmetric structures of all atoms).
``disordered``
    Li0.5CoO2 (LiCoO2 mp-22526, Li at occupancy 0.5, R-3m conventional cell) and
    LiCo0.5Ni0.5O2 (mixed Co/Ni site) on the smallest supercell with whole counts:
    lowest relaxed energy of ``--inpaint`` inpainted candidates vs the distinct
    orderings among the best ``--ewald`` Ewald orderings vs every distinct ordering of
    the listed sites (enumeration, <= 500).

Per arm: candidates, share reaching E_d, median E_d, share of all candidates below
0.03 / 0.1 eV/atom, symmetric share (final group not P1/P-1 at symprec 0.1), unique
(StructureMatcher de-duplication), known phases rediscovered, and the cost (model
calls, CHGNet steps, wall seconds).

    OPENBLAS_NUM_THREADS=1 nice -n 10 python benchmarks/bench_hosts.py zn-p-s --json out.json
    OPENBLAS_NUM_THREADS=1 nice -n 10 python benchmarks/bench_hosts.py disordered --quick
"""

from __future__ import annotations

import argparse
import glob
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "structures"
SHARED_FALLBACK = Path("/work/shared/data/structures")
SYSTEMS = {
    "zn-p-s": (["ZnP2S6", "Zn2P2S7", "ZnPS3"], "Zn", "Zn-P-S"),
    "li-si": (["Li5Si2", "Li2Si", "Li4Si"], "Li", "Li-Si"),
}
DATA = Path(__file__).resolve().parents[1] / "tests" / "test_data" / "hosts"


def structure_files() -> list[str]:
    root = SHARED if SHARED.exists() else SHARED_FALLBACK
    return sorted(
        glob.glob(str(root / "mp_20_biternary" / "*.csv.gz"))
        + glob.glob(str(root / "mpts_52" / "*.csv.gz"))
    )


def sampler(args: argparse.Namespace):
    from chggen_flows.core.generation import InpaintSettings, SamplerSettings

    return (
        SamplerSettings(n_levels=args.levels, n_corrector=args.correctors),
        InpaintSettings(jump_length=args.jump, n_resample=args.resample),
    )


class Relaxer:
    """CHGNet relaxation with step and time accounting."""

    def __init__(self, max_steps: int) -> None:
        from chggen_flows.core.relax import BatchRelaxer, RelaxSettings

        self.relaxer = BatchRelaxer(
            RelaxSettings(max_steps=max_steps, device="cpu", threads=1, graph_workers=0)
        )

    def __call__(self, structures: list) -> tuple[list, int, float]:
        if not structures:
            return [], 0, 0.0
        start = time.perf_counter()
        log(f"relaxing {len(structures)} structures")
        records = self.relaxer.relax(structures, progress=False)
        steps = sum(r.n_steps or 0 for r in records)
        return records, steps, time.perf_counter() - start


#: Rows finished so far and where to save them (written after every arm, so a run
#: stopped by its time cap keeps what it measured).
PARTIAL: dict[str, Any] = {"rows": [], "path": None}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def save_partial(row: dict[str, Any]) -> dict[str, Any]:
    PARTIAL["rows"].append(row)
    log(f"arm done: {json.dumps(row, default=str)}")
    if PARTIAL["path"]:
        Path(PARTIAL["path"]).with_suffix(".partial.json").write_text(
            json.dumps(PARTIAL["rows"], indent=1, default=str)
        )
    return row


def arm_metrics(
    name: str,
    planned: int,
    records: list,
    system: str | None,
    cost: dict[str, float],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The issue's per-arm figures from relaxed records."""
    import math

    from chggen_flows.core.analysis.references import named_known_structures
    from chggen_flows.core.analysis.search_metrics import rediscoveries
    from chggen_flows.core.stability import compute_e_d, deduplicate, get_reference
    from chggen_flows.core.symmetry import NOT_SYMMETRIC, classify_symmetry

    ok = [
        (i, r)
        for i, r in enumerate(records)
        if r.rejected_reason is None and math.isfinite(r.final_energy_per_atom)
    ]
    e_d: dict[int, float] = {}
    if system and ok:
        provider = get_reference("offline")
        values = compute_e_d(
            [(r.structure.composition, r.final_energy_per_atom) for _, r in ok], provider
        )
        e_d = {i: v.e_d for (i, _), v in zip(ok, values, strict=True)}
    groups = {i: classify_symmetry(r.structure, 0.1, 10).number for i, r in ok}
    dedup = deduplicate([(str(i), r.structure, r.final_energy_per_atom, groups[i]) for i, r in ok])
    found: dict[str, list[str]] = {}
    if system and ok:
        known = named_known_structures(system, compounds_only=True)
        hits = rediscoveries({str(i): r.structure for i, r in ok}, known)
        found = {k: v for k, v in hits.items() if v}
    values = sorted(e_d.values())
    return save_partial(
        {
            "arm": name,
            "candidates": planned,
            "relaxed": len(ok),
            "reach_e_d": len(values),
            "share_reach_e_d": round(len(values) / planned, 3) if planned else None,
            "median_e_d": round(statistics.median(values), 4) if values else None,
            "share_below_0.03": round(sum(v < 0.03 for v in values) / planned, 3)
            if planned
            else None,
            "share_below_0.1": round(sum(v < 0.1 for v in values) / planned, 3)
            if planned
            else None,
            "symmetric_share": round(
                sum(g not in NOT_SYMMETRIC for g in groups.values()) / len(groups), 3
            )
            if groups
            else None,
            "unique": len(dedup.representatives),
            "rediscovered": sorted({name for names in found.values() for name in names}),
            "best_energy_per_atom": round(min(r.final_energy_per_atom for _, r in ok), 5)
            if ok
            else None,
            **cost,
            **(extra or {}),
        }
    )


def bench_zn_p_s(args: argparse.Namespace) -> list[dict[str, Any]]:
    from chggen_flows.core.generation import InpaintSettings
    from chggen_flows.core.generation.inpaint import symmetric_candidate
    from chggen_flows.core.generation.volume import estimate_v0
    from chggen_flows.core.hosts import (
        AnalogueTarget,
        find_analogue_hosts,
        substitute,
    )
    from chggen_flows.core.model.checkpoint import load_score_model
    from chggen_flows.core.sources import SourceFilter, load_structures
    from chggen_flows.core.stability import get_reference

    compositions, guest, system = SYSTEMS["zn-p-s"]
    entries = load_structures(
        structure_files(),
        SourceFilter.build(related_to=system, exclude_elements=[guest], ordered_only=True),
    )
    diagram = get_reference("offline").phase_diagram(system.split("-"))
    seeds, hosts, substituted, template_log = [], [], [], []
    labels: list[tuple[str, bool]] = []
    sub_labels: list[str] = []
    for composition in compositions:
        from pymatgen.core import Composition

        v0 = estimate_v0(Composition(composition), phase_diagram=diagram).volume_per_atom
        for z in args.z:
            search = find_analogue_hosts(
                AnalogueTarget.build(composition, z, [guest]),
                entries,
                v0=v0,
                max_templates=args.templates,
            )
            template_log.append(
                {
                    "target": f"{composition} Z={z}",
                    "v0": round(v0, 3),
                    "templates": [
                        h.template["material_id"] + " " + h.template["formula"]
                        for h in search.hosts
                    ],
                    "skipped": len(search.skipped),
                }
            )
            for host in search.hosts:
                exchanged = substitute(host)
                swappable = not hasattr(exchanged, "reason")
                for _ in range(args.per_host):
                    seeds.append(host.seed)
                    hosts.append(host)
                    labels.append((f"{composition} Z={z}", swappable))
                if swappable:
                    substituted.append(exchanged)
                    sub_labels.append(f"{composition} Z={z}")
    sampler_settings, _ = sampler(args)
    model = load_score_model(args.checkpoint, device="cpu")
    relax = Relaxer(args.steps)
    if args.only_starts:  # a scan of start sigmas; the other arms ran before
        rows = [
            row
            for sigma in ([] if args.control_only else args.guest_start)
            for row in warm_start_arm(args, sigma, hosts, labels, model, relax, system)
        ]
        if args.control or args.control_only:
            for sigma in args.guest_start:
                rows += rattle_control_arm(args, sigma, hosts, labels, relax, system)
        return rows
    candidates, calls, inpaint_time = inpaint_seeds(args, seeds, model)
    # every candidate is relaxed (invalid ones come back rejected), so records align
    records, steps, relax_time = relax([c.structure for c in candidates])
    invalid = sum(not c.valid for c in candidates)
    rows = [
        arm_metrics(
            "analogue inpainting",
            len(candidates),
            records,
            system,
            {
                "model_calls": calls,
                "chgnet_steps": steps,
                "wall_s": round(inpaint_time + relax_time, 1),
            },
            {"invalid_after_inpainting": invalid},
        )
    ]
    rows += per_target_rows("analogue inpainting", records, labels, system)
    for sigma in args.guest_start or []:
        rows += warm_start_arm(args, sigma, hosts, labels, model, relax, system)
    if args.no_symmetric:
        return [
            *rows,
            *substitution_rows(relax, substituted, sub_labels, system),
            {"templates": template_log},
        ]
    # the campaign's symmetric-guest arm: guests snapped onto the host's symmetry, kept
    # through the relaxation
    symmetric_settings = InpaintSettings(
        jump_length=args.jump, n_resample=args.resample, guest_symmetry="symmetric"
    )
    snapped = [
        symmetric_candidate(c, s.guests, symmetric_settings, sampler_settings)
        for c, s in zip(candidates, seeds, strict=True)
    ]
    start = time.perf_counter()
    log(f"relaxing {len(snapped)} symmetric-guest copies")
    sym_records = relax.relaxer.relax(
        [c.structure for c in snapped], progress=False, fix_symmetry=[c.valid for c in snapped]
    )
    rows.append(
        arm_metrics(
            "analogue inpainting, symmetric guests",
            len(snapped),
            sym_records,
            system,
            {
                "model_calls": calls,
                "chgnet_steps": sum(r.n_steps or 0 for r in sym_records),
                "wall_s": round(inpaint_time + time.perf_counter() - start, 1),
            },
        )
    )
    rows += substitution_rows(relax, substituted, sub_labels, system)
    return [*rows, {"templates": template_log}]


def inpaint_seeds(args: argparse.Namespace, seeds: list, model: Any) -> tuple[list, int, float]:
    """Inpaint the guests of every host seed: candidates, model calls, seconds."""
    from chggen_flows.core.hosts import inpaint_hosts

    sampler_settings, inpaint_settings = sampler(args)
    log(f"inpainting {len(seeds)} candidates")
    start = time.perf_counter()
    candidates = inpaint_hosts(
        seeds, model, sampler_settings, inpaint_settings, seed=args.seed, device="cpu",
        progress=False,
    )  # fmt: skip
    calls = sum(c.metadata.get("model_calls", 0) for c in candidates)
    return candidates, calls, time.perf_counter() - start


def per_target_rows(
    name: str, records: list, labels: list[tuple[str, bool]], system: str
) -> list[dict[str, Any]]:
    """An arm's metrics on the templates plain substitution covers, and per target."""
    same = [r for r, (_, swappable) in zip(records, labels, strict=True) if swappable]
    rows = [
        arm_metrics(f"{name}, templates plain substitution covers", len(same), same, system, {})
    ]
    for label in dict.fromkeys(lab for lab, _ in labels):
        part = [r for r, (lab, _) in zip(records, labels, strict=True) if lab == label]
        rows.append(arm_metrics(f"{name} | {label}", len(part), part, system, {}))
    return rows


def substitution_rows(
    relax: Relaxer, substituted: list, sub_labels: list[str], system: str
) -> list[dict[str, Any]]:
    """The plain-substitution arm: relaxed as given, no inpainting."""
    records, steps, relax_time = relax(substituted)
    rows = [
        arm_metrics(
            "plain substitution",
            len(substituted),
            records,
            system,
            {"model_calls": 0, "chgnet_steps": steps, "wall_s": round(relax_time, 1)},
        )
    ]
    for label in dict.fromkeys(sub_labels):
        part = [r for r, lab in zip(records, sub_labels, strict=True) if lab == label]
        rows.append(arm_metrics(f"plain substitution | {label}", len(part), part, system, {}))
    return rows


def warm_start_arm(
    args: argparse.Namespace,
    sigma: float,
    hosts: list,
    labels: list,
    model: Any,
    relax: Relaxer,
    system: str,
) -> list[dict[str, Any]]:
    """The analogue arm again, the guests starting at the template's cation sites
    (``hosts.guest_start_sigma``; the prior where the template has too few)."""
    from dataclasses import replace

    from chggen_flows.core.hosts import template_guest_start

    seeds, n_warm = [], 0
    for index, host in enumerate(hosts):
        start = template_guest_start(host, sigma, seed=args.seed + index)
        if isinstance(start, str):
            seeds.append(host.seed)
        else:
            seeds.append(replace(host.seed, host=start.attach(host.seed.host)))
            n_warm += 1
    name = f"analogue, guests from template sites (sigma {sigma:g})"
    log(f"{n_warm} of {len(seeds)} candidates start from template sites")
    candidates, calls, inpaint_time = inpaint_seeds(args, seeds, model)
    records, steps, relax_time = relax([c.structure for c in candidates])
    costs = {
        "model_calls": calls,
        "chgnet_steps": steps,
        "wall_s": round(inpaint_time + relax_time, 1),
    }
    row = arm_metrics(
        name, len(candidates), records, system, costs, {"from_template_sites": n_warm}
    )
    return [row, *per_target_rows(name, records, labels, system)]


def rattle_control_arm(
    args: argparse.Namespace, sigma: float, hosts: list, labels: list, relax: Relaxer, system: str
) -> list[dict[str, Any]]:
    """The control of a warm start: the guests at the same template sites plus the same
    Gaussian noise, relaxed with no model step (what the model adds, if anything)."""
    import numpy as np

    from chggen_flows.core.hosts import template_guest_start

    structures, kept = [], []
    for index, (host, label) in enumerate(zip(hosts, labels, strict=True)):
        start = template_guest_start(host, sigma, seed=args.seed + index)
        if isinstance(start, str):
            continue
        rng = np.random.default_rng([args.seed, index])
        structure = host.seed.host.copy()
        lattice = structure.lattice
        for symbol, frac in zip(start.species, start.frac_coords, strict=True):
            cart = lattice.get_cartesian_coords(frac) + rng.normal(0.0, sigma, 3)
            structure.append(symbol, cart, coords_are_cartesian=True)
        structures.append(structure)
        kept.append(label)
    records, steps, relax_time = relax(structures)
    name = f"control: template sites + noise {sigma:g} A, no model"
    costs = {"model_calls": 0, "chgnet_steps": steps, "wall_s": round(relax_time, 1)}
    row = arm_metrics(name, len(structures), records, system, costs)
    return [row, *per_target_rows(name, records, kept, system)]


def bench_li_si(args: argparse.Namespace) -> list[dict[str, Any]]:
    from pymatgen.core import Composition

    from chggen_flows.core.baseline.random_search import random_search
    from chggen_flows.core.generation import GenerationRequest
    from chggen_flows.core.generation.volume import estimate_v0
    from chggen_flows.core.hosts import AnalogueTarget, random_frameworks
    from chggen_flows.core.model.checkpoint import load_score_model
    from chggen_flows.core.stability import get_reference

    compositions, guest, system = SYSTEMS["li-si"]
    diagram = get_reference("offline").phase_diagram(system.split("-"))
    targets, requests = [], []
    for composition in compositions:
        v0 = estimate_v0(Composition(composition), phase_diagram=diagram).volume_per_atom
        for z in args.z:
            targets.append((AnalogueTarget.build(composition, z, [guest]), v0, z))
            requests.extend(
                GenerationRequest(Composition(composition), z, v0=v0)
                for _ in range(args.per_target)
            )
    model = load_score_model(args.checkpoint, device="cpu")
    relax = Relaxer(args.steps)

    def framework_arm(name: str, sigma: float | None) -> tuple[dict, list, list, int, float]:
        seeds = [
            seed
            for target, v0, z in targets
            for seed in random_frameworks(
                target, args.per_target, v0=v0, seed=args.seed + z, guest_start_sigma=sigma
            )
        ]
        candidates, calls, inpaint_time = inpaint_seeds(args, seeds, model)
        valid = [c.structure for c in candidates if c.valid]
        records, steps, relax_time = relax(valid)
        costs = {
            "model_calls": calls,
            "chgnet_steps": steps,
            "wall_s": round(inpaint_time + relax_time, 1),
        }
        extra = {"invalid_after_inpainting": len(candidates) - len(valid)}
        row = arm_metrics(name, len(candidates), records, system, costs, extra)
        return row, candidates, seeds, calls, inpaint_time

    frameworks, candidates, seeds, calls, inpaint_time = framework_arm(
        "random frameworks + inpainting", None
    )
    rows = [frameworks]
    if args.guest_start:
        sigma = args.guest_start[0]
        name = f"random frameworks, guests from PyXtal sites (sigma {sigma:g})"
        rows.append(framework_arm(name, sigma)[0])
    if not args.no_symmetric:
        rows.append(symmetric_guest_row(args, candidates, seeds, calls, inpaint_time, relax))
    start = time.perf_counter()
    baseline = random_search(requests, seed=args.seed, phase_diagram=diagram)
    made = time.perf_counter() - start
    valid = [c.structure for c in baseline if c.valid]
    records, steps, relax_time = relax(valid)
    pyxtal = arm_metrics(
        "pyxtal",
        len(baseline),
        records,
        system,
        {"model_calls": 0, "chgnet_steps": steps, "wall_s": round(made + relax_time, 1)},
    )
    return [*rows, pyxtal]


def symmetric_guest_row(
    args: argparse.Namespace, candidates: list, seeds: list, calls: int, inpaint_time: float,
    relax: Relaxer,
) -> dict[str, Any]:  # fmt: skip
    """The frameworks arm's symmetric-guest copies, relaxed with their symmetry kept."""
    from chggen_flows.core.generation import InpaintSettings
    from chggen_flows.core.generation.inpaint import symmetric_candidate

    sampler_settings, _ = sampler(args)
    system = SYSTEMS["li-si"][2]
    symmetric_settings = InpaintSettings(
        jump_length=args.jump, n_resample=args.resample, guest_symmetry="symmetric"
    )
    snapped = [
        symmetric_candidate(c, s.guests, symmetric_settings, sampler_settings)
        for c, s in zip(candidates, seeds, strict=True)
    ]
    start = time.perf_counter()
    log(f"relaxing {len(snapped)} symmetric-guest copies")
    sym_records = relax.relaxer.relax(
        [c.structure for c in snapped], progress=False, fix_symmetry=[c.valid for c in snapped]
    )
    return arm_metrics(
        "random frameworks + inpainting, symmetric guests",
        len(snapped),
        sym_records,
        system,
        {
            "model_calls": calls,
            "chgnet_steps": sum(r.n_steps or 0 for r in sym_records),
            "wall_s": round(inpaint_time + time.perf_counter() - start, 1),
        },
    )


def disordered_cases() -> dict[str, Any]:
    from pymatgen.core import Structure

    li = Structure.from_file(DATA / "Li0.5CoO2_from_mp-22526.cif")
    mixed = li.copy()
    mixed.replace_species({"Li": "Li"})  # Li back to full occupancy
    for i, site in enumerate(mixed):
        if site.species.num_atoms < 1:
            mixed.replace(i, "Li", site.frac_coords)
    mixed.replace_species({"Co": {"Co": 0.5, "Ni": 0.5}})
    return {"Li0.5CoO2 (Li site 0.5)": li, "LiCo0.5Ni0.5O2 (mixed Co/Ni site)": mixed}


def bench_disordered(args: argparse.Namespace) -> list[dict[str, Any]]:
    from pymatgen.analysis.structure_matcher import StructureMatcher

    from chggen_flows.core.hosts import (
        count_orderings,
        disordered_host,
        enumerate_orderings,
        ewald_orderings,
    )
    from chggen_flows.core.model.checkpoint import load_score_model

    model = load_score_model(args.checkpoint, device="cpu")
    relax = Relaxer(args.steps)
    out = []
    for name, structure in disordered_cases().items():
        host = disordered_host(structure)
        log(f"{name}:")
        candidates, calls, inpaint_time = inpaint_seeds(args, [host.seed] * args.inpaint, model)
        valid = [c.structure for c in candidates if c.valid]
        records, steps, relax_time = relax(valid)
        rows = [
            arm_metrics(
                "inpainting",
                len(candidates),
                records,
                None,
                {
                    "model_calls": calls,
                    "chgnet_steps": steps,
                    "wall_s": round(inpaint_time + relax_time, 1),
                },
                {"invalid_after_inpainting": len(candidates) - len(valid)},
            )
        ]
        start = time.perf_counter()
        ranked = [item["structure"] for item in ewald_orderings(host, args.ewald)]
        matcher = StructureMatcher(primitive_cell=False, scale=False, attempt_supercell=False)
        distinct = [group[0] for group in matcher.group_structures(ranked)]
        made = time.perf_counter() - start
        records, steps, relax_time = relax(distinct)
        rows.append(
            arm_metrics(
                f"Ewald best {args.ewald} ({len(distinct)} distinct)",
                len(distinct),
                records,
                None,
                {"model_calls": 0, "chgnet_steps": steps, "wall_s": round(made + relax_time, 1)},
            )
        )
        start = time.perf_counter()
        total = count_orderings(host, 500)
        every = enumerate_orderings(host, 500)
        made = time.perf_counter() - start
        if every is not None:
            records, steps, relax_time = relax(every)
            rows.append(
                arm_metrics(
                    f"enumeration ({total} orderings, {len(every)} distinct)",
                    len(every),
                    records,
                    None,
                    {
                        "model_calls": 0,
                        "chgnet_steps": steps,
                        "wall_s": round(made + relax_time, 1),
                    },
                )
            )
        best_enum = rows[-1]["best_energy_per_atom"] if every is not None else None
        for row in rows:
            row["case"] = name
            row["host"] = host.seed.host.composition.formula
            row["guests"] = host.guests
            row["multiple"] = host.seed.info["multiple"]
            if best_enum is not None and row["best_energy_per_atom"] is not None:
                row["best_minus_enumeration_meV"] = round(
                    1000 * (row["best_energy_per_atom"] - best_enum), 1
                )
        out.extend(rows)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("benchmark", choices=["zn-p-s", "li-si", "disordered"])
    parser.add_argument("--z", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--templates", type=int, default=8, help="templates per composition and Z")
    parser.add_argument("--per-host", type=int, default=1, help="inpaintings per template")
    parser.add_argument(
        "--per-target", type=int, default=8, help="li-si: frameworks per composition and Z"
    )
    parser.add_argument("--inpaint", type=int, default=16, help="disordered: inpainted candidates")
    parser.add_argument("--ewald", type=int, default=16, help="disordered: Ewald orderings kept")
    parser.add_argument("--levels", type=int, default=200, help="sampler noise levels (paper 200)")
    parser.add_argument("--correctors", type=int, default=5, help="corrector steps (paper 5)")
    parser.add_argument("--jump", type=int, default=10, help="RePaint jump length (paper 10)")
    parser.add_argument("--resample", type=int, default=3, help="RePaint passes (paper 3)")
    parser.add_argument("--steps", type=int, default=500, help="CHGNet FIRE steps at most")
    parser.add_argument("--checkpoint", default=None, help="score model (default: shipped)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--guest-start",
        type=float,
        nargs="+",
        default=None,
        help="zn-p-s: add the analogue arm with guests from the template sites at each sigma "
        "(A); li-si: the frameworks arm with guests from PyXtal's sites (first sigma)",
    )
    parser.add_argument(
        "--only-starts", action="store_true", help="zn-p-s: only the --guest-start arms"
    )
    parser.add_argument(
        "--control",
        action="store_true",
        help="zn-p-s with --only-starts: also the template sites + noise, relaxed with no model",
    )
    parser.add_argument(
        "--control-only", action="store_true", help="zn-p-s with --only-starts: the control only"
    )
    parser.add_argument(
        "--no-symmetric", action="store_true", help="zn-p-s: skip the symmetric-guest copies"
    )
    parser.add_argument("--quick", action="store_true", help="smoke test: tiny sizes")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.quick:
        args.templates, args.per_target, args.inpaint, args.ewald = 1, 1, 2, 2
        args.levels, args.correctors, args.jump, args.resample, args.steps = 4, 1, 2, 1, 3
        args.z = [2] if args.benchmark != "li-si" else [1]
    import torch

    from chggen_flows.core.device import configure_threads

    configure_threads(1)
    PARTIAL["path"] = str(args.json) if args.json else None
    torch.manual_seed(args.seed)
    start = time.perf_counter()
    rows = {"zn-p-s": bench_zn_p_s, "li-si": bench_li_si, "disordered": bench_disordered}[
        args.benchmark
    ](args)
    settings = {k: v for k, v in vars(args).items() if k != "json"}
    settings["json"] = str(args.json) if args.json else None
    result = {
        "benchmark": args.benchmark,
        "settings": settings,
        "rows": rows,
        "total_s": round(time.perf_counter() - start, 1),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    text = json.dumps(result, indent=1, default=str)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)


if __name__ == "__main__":
    main()
