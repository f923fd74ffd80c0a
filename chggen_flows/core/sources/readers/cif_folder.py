"""A folder of structure files (CIF, POSCAR), or one such file; id = file stem."""

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
    """Every ``*.cif`` (also ``.vasp``/POSCAR) file below a folder, in name order, or a
    single such file."""

    kind: ClassVar[str] = "cif_folder"

    def __init__(self, location: str) -> None:
        self.location = location
        self.path = Path(location).expanduser()
        if not (self.path.is_dir() or _is_structure_file(self.path)):
            raise InputError(
                f"{location} is neither a folder nor a structure file",
                hint="give a folder of CIF files or one CIF",
            )

    @classmethod
    def claims(cls, location: str) -> bool:
        """A folder or a structure file."""
        path = Path(location).expanduser()
        return path.is_dir() or _is_structure_file(path)

    def rows(self, query: SourceFilter) -> Iterator[SourceRow]:
        """One row per structure file."""
        if self.path.is_file():
            files = [self.path]
        else:
            files = sorted(p for p in self.path.rglob("*") if _is_structure_file(p))
        if not files:
            raise InputError(
                f"no structure files in {self.location}", hint="put *.cif files in the folder"
            )
        for path in files:
            yield SourceRow(path.stem, lambda path=path: read_structure_file(path))


def _is_structure_file(path: Path) -> bool:
    return path.is_file() and (
        path.suffix.lower() in STRUCTURE_SUFFIXES or path.name.startswith(STRUCTURE_NAMES)
    )
