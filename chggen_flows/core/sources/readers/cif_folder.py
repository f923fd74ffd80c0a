"""A folder of structure files (CIF, and anything else pymatgen reads); id = file stem."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from chggen_flows.core.sources.base import SourceFilter, SourceRow, register_source
from chggen_flows.core.sources.readers._parse import read_structure_file
from chggen_flows.errors import InputError

STRUCTURE_SUFFIXES = (".cif", ".mcif", ".vasp", ".poscar")
STRUCTURE_NAMES = ("POSCAR", "CONTCAR")


@register_source
class CifFolder:
    """Every ``*.cif`` (also ``.vasp``/POSCAR) file below a folder, in name order."""

    kind: ClassVar[str] = "cif_folder"

    def __init__(self, location: str) -> None:
        self.location = location
        self.path = Path(location).expanduser()
        if not self.path.is_dir():
            raise InputError(f"{location} is not a folder", hint="give a folder of CIF files")

    @classmethod
    def claims(cls, location: str) -> bool:
        """A folder."""
        return Path(location).expanduser().is_dir()

    def rows(self, query: SourceFilter) -> Iterator[SourceRow]:
        """One row per structure file."""
        files = sorted(
            p
            for p in self.path.rglob("*")
            if p.is_file()
            and (p.suffix.lower() in STRUCTURE_SUFFIXES or p.name.startswith(STRUCTURE_NAMES))
        )
        if not files:
            raise InputError(
                f"no structure files in {self.location}", hint="put *.cif files in the folder"
            )
        for path in files:
            yield SourceRow(path.stem, lambda path=path: read_structure_file(path))
