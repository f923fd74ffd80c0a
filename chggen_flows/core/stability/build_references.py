"""Build offline reference sets: known structures relaxed with CHGNet, one file per system.

Two uses:

- :func:`build_reference_set` makes a hull for any chemical system from the user's own
  structure files (``chggen reference build``, see ``docs/stability.md``).
- :func:`build` recomputes the shipped sets (run once per CHGNet model change)::

    python -m chggen_flows.core.stability.build_references \\
        --hull-dir ../shared/data/hull --out chggen_flows/data/references

Inputs of :func:`build` (in ``--hull-dir``, see its README for provenance and licences):
``mp_structures_in_target_chemsys.json.gz`` (43 records of Materials Project structures
of Zn-P-S, Li-Si and Li-P-S), ``elemental_prototypes.json.gz`` (diamond Si, hcp Zn, bcc
Li from experimental lattice constants) and ``known_structures/<system>/*.cif`` (the known
Li-Si phases, Materials Project; the Li-P phases of Mayo et al. 2016). Every distinct
structure is reduced to its primitive cell and relaxed once with CHGNet.

Every set records the known phases it lacks (``missing_phases``): E_d values next to
them are flagged (:mod:`chggen_flows.core.stability.ehull`).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from monty.serialization import loadfn
from pymatgen.core import Composition, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from chggen_flows.core.stability.references import (
    _missing_list,
    atomic_dump,
    check_elements,
    chgnet_entries,
)
from chggen_flows.errors import InputError

SYSTEMS = ("Li-Si", "Zn-P-S", "Li-P-S")
KNOWN_FILE = "mp_structures_in_target_chemsys.json.gz"
PROTOTYPE_FILE = "elemental_prototypes.json.gz"
KNOWN_DIR = "known_structures"
LICENCE = (
    "Structures: Materials Project (CC BY 4.0) via the MP-20 / MPTS-52 benchmark files "
    "(CDVAE, MIT; DiffCSP / WyckoffTransformer, Apache-2.0) and, for Li-Si, via "
    "fernandezfran/thesis (CC BY-SA 4.0); Li-P phases of Mayo et al., Chem. Mater. 2016, "
    "via ml-evs/matador test fixtures (MIT); elemental prototypes built from textbook "
    "lattice constants. Energies: computed here with CHGNet (BSD-3-Clause)."
)

#: Known phases the shipped structure files lack, per system: E_d next to them is too
#: low. Polymorphs of compositions that are present are not listed (they cannot be
#: located on the composition axis). Sources: shared/data/hull/known_structures/README.md.
MISSING_PHASES: dict[str, list[dict[str, str]]] = {
    "Li-Si": [
        {"formula": "Li17Si4", "note": "Li17Si4 / Li22Si5 (Li-rich end; Li21Si5 is present)"},
    ],
    "Zn-P-S": [
        {"formula": "Zn3P2", "note": "Zn3P2 (P4_2/nmc)"},
        {"formula": "P2S5", "note": "P4S10 (P-1)"},
        {"formula": "P4S7", "note": "P4S7"},
        {"formula": "P4S9", "note": "P4S9"},
        {"formula": "ZnP4", "note": "ZnP4"},
    ],
    "Li-P-S": [
        {"formula": "Li3PS4", "note": "Li3PS4 (beta/gamma)"},
        {"formula": "Li7PS6", "note": "Li7PS6 (argyrodite)"},
        {"formula": "Li2PS3", "note": "Li4P2S6"},
        {"formula": "LiP5", "note": "LiP5"},
        {"formula": "Li2S2", "note": "Li2S2"},
        {"formula": "P2S5", "note": "P4S10 (P-1)"},
    ],
}


@dataclass
class KnownStructure:
    """One known structure of a reference set, with where it came from."""

    structure: Structure
    source: str
    systems: set[str] = field(default_factory=set)
    provenance: dict[str, Any] = field(default_factory=dict)


def _systems_of(structure: Structure, systems: Sequence[str]) -> set[str]:
    elements = {el.symbol for el in structure.composition.elements}
    return {s for s in systems if elements <= set(s.split("-"))}


def _primitive(structure: Structure) -> Structure:
    """The primitive standard cell (fewer atoms to relax; the energy per atom is the same)."""
    try:
        return SpacegroupAnalyzer(structure, symprec=0.01).get_primitive_standard_structure()
    except Exception:  # spglib can fail on odd cells; the given cell is still correct
        return structure


def _file_id(path: Path) -> str:
    """``mp-795`` from ``LiSi_mp-795_conventional_standard.cif``, else the file's stem."""
    found = re.search(r"mp-\d+", path.name)
    return found.group(0) if found else path.name.split(".")[0]


def reference_structures(
    hull_dir: Path, systems: Sequence[str] = SYSTEMS
) -> dict[str, KnownStructure]:
    """Distinct known structures of the shipped sets, by id (MP id where there is one)."""
    found: dict[str, KnownStructure] = {}
    for record in loadfn(hull_dir / KNOWN_FILE):
        item = found.setdefault(
            record["material_id"],
            KnownStructure(
                record["structure"],
                f"{KNOWN_FILE} ({record['source']})",
                provenance={
                    "mp_formation_energy_per_atom": record["formation_energy_per_atom"],
                    "mp_e_above_hull": record["e_above_hull"],
                },
            ),
        )
        item.systems.add(record["chemsys_target"])
    for record in loadfn(hull_dir / PROTOTYPE_FILE):
        structure: Structure = record["structure"]
        element = structure.composition.elements[0].symbol
        found[f"prototype-{element}"] = KnownStructure(
            structure,
            f"{PROTOTYPE_FILE}: {record['description']}",
            _systems_of(structure, SYSTEMS),
        )
    for path in sorted((hull_dir / KNOWN_DIR).glob("*/*.cif")):
        entry_id = _file_id(path)
        structure = Structure.from_file(path)
        if entry_id in found:  # the same MP structure from another file
            continue
        found[entry_id] = KnownStructure(
            structure,
            f"{KNOWN_DIR}/{path.parent.name}/{path.name}",
            _systems_of(structure, SYSTEMS),
        )
    return {k: v for k, v in found.items() if v.systems & set(systems)}


def _missing_in(chemsys: str, missing: Sequence[Mapping[str, str]]) -> list[dict[str, str]]:
    elements = set(chemsys.split("-"))
    out = []
    for item in missing:
        comp = Composition(item["formula"])
        if {el.symbol for el in comp.elements} <= elements:
            out.append({"formula": comp.reduced_formula, "note": item.get("note", "")})
    return out


def reference_document(
    chemsys: str,
    entries: Sequence[Any],
    missing: Sequence[Mapping[str, str]] = (),
    source: str = "user structures",
    licence: str = "",
    command: str = "chggen reference build",
) -> dict[str, Any]:
    """The dict written as one offline reference set (see the references README).

    The potential, its version and weights' checksum come from the entries (written by
    :func:`~chggen_flows.core.stability.references.relaxed_entries`).
    """
    import chgnet

    from chggen_flows.core.relax.potentials import functional_of_potential

    params = dict(entries[0].parameters) if entries else {}
    potential = params.get("potential", "chgnet")
    if potential == "chgnet":
        energies = (
            f"CHGNet {chgnet.__version__} pretrained, relaxed with "
            "chggen_flows.core.relax.BatchRelaxer (default RelaxSettings)"
        )
    else:
        energies = (
            f"{potential} ({params.get('potential_version')}), relaxed with "
            "chggen_flows.core.relax.BatchRelaxer"
        )
    return {
        "chemsys": chemsys,
        "functional": functional_of_potential(potential),
        "potential": potential,
        "potential_version": params.get("potential_version"),
        "weights_checksum": params.get("weights_checksum"),
        "source": source,
        "energies": energies,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "licence": licence,
        "missing_phases": _missing_in(chemsys, missing),
        "entries": list(entries),
    }


def build_reference_set(
    structures: Mapping[str, Structure],
    chemsys: str,
    out: Path,
    missing: Sequence[str] = (),
    relax_settings: Any | None = None,
    source: str = "user structures",
    licence: str = "",
) -> Path:
    """Relax the user's known structures and write a reference set file.

    The potential is ``relax_settings.potential`` (CHGNet 0.3.0 by default); the file
    records it, and E_d against the set is refused for candidates of another one.

    Parameters
    ----------
    structures
        Known phases by id (e.g. file name); each must lie inside ``chemsys``.
    chemsys
        The chemical system, e.g. ``"Li-Si"``; every element needs an elemental structure.
    out
        Output file (``.json.gz``), usable with ``--reference FILE`` and in a spec.
    missing
        Formulas of known phases the set lacks: E_d next to them is flagged.
    relax_settings
        :class:`chggen_flows.core.relax.RelaxSettings` (the candidates' settings,
        potential included).

    Raises
    ------
    InputError
        A structure outside the system, an element without an elemental structure, or an
        output name that is not ``.json.gz``/``.json``.
    """
    elements = set(check_elements(chemsys.split("-")))
    chemsys = "-".join(sorted(elements))
    if not str(out).endswith((".json.gz", ".json")):
        raise InputError(f"output {out} must end in .json.gz or .json")
    outside = [
        i for i, s in structures.items() if not {e.symbol for e in s.composition} <= elements
    ]
    if outside:
        raise InputError(
            f"structures outside {chemsys}: {', '.join(outside)}",
            hint="give --chemsys spanning every element of the structures, or leave them out",
        )
    have = {
        s.composition.elements[0].symbol for s in structures.values() if s.composition.is_element
    }
    if elements - have:
        raise InputError(
            f"no elemental structure of {', '.join(sorted(elements - have))}",
            hint="a hull needs every element's own phase (e.g. bcc Li, diamond Si)",
        )
    missing_items = _missing_list(
        [{"formula": f, "note": f} for f in missing],
        lambda why: InputError(f"--missing: {why}", hint="give formulas such as P2S5 or Zn3P2"),
    )
    ids = list(structures)
    entries = chgnet_entries([_primitive(structures[i]) for i in ids], ids, relax_settings)
    document = reference_document(chemsys, entries, missing_items, source, licence)
    atomic_dump(document, Path(out))
    return Path(out)


def build(hull_dir: Path, out_dir: Path, systems: Sequence[str] = SYSTEMS) -> list[Path]:
    """Relax every shipped reference structure once and write one set per system."""
    known = reference_structures(hull_dir, systems)
    ids = sorted(known)
    entries = chgnet_entries([_primitive(known[i].structure) for i in ids], ids)
    for entry in entries:
        item = known[entry.entry_id]
        entry.data.update({"source": item.source, **item.provenance})
    written = []
    for system in systems:
        document = reference_document(
            system,
            [e for e in entries if system in known[e.entry_id].systems],
            MISSING_PHASES.get(system, ()),
            source="shipped offline CHGNet hull of known structures",
            licence=LICENCE,
            command="python -m chggen_flows.core.stability.build_references",
        )
        path = out_dir / f"{system}.json.gz"
        atomic_dump(document, path)
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hull-dir", type=Path, required=True, help="shared/data/hull")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS), help="chemical systems")
    args = parser.parse_args(argv)
    for path in build(args.hull_dir, args.out, args.systems):
        print(path)


if __name__ == "__main__":
    main()
