"""Host search, paper's first accepted rung vs the most symmetric host (issue 13).

Prototype crystals with one species removed as the guest (antifluorite Li2O, rock salt
NaCl, fluorite CaF2, perovskite SrTiO3, wurtzite ZnS) are rattled, every atom by
exactly the amplitude in a random direction (10 seeds each), and their host is
symmetrised with ``mode="first"`` (the paper) and ``mode="highest"`` (default bounds).
For each mode the table gives the share of candidates whose host gets the true group
(the unrattled host's, at symprec 0.01), the share that get any host, the mean largest
atomic displacement of the chosen host, and the time per call.

    OPENBLAS_NUM_THREADS=1 nice python benchmarks/bench_host_search.py
    OPENBLAS_NUM_THREADS=1 nice python benchmarks/bench_host_search.py --known 250

``--known N`` takes instead the first N known hosts (by Materials Project id) of the
shared MP-20 test split (``../shared/data/structures/mp_20_biternary/test.csv.gz``):
structures within 0.05 eV/atom of the hull holding one of the guests Li, Na, K, Mg, Zn
(the first of them present is removed) and at least one other element, whose host is
not P1 at symprec 0.01; one rattle per host and amplitude, and only the totals.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def prototypes() -> dict[str, tuple[object, str]]:
    """Name -> (conventional cell, guest species)."""
    from pymatgen.core import Lattice, Structure

    def build(group, lattice, species, coords):
        return Structure.from_spacegroup(group, lattice, species, coords)

    li2o = build("Fm-3m", Lattice.cubic(4.61), ["Li", "O"], [[0.25] * 3, [0, 0, 0]])
    return {
        "Li2O antifluorite (O fcc)": (li2o, "Li"),
        "Li2O 2x2x2 (O32)": (li2o * 2, "Li"),
        "NaCl rock salt (Cl fcc)": (
            build("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5] * 3]),
            "Na",
        ),
        "CaF2 fluorite (F simple cubic)": (
            build("Fm-3m", Lattice.cubic(5.46), ["Ca", "F"], [[0, 0, 0], [0.25] * 3]),
            "Ca",
        ),
        "SrTiO3 perovskite (TiO3)": (
            build(
                "Pm-3m",
                Lattice.cubic(3.905),
                ["Sr", "Ti", "O"],
                [[0, 0, 0], [0.5] * 3, [0.5, 0.5, 0]],
            )
            * (2, 2, 2),
            "Sr",
        ),
        "ZnS wurtzite (S hcp)": (
            build(
                "P6_3mc",
                Lattice.hexagonal(3.82, 6.26),
                ["Zn", "S"],
                [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.375]],
            ),
            "Zn",
        ),
    }


KNOWN_GUESTS = ("Li", "Na", "K", "Mg", "Zn")
KNOWN_DATA = "../shared/data/structures/mp_20_biternary/test.csv.gz"


def known_hosts(n: int, path: str = KNOWN_DATA) -> dict[str, tuple[object, str]]:
    """The first ``n`` qualifying known structures (see the module docstring)."""
    import pandas as pd
    from pymatgen.core import Structure
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    frame = pd.read_csv(path).sort_values("material_id")
    frame = frame[frame["e_above_hull"] <= 0.05]
    out: dict[str, tuple[object, str]] = {}
    for row in frame.itertuples():
        structure = Structure.from_str(row.cif, fmt="cif")
        symbols = [el.symbol for el in structure.composition.elements]
        guest = next((g for g in KNOWN_GUESTS if g in symbols), None)
        if guest is None or len(symbols) < 2:
            continue
        host = structure.copy()
        host.remove_species([guest])
        if SpacegroupAnalyzer(host, symprec=0.01).get_space_group_number() < 2:
            continue
        out[f"{row.pretty_formula} {row.material_id}"] = (structure, guest)
        if len(out) == n:
            break
    return out


def rattle(structure, amplitude: float, seed: int):
    """Every atom moved by exactly ``amplitude`` Å in a random direction."""
    rattled = structure.copy()
    rng = np.random.default_rng(seed)
    shifts = rng.normal(size=(len(structure), 3))
    shifts *= amplitude / np.linalg.norm(shifts, axis=1, keepdims=True)
    for i, shift in enumerate(shifts):
        rattled.translate_sites([i], shift, frac_coords=False)
    return rattled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument(
        "--amplitudes", type=float, nargs="+", default=[0.03, 0.05, 0.08, 0.15, 0.3]
    )
    parser.add_argument("--known", type=int, default=0, help="N known MP hosts instead")
    args = parser.parse_args()
    cases = known_hosts(args.known) if args.known else prototypes()
    if args.known:
        args.seeds = 1

    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    from chggen_flows.core.symmetry import FrameworkSettings, extract_framework

    modes = {"first": FrameworkSettings(mode="first"), "highest": FrameworkSettings(mode="highest")}
    print(
        "| prototype | true group | rattle (Å) | first: true group | first: any host | "
        "first: mean max disp. (Å) | first: ms/call | highest: true group | "
        "highest: any host | highest: mean max disp. (Å) | highest: ms/call |"
    )
    print("|---" * 11 + "|")
    totals = {mode: [0, 0, 0.0, 0] for mode in modes}
    by_amplitude = {(mode, a): [0, 0] for mode in modes for a in args.amplitudes}
    for name, (structure, guest) in cases.items():
        host = structure.copy()
        host.remove_species([guest])
        true = SpacegroupAnalyzer(host, symprec=0.01).get_space_group_symbol()
        for amplitude in args.amplitudes:
            cells = []
            for mode, settings in modes.items():
                hits = found = 0
                displacements, seconds = [], 0.0
                for seed in range(args.seeds):
                    candidate = rattle(structure, amplitude, seed)
                    start = time.perf_counter()
                    result = extract_framework(candidate, [guest], settings)
                    seconds += time.perf_counter() - start
                    if result.ok:
                        found += 1
                        hits += result.spacegroup_symbol == true
                        displacements.append(result.max_displacement)
                mean = f"{np.mean(displacements):.3f}" if displacements else "-"
                cells += [
                    f"{hits}/{args.seeds}",
                    f"{found}/{args.seeds}",
                    mean,
                    f"{1e3 * seconds / args.seeds:.0f}",
                ]
                total = totals[mode]
                total[0] += hits
                total[1] += found
                total[2] += seconds
                total[3] += args.seeds
                by_amplitude[mode, amplitude][0] += hits
                by_amplitude[mode, amplitude][1] += args.seeds
            if not args.known:
                print(f"| {name} | {true} | {amplitude:g} | " + " | ".join(cells) + " |")
    for (mode, amplitude), (hits, n) in by_amplitude.items():
        print(f"{mode} at {amplitude:g} Å: true group {hits}/{n} ({100 * hits / n:.0f} %)")
    for mode, (hits, found, seconds, n) in totals.items():
        print(
            f"\n{mode}: true group {hits}/{n} ({100 * hits / n:.0f} %), any host {found}/{n}, "
            f"{1e3 * seconds / n:.0f} ms/call"
        )


if __name__ == "__main__":
    main()
