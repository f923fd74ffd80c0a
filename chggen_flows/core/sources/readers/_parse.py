"""CIF parsing shared by the file sources."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

from pymatgen.core import Composition, Structure

from chggen_flows.errors import InputError

_FORMULA_SUM = re.compile(r"^_chemical_formula_sum\s+'?([^'\n]+?)'?\s*$", re.MULTILINE)


def parse_cif(text: str, label: str) -> Structure:
    """The first structure of a CIF string; InputError naming ``label`` otherwise.

    Partial occupancies are kept (a disordered CIF gives a disordered structure).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pymatgen warns about rounded occupancies
            return Structure.from_str(text, fmt="cif")
    except Exception as exc:  # pymatgen raises many types for bad CIFs
        raise InputError(
            f"cannot parse the CIF of {label}: {exc}", hint="check that it is a valid CIF"
        ) from exc


def read_structure_file(path: Path) -> Structure:
    """A structure file pymatgen reads (CIF, POSCAR, JSON...); InputError otherwise."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Structure.from_file(path)
    except Exception as exc:
        raise InputError(
            f"cannot read a structure from {path}: {exc}",
            hint="give a CIF, POSCAR or pymatgen JSON file",
        ) from exc


def cif_formula(text: str) -> Composition | None:
    """The composition a CIF declares (``_chemical_formula_sum``), without parsing it."""
    match = _FORMULA_SUM.search(text)
    if not match:
        return None
    try:
        return Composition(match.group(1).replace(" ", ""))
    except Exception:  # an unusual formula: the structure itself will be parsed
        return None
