"""A JSON (or .json.gz) file of pymatgen structures.

Accepted layouts: one ``Structure.as_dict()`` (id = file stem); a list of them; a dict of id -> ``Structure.as_dict()``;
a list of records with a ``structure`` field and optional ``material_id``,
``e_above_hull`` and ``spacegroup_number`` (e.g. ``mp_structures_in_target_chemsys``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from pymatgen.core import Structure

from chggen_flows.core.sources.base import SourceFilter, SourceRow, register_source
from chggen_flows.errors import InputError

SUFFIXES = (".json", ".json.gz")


def _structure(data: Any, label: str) -> Structure:
    if isinstance(data, Structure):
        return data
    try:
        return Structure.from_dict(data)
    except Exception as exc:
        raise InputError(
            f"{label} is not a pymatgen structure: {type(exc).__name__}: {exc}",
            hint="write structures with Structure.as_dict()",
        ) from exc


@register_source
class JsonStructures:
    """Structures in a JSON file (see the module docstring for the layouts)."""

    kind: ClassVar[str] = "json"

    def __init__(self, location: str) -> None:
        self.location = location
        self.path = Path(location).expanduser()
        if not self.path.is_file():
            raise InputError(f"structure file {location} does not exist", hint="check the path")

    @classmethod
    def claims(cls, location: str) -> bool:
        """A file ending in .json or .json.gz."""
        return location.lower().endswith(SUFFIXES) and Path(location).expanduser().is_file()

    def _read(self) -> Any:
        try:
            # plain json, not monty's loadfn: that would turn some dicts into objects
            return _load_json(self.path)
        except Exception as exc:
            raise InputError(
                f"cannot read JSON from {self.location}: {exc}", hint="check the file"
            ) from exc

    def rows(self, query: SourceFilter) -> Iterator[SourceRow]:
        """One row per structure."""
        data = self._read()
        if isinstance(data, dict) and "@class" in data:  # one Structure.as_dict()
            items = [(self.path.name.split(".")[0], data)]
        elif isinstance(data, dict):
            items = [(str(key), value) for key, value in data.items()]
        elif isinstance(data, list):
            items = [(str(i), value) for i, value in enumerate(data)]
        else:
            raise InputError(
                f"{self.location} holds neither a list nor a dict of structures",
                hint="write [s.as_dict() for s in structures] or {id: s.as_dict()}",
            )
        for key, value in items:
            if isinstance(value, dict) and "structure" in value:
                material_id = str(value.get("material_id", key))
                above = value.get("e_above_hull")
                number = value.get("spacegroup_number")
                extra = {k: v for k, v in value.items() if k != "structure"}
                record = value["structure"]
            else:
                material_id, above, number, extra, record = key, None, None, {}, value
            label = f"{self.location}[{key}]"
            yield SourceRow(
                material_id,
                lambda record=record, label=label: _structure(record, label),
                e_above_hull=float(above) if above is not None else None,
                spacegroup_number=int(number) if number is not None else None,
                extra=extra,
            )


def _load_json(path: Path) -> Any:
    import gzip
    import json

    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return json.load(handle)
