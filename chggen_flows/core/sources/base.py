"""The structure-source protocol, its registry and the filters every source obeys.

A source is a class with a ``kind`` name, a ``claims(location)`` class method (does a
path or name look like mine?) and a ``rows()`` generator of :class:`SourceRow`: an id,
the composition when it is known without parsing the structure (so filters skip most
rows cheaply), a loader of the structure and optional e_above_hull / space group.
Adding a source is one module that defines such a class and decorates it with
:func:`register_source`; :func:`open_source` picks the source for a location and
:func:`load_structures` applies :class:`SourceFilter`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from pymatgen.core import Composition, Structure

from chggen_flows.core.sources.chemsys import is_related, parse_chemical_systems
from chggen_flows.core.sources.entry import StructureEntry
from chggen_flows.errors import InputError


@dataclass
class SourceRow:
    """One structure of a source before it is parsed.

    Attributes
    ----------
    material_id
        Identifier in the source.
    load
        Returns the structure (raises InputError when it cannot be parsed).
    composition
        The composition if known without parsing (e.g. a CSV formula column), else None.
    e_above_hull, spacegroup_number, extra
        See :class:`StructureEntry`.
    """

    material_id: str
    load: Callable[[], Structure]
    composition: Composition | None = None
    e_above_hull: float | None = None
    spacegroup_number: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class StructureSource(Protocol):
    """A place known structures come from (see the module docstring)."""

    kind: ClassVar[str]
    location: str

    @classmethod
    def claims(cls, location: str) -> bool:
        """Whether ``location`` (a path or a name) is one of this source's."""

    def rows(self, query: SourceFilter) -> Iterator[SourceRow]:
        """The source's structures; ``query`` may be used to ask a server for fewer."""


#: kind -> source class, in registration order (the first that claims a location wins).
SOURCES: dict[str, type] = {}


def register_source(cls: type) -> type:
    """Class decorator: make a source known to :func:`open_source`."""
    SOURCES[cls.kind] = cls
    return cls


def _symbols(values: Sequence[str] | str | None, what: str) -> frozenset[str]:
    from pymatgen.core.periodic_table import Element

    if values is None:
        return frozenset()
    values = [values] if isinstance(values, str) else list(values)
    bad = [v for v in values if not Element.is_valid_symbol(str(v))]
    if bad:
        raise InputError(f"{what} holds {bad}, not element symbols", hint="e.g. [Zn, Cd]")
    return frozenset(str(v) for v in values)


def _formulas(values: Sequence[str] | str | None) -> frozenset[str]:
    if values is None:
        return frozenset()
    values = [values] if isinstance(values, str) else list(values)
    try:
        return frozenset(Composition(v).reduced_formula for v in values)
    except Exception as exc:  # pymatgen raises ValueError and others for bad formulas
        raise InputError(f"bad formula in {values}: {exc}", hint="e.g. ZnPS3") from exc


@dataclass(frozen=True)
class SourceFilter:
    """Which structures of a source are used.

    Attributes
    ----------
    include_elements
        Keep only structures holding every one of these elements.
    exclude_elements
        Drop every structure holding any of these (for honest benchmarks: no Zn
        compound may serve as a template for Zn-P-S).
    formulas, exclude_formulas
        Keep only / drop these reduced formulas (any number of formula units).
    material_ids, exclude_ids
        Keep only / drop these ids.
    related_to
        Keep only structures related to one of these chemical systems, by the rule of
        :func:`~chggen_flows.core.sources.chemsys.is_related` (the training focus rule).
    within
        Keep only structures whose elements all belong to one of these systems.
    max_atoms
        Drop cells with more sites.
    ordered_only
        Drop structures with partial occupancies.
    max_e_above_hull
        Drop structures the source places further above its hull (eV/atom); those
        without a value are kept.
    """

    include_elements: frozenset[str] = frozenset()
    exclude_elements: frozenset[str] = frozenset()
    formulas: frozenset[str] = frozenset()
    exclude_formulas: frozenset[str] = frozenset()
    material_ids: frozenset[str] = frozenset()
    exclude_ids: frozenset[str] = frozenset()
    related_to: tuple[frozenset[str], ...] = ()
    within: tuple[frozenset[str], ...] = ()
    max_atoms: int | None = None
    ordered_only: bool = False
    max_e_above_hull: float | None = None

    @classmethod
    def build(
        cls,
        include_elements: Sequence[str] | str | None = None,
        exclude_elements: Sequence[str] | str | None = None,
        formulas: Sequence[str] | str | None = None,
        exclude_formulas: Sequence[str] | str | None = None,
        material_ids: Sequence[str] | str | None = None,
        exclude_ids: Sequence[str] | str | None = None,
        related_to: Sequence[str] | str | None = None,
        within: Sequence[str] | str | None = None,
        max_atoms: int | None = None,
        ordered_only: bool = False,
        max_e_above_hull: float | None = None,
    ) -> SourceFilter:
        """A filter from plain values (lists or single strings), checked."""

        def ids(values: Sequence[str] | str | None) -> frozenset[str]:
            if values is None:
                return frozenset()
            return frozenset([values] if isinstance(values, str) else map(str, values))

        if max_atoms is not None and max_atoms < 1:
            raise InputError(f"max_atoms must be >= 1, got {max_atoms}")
        return cls(
            include_elements=_symbols(include_elements, "include_elements"),
            exclude_elements=_symbols(exclude_elements, "exclude_elements"),
            formulas=_formulas(formulas),
            exclude_formulas=_formulas(exclude_formulas),
            material_ids=ids(material_ids),
            exclude_ids=ids(exclude_ids),
            related_to=tuple(parse_chemical_systems(related_to)) if related_to else (),
            within=tuple(parse_chemical_systems(within)) if within else (),
            max_atoms=max_atoms,
            ordered_only=ordered_only,
            max_e_above_hull=max_e_above_hull,
        )

    def accepts_id(self, material_id: str) -> bool:
        """The id filters alone."""
        if self.material_ids and material_id not in self.material_ids:
            return False
        return material_id not in self.exclude_ids

    def accepts_composition(self, composition: Composition) -> bool:
        """The element and formula filters alone."""
        elements = {el.symbol for el in composition.elements}
        if not self.include_elements <= elements or self.exclude_elements & elements:
            return False
        if self.formulas or self.exclude_formulas:
            formula = composition.reduced_formula
            if (self.formulas and formula not in self.formulas) or formula in self.exclude_formulas:
                return False
        if self.related_to and not is_related(elements, self.related_to):
            return False
        return not self.within or any(elements <= system for system in self.within)

    def accepts(self, entry: StructureEntry) -> bool:
        """Every filter, on a parsed entry."""
        if not (self.accepts_id(entry.material_id) and self.accepts_composition(entry.composition)):
            return False
        if self.max_atoms is not None and len(entry.structure) > self.max_atoms:
            return False
        if self.ordered_only and not entry.ordered:
            return False
        limit, above = self.max_e_above_hull, entry.e_above_hull
        return limit is None or above is None or above <= limit


def open_source(location: str | Path | StructureSource, kind: str | None = None) -> StructureSource:
    """The source for a location: a CIF folder, a JSON or CSV file, ``materials_project``.

    Parameters
    ----------
    location
        A path, the name of a non-file source (``materials_project`` or ``mp``), or a
        source object (returned as is).
    kind
        Force a source kind (see :data:`SOURCES`) instead of guessing from the location.

    Raises
    ------
    InputError
        Unknown kind, a path that does not exist, or no source claims the location.
    """
    from chggen_flows.core.sources import readers  # noqa: F401  (registers the built-ins)

    if not isinstance(location, str | Path):
        return location
    text = str(location)
    if kind is not None:
        if kind not in SOURCES:
            raise InputError(
                f"unknown structure source kind {kind!r}", hint=f"choose from {sorted(SOURCES)}"
            )
        return SOURCES[kind](text)
    for cls in SOURCES.values():
        if cls.claims(text):
            return cls(text)
    if not Path(text).expanduser().exists():
        raise InputError(
            f"structure source {text} does not exist",
            hint="give a folder of CIFs, a .json/.json.gz of structures, a .csv/.csv.gz "
            "table with a `cif` column, or materials_project",
        )
    raise InputError(
        f"cannot tell what kind of structure source {text} is",
        hint="use a folder of CIFs, .json/.json.gz, .csv/.csv.gz, or set the kind",
    )


def load_structures(
    sources: str | Path | StructureSource | Sequence[str | Path | StructureSource],
    query: SourceFilter | None = None,
    dedupe: bool = True,
) -> list[StructureEntry]:
    """The structures of one or several sources that pass ``query``.

    Parameters
    ----------
    sources
        Locations (see :func:`open_source`) or source objects.
    query
        Filters (default: none).
    dedupe
        Keep the first entry of each ``material_id`` (MP-20 and MPTS-52 share ids).

    Returns
    -------
    list[StructureEntry]
        In source order.
    """
    query = query or SourceFilter()
    if not isinstance(sources, list | tuple):
        sources = [sources]
    seen: set[str] = set()
    entries = []
    for item in sources:
        source = open_source(item)
        for row in source.rows(query):
            if (dedupe and row.material_id in seen) or not query.accepts_id(row.material_id):
                continue
            if row.composition is not None and not query.accepts_composition(row.composition):
                continue
            entry = StructureEntry(
                material_id=row.material_id,
                structure=row.load(),
                source=source.location,
                e_above_hull=row.e_above_hull,
                spacegroup_number=row.spacegroup_number,
                extra=row.extra,
            )
            if query.accepts(entry):
                seen.add(row.material_id)
                entries.append(entry)
    return entries
