"""What a structure source yields: a known structure with its identity and provenance."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pymatgen.core import Composition, Structure


@dataclass(frozen=True)
class StructureEntry:
    """A known structure.

    Attributes
    ----------
    material_id
        Identifier in its source (``mp-22526``; a CIF file's stem; a JSON key or index).
    structure
        The structure (may be disordered; see :attr:`ordered`).
    source
        Where it came from (the file, folder or ``materials_project``).
    e_above_hull
        Energy above the source's hull in eV/atom, when the source gives it.
    spacegroup_number
        Space group number when the source gives it (else None; see :meth:`spacegroup`).
    extra
        Other columns or fields of the source, as given.
    """

    material_id: str
    structure: Structure
    source: str
    e_above_hull: float | None = None
    spacegroup_number: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def composition(self) -> Composition:
        """The cell's composition."""
        return self.structure.composition

    @property
    def formula(self) -> str:
        """Reduced formula, e.g. ``LiCoO2``."""
        return self.structure.composition.reduced_formula

    @property
    def elements(self) -> frozenset[str]:
        """Element symbols."""
        return frozenset(el.symbol for el in self.structure.composition.elements)

    @property
    def ordered(self) -> bool:
        """Whether every site is fully occupied by one species."""
        return self.structure.is_ordered

    def spacegroup(self, symprec: float = 0.1) -> tuple[int, str]:
        """Space group number and symbol: the source's number if given, else spglib's."""
        from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
        from pymatgen.symmetry.groups import SpaceGroup

        if self.spacegroup_number is not None:
            return self.spacegroup_number, SpaceGroup.from_int_number(self.spacegroup_number).symbol
        try:
            analyzer = SpacegroupAnalyzer(self.structure, symprec=symprec)
            return analyzer.get_space_group_number(), analyzer.get_space_group_symbol()
        except Exception:  # spglib fails on some disordered or odd cells
            return 1, "P1"

    def provenance(self) -> dict[str, Any]:
        """What a candidate records about its template (JSON-ready)."""
        number, symbol = self.spacegroup()
        return {
            "material_id": self.material_id,
            "formula": self.formula,
            "spacegroup_number": number,
            "spacegroup_symbol": symbol,
            "e_above_hull": self.e_above_hull,
            "source": self.source,
        }
