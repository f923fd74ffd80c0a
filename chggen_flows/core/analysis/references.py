"""Known structures of a chemical system for the locality comparison, from the package.

The offline E_d reference sets shipped in ``chggen_flows/data/references`` hold the
CHGNet-relaxed known structures of Li-Si, Zn-P-S and Li-P-S (see their README for
provenance); they double as the "database structures" of the paper's Fig. 2.
"""

from __future__ import annotations

from collections.abc import Sequence

from pymatgen.core import Structure

from chggen_flows.core.stability.references import load_reference_set, shipped_reference_files
from chggen_flows.errors import ReferenceDataError


def _shipped_entries(wanted: set[str], compounds_only: bool) -> dict[str, object]:
    """Entries with structures inside ``wanted`` from the shipped sets, one per entry id
    (the sets share their elemental phases)."""
    found: dict[str, object] = {}
    for path in shipped_reference_files():
        for entry in load_reference_set(path)["entries"]:
            present = {el.symbol for el in entry.composition.elements}
            if getattr(entry, "structure", None) is None or not present <= wanted:
                continue
            if compounds_only and len(present) < 2:
                continue
            found.setdefault(str(entry.entry_id), entry)
    return found


def shipped_structures(elements: Sequence[str], compounds_only: bool = True) -> list[Structure]:
    """Known structures of the system spanned by ``elements`` from the shipped sets.

    Parameters
    ----------
    elements
        Element symbols of the chemical system; structures of its subsystems count.
    compounds_only
        Leave out elemental phases (default): metallic Li or molecular S have
        environments unlike any compound's and would dominate the coordination statistics.

    Returns
    -------
    list of Structure
        One structure per distinct material (sets share their elemental phases).

    Raises
    ------
    ReferenceDataError
        When the shipped sets have no such structure.
    """
    wanted = set(elements)
    found = {i: e.structure for i, e in _shipped_entries(wanted, compounds_only).items()}
    if not found:
        raise ReferenceDataError(
            f"the shipped reference sets have no known compounds of {'-'.join(sorted(wanted))}",
            hint="pass reference structures as files (--reference FILE ...); the shipped sets "
            "cover Li-Si, Zn-P-S and Li-P-S",
        )
    return list(found.values())


def named_known_structures(
    chemsys: str | Sequence[str], compounds_only: bool = False
) -> list[tuple[str, Structure]]:
    """Known structures of a chemical system from the shipped sets, with their names.

    Parameters
    ----------
    chemsys
        ``"Li-Si"`` or element symbols; structures of its subsystems count.
    compounds_only
        Leave out elemental phases.

    Returns
    -------
    list of (str, Structure)
        ``(f"{reduced_formula} {entry_id}", structure)``, e.g. ``("LiSi mp-795", ...)``,
        one per entry id (the sets share their elemental phases), sorted by name. These
        are the CHGNet-relaxed structures of the offline E_d reference, so a relaxed
        candidate is compared with a structure relaxed by the same potential.

    Raises
    ------
    ReferenceDataError
        When the shipped sets have no structure of the system.

    Examples
    --------
    >>> names = [name for name, _ in named_known_structures("Li-Si")]
    >>> "LiSi mp-795" in names
    True
    """
    wanted = set(chemsys.split("-") if isinstance(chemsys, str) else chemsys)
    found = {
        i: (f"{e.composition.reduced_formula} {i}", e.structure)
        for i, e in _shipped_entries(wanted, compounds_only).items()
    }
    if not found:
        raise ReferenceDataError(
            f"the shipped reference sets have no known structures of {'-'.join(sorted(wanted))}",
            hint="pass named known structures yourself; the shipped sets cover Li-Si, Zn-P-S "
            "and Li-P-S",
        )
    return sorted(found.values(), key=lambda item: item[0])
