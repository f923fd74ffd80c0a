"""The Materials Project through ``mp-api`` (needs an API key and the network).

The key is read from ``MP_API_KEY`` (or ``PMG_MAPI_KEY``). The filter's element
constraints are sent with the query so the server returns only what is needed; the
rest of :class:`~chggen_flows.core.sources.base.SourceFilter` is applied locally.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from typing import Any, ClassVar

from chggen_flows.core.sources.base import SourceFilter, SourceRow, register_source
from chggen_flows.errors import ConfigError, InputError

NAMES = ("materials_project", "mp", "mp-api")
FIELDS = ["material_id", "formula_pretty", "structure", "energy_above_hull", "symmetry"]
KEY_VARIABLES = ("MP_API_KEY", "PMG_MAPI_KEY")


def api_key() -> str | None:
    """The Materials Project API key from the environment, or None."""
    return next((os.environ[v] for v in KEY_VARIABLES if os.environ.get(v)), None)


def _queries(query: SourceFilter) -> list[dict[str, Any]]:
    """Server-side searches covering the filter (several for ``related_to``)."""
    base: dict[str, Any] = {}
    if query.exclude_elements:
        base["exclude_elements"] = sorted(query.exclude_elements)
    if query.material_ids:
        base["material_ids"] = sorted(query.material_ids)
    if query.formulas:
        base["formula"] = sorted(query.formulas)
    searches = []
    if query.within:
        for system in query.within:
            subsystems = [
                "-".join(sorted(c))
                for r in range(1, len(system) + 1)
                for c in itertools.combinations(sorted(system), r)
            ]
            searches.append({**base, "chemsys": subsystems})
    elif query.related_to:
        for system in query.related_to:
            pairs = list(itertools.combinations(sorted(system), 2)) or [tuple(system)]
            for pair in pairs:
                elements = sorted(set(pair) | query.include_elements)
                searches.append({**base, "elements": elements})
            searches.append({**base, "chemsys": ["-".join(sorted(system))]})
    else:
        if query.include_elements:
            base["elements"] = sorted(query.include_elements)
        searches.append(base)
    return searches


@register_source
class MaterialsProject:
    """Structures from the Materials Project summary endpoint."""

    kind: ClassVar[str] = "materials_project"

    def __init__(self, location: str = "materials_project", key: str | None = None) -> None:
        self.location = "materials_project"
        self.key = key or api_key()

    @classmethod
    def claims(cls, location: str) -> bool:
        """``materials_project``, ``mp`` or ``mp-api``."""
        return location.strip().lower() in NAMES

    def _rester(self) -> Any:
        if not self.key:
            raise ConfigError(
                "no Materials Project API key",
                hint="set MP_API_KEY (https://next-gen.materialsproject.org/api), "
                "or use a local structure file",
            )
        try:
            from mp_api.client import MPRester
        except ImportError as exc:
            raise ConfigError(
                "the Materials Project source needs mp-api", hint="pip install mp-api"
            ) from exc
        return MPRester(self.key)

    def rows(self, query: SourceFilter) -> Iterator[SourceRow]:
        """One row per summary document; unconstrained queries are refused."""
        searches = _queries(query)
        if searches == [{}]:
            raise InputError(
                "refusing to download the whole Materials Project",
                hint="filter by related_to, within, include_elements, formulas or material_ids",
            )
        with self._rester() as rester:
            for search in searches:
                for doc in rester.materials.summary.search(**search, fields=FIELDS):
                    yield _row(doc)


def _row(doc: Any) -> SourceRow:
    """A summary document (an mp-api model object) as a row."""
    structure = doc.structure
    symmetry = getattr(doc, "symmetry", None)
    number = getattr(symmetry, "number", None) if symmetry is not None else None
    above = getattr(doc, "energy_above_hull", None)
    return SourceRow(
        str(doc.material_id),
        lambda structure=structure: structure,
        composition=structure.composition,
        e_above_hull=float(above) if above is not None else None,
        spacegroup_number=int(number) if number is not None else None,
        extra={"formula_pretty": getattr(doc, "formula_pretty", None)},
    )
