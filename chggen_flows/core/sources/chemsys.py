"""Chemical systems ("Zn-P-S") and the one rule of which structures are related to one.

The rule is shared by the training ``--focus`` option
(:meth:`chggen_flows.core.model.data.CrystalDataset.related_to`) and the structure
sources' ``related_to`` filter, so "related" means the same thing everywhere.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Iterable, Sequence

from pymatgen.core.periodic_table import Element

from chggen_flows.errors import InputError


def parse_chemical_systems(texts: str | Sequence[str]) -> list[frozenset[str]]:
    """Chemical systems (``"Zn-P-S"``, ``"Li,Si"``) as sets of element symbols.

    Raises
    ------
    InputError
        A text is not made of element symbols.
    """
    systems = []
    for text in [texts] if isinstance(texts, str) else texts:
        symbols = [s.strip() for s in str(text).replace(",", "-").split("-") if s.strip()]
        if not symbols or not all(Element.is_valid_symbol(s) for s in symbols):
            raise InputError(
                f"{text!r} is not a chemical system", hint="write it as elements, e.g. Zn-P-S"
            )
        systems.append(frozenset(symbols))
    return systems


def is_related(elements: Collection[Hashable], systems: Iterable[Collection[Hashable]]) -> bool:
    """Whether a structure of ``elements`` is related to any of ``systems``.

    A structure is related to a system when it shares at least two of its elements
    (ZnS, Cu3PS4 and Zn3P2 for Zn-P-S: the local motifs a Zn-P-S crystal is made of)
    or when all its elements belong to it (the elements themselves). Elements may be
    given as symbols or atomic numbers, as long as both arguments use the same.
    """
    own = set(elements)
    for system in systems:
        system = set(system)
        if len(own & system) >= min(2, len(system)) or own <= system:
            return True
    return False
