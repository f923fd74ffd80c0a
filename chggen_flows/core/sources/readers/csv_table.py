"""The MP-20 / MPTS-52 / CDVAE table format: CSV (or .csv.gz) with a ``cif`` column.

Optional columns used: ``material_id`` (else the row number), ``e_above_hull`` or
``energy_above_hull``, ``spacegroup.number``, and ``pretty_formula`` (else the CIF's
``_chemical_formula_sum``) to filter rows before their CIF is parsed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from pymatgen.core import Composition

from chggen_flows.core.sources.base import SourceFilter, SourceRow, register_source
from chggen_flows.core.sources.readers._parse import cif_formula, parse_cif
from chggen_flows.errors import InputError

SUFFIXES = (".csv", ".csv.gz")
E_HULL_COLUMNS = ("e_above_hull", "energy_above_hull")
SPACEGROUP_COLUMNS = ("spacegroup.number", "spacegroup_number")


def _number(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


@register_source
class CsvTable:
    """Rows of an MP-20-style table."""

    kind: ClassVar[str] = "csv"

    def __init__(self, location: str) -> None:
        self.location = location
        self.path = Path(location).expanduser()
        if not self.path.is_file():
            raise InputError(f"structure table {location} does not exist", hint="check the path")

    @classmethod
    def claims(cls, location: str) -> bool:
        """A file ending in .csv or .csv.gz."""
        return location.lower().endswith(SUFFIXES) and Path(location).expanduser().is_file()

    def rows(self, query: SourceFilter) -> Iterator[SourceRow]:
        """One row per table row."""
        import pandas as pd

        try:
            table = pd.read_csv(self.path)
        except Exception as exc:
            raise InputError(f"cannot read {self.location} as CSV: {exc}") from exc
        if "cif" not in table.columns:
            raise InputError(
                f"{self.location} has no `cif` column",
                hint="a structure table needs a `cif` column (the MP-20 format)",
            )
        above_column = next((c for c in E_HULL_COLUMNS if c in table.columns), None)
        group_column = next((c for c in SPACEGROUP_COLUMNS if c in table.columns), None)
        for index, row in table.iterrows():
            material_id = str(row["material_id"]) if "material_id" in table.columns else str(index)
            cif = str(row["cif"])
            composition = None
            if isinstance(row.get("pretty_formula"), str):
                composition = Composition(row["pretty_formula"])
            else:
                composition = cif_formula(cif)
            above = _number(row[above_column]) if above_column else None
            group = _number(row[group_column]) if group_column else None
            yield SourceRow(
                material_id,
                lambda cif=cif, material_id=material_id: parse_cif(cif, material_id),
                composition=composition,
                e_above_hull=above,
                spacegroup_number=int(group) if group is not None else None,
            )
