"""De-duplication: same composition, space group, energy within 2 meV/atom, matching."""

from __future__ import annotations

import pytest
from pymatgen.core import Lattice, Structure

from chggen_flows.core.stability import deduplicate
from chggen_flows.errors import InputError


def _diamond(x: float = 0.0) -> Structure:
    """Si on the 8a orbit of Fd-3m (diamond) or, with ``x``, on a 32e orbit."""
    return Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.43), ["Si"], [[x, x, x]])


def _moved(structure: Structure) -> Structure:
    """The same crystal, translated, with its sites in another order and a primitive cell."""
    moved = structure.copy()
    moved.translate_sites(range(len(moved)), [0.13, 0.21, 0.07])
    return Structure.from_sites(list(reversed(moved.get_primitive_structure().sites)))


def test_duplicates_keep_the_lowest_energy_representative():
    si = _diamond()
    items = [
        ("a", si, -5.300, 227),
        ("b", _moved(si), -5.301, 227),  # same crystal, 1 meV/atom lower: the representative
        ("c", _moved(si), -5.290, 227),  # same crystal, 11 meV/atom higher: kept
        ("d", _diamond(0.1), -5.3005, 227),  # same space group, different crystal
        ("e", si, -5.300, 141),  # different space group label
    ]
    result = deduplicate(items)
    assert result.duplicate_of == {"a": "b"}
    assert result.representatives == ["b", "c", "d", "e"]


def test_energy_tolerance_is_configurable():
    si = _diamond()
    items = [("a", si, -5.30, 227), ("b", _moved(si), -5.29, 227)]
    assert deduplicate(items).duplicate_of == {}
    assert deduplicate(items, energy_tol=0.02).duplicate_of == {"b": "a"}


def test_repeated_ids_are_refused():
    si = _diamond()
    with pytest.raises(InputError, match="unique"):
        deduplicate([("a", si, -5.3, 227), ("a", si, -5.3, 227)])
