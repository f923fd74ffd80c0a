"""Coordination numbers of every site, with pymatgen's local-environment tools.

Default method: :class:`pymatgen.analysis.local_env.CrystalNN`. Generated structures are
often slightly distorted, and a plain Voronoi tessellation then counts every tiny facet
as a neighbour (CN inflated to 12-16), while a fixed distance cutoff depends on the
element pair. CrystalNN weighs the Voronoi neighbours by solid angle and distance and
picks the most probable coordination, which is the method pymatgen's own benchmark found
closest to hand-assigned coordination (Pan et al., Inorg. Chem. 2021). It costs about
10 ms per site (``benchmarks/bench_report.py``); ``cutoff`` (MinimumDistanceNN) is 6-14x
faster for large sets, ``voronoi`` (VoronoiNN with a solid-angle cut) is offered for
comparison with Voronoi-based studies and is no faster.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from pymatgen.analysis.local_env import CrystalNN, MinimumDistanceNN, NearNeighbors, VoronoiNN
from pymatgen.core import Structure

from chggen_flows.errors import InputError

#: Names accepted by :func:`coordination_numbers`.
METHODS: tuple[str, ...] = ("crystalnn", "voronoi", "cutoff")


def neighbour_finder(method: str) -> NearNeighbors:
    """The pymatgen NearNeighbors object behind a method name of :data:`METHODS`."""
    if method == "crystalnn":
        return CrystalNN()
    if method == "voronoi":
        # Facets smaller than 10% of the largest solid angle are not bonds.
        return VoronoiNN(tol=0.1, cutoff=8.0)
    if method == "cutoff":
        # Neighbours within 10% of the nearest-neighbour distance of each site.
        return MinimumDistanceNN(tol=0.1, cutoff=8.0)
    raise InputError(
        f"Unknown coordination method {method!r}.", f"Use one of: {', '.join(METHODS)}."
    )


@dataclass(frozen=True)
class CoordinationStats:
    """Coordination numbers of all sites of a set of structures, grouped by element.

    Attributes
    ----------
    method
        Method name of :data:`METHODS`.
    cn
        Per element, the coordination number of every site of that element.
    """

    method: str
    cn: dict[str, np.ndarray] = field(default_factory=dict)

    def mean(self) -> dict[str, float]:
        """Mean coordination number per element."""
        return {el: float(v.mean()) for el, v in self.cn.items()}

    def histogram(self, element: str, max_cn: int = 16) -> np.ndarray:
        """Fraction of the element's sites with CN = 0, 1, ..., ``max_cn``."""
        values = np.clip(np.rint(self.cn[element]).astype(int), 0, max_cn)
        hist = np.bincount(values, minlength=max_cn + 1).astype(float)
        return hist / hist.sum()


def coordination_numbers(structure: Structure, method: str = "crystalnn") -> list[float]:
    """Coordination number of each site of ``structure``, in site order.

    Parameters
    ----------
    structure
        An ordered periodic structure.
    method
        One of :data:`METHODS`.

    Returns
    -------
    list of float
        One coordination number per site.
    """
    finder = neighbour_finder(method)
    with warnings.catch_warnings():
        # CrystalNN warns when no oxidation states are set; it then uses none, as wanted.
        warnings.simplefilter("ignore", UserWarning)
        return [float(finder.get_cn(structure, i)) for i in range(len(structure))]


def coordination_stats(
    structures: Sequence[Structure], method: str = "crystalnn"
) -> CoordinationStats:
    """Coordination numbers of every site of ``structures``, grouped by element.

    Parameters
    ----------
    structures
        Ordered periodic structures.
    method
        One of :data:`METHODS`.

    Returns
    -------
    CoordinationStats
        Per-element arrays of coordination numbers.
    """
    neighbour_finder(method)  # fail on a bad name before any work
    grouped: dict[str, list[float]] = {}
    for structure in structures:
        for site, cn in zip(structure, coordination_numbers(structure, method), strict=True):
            grouped.setdefault(str(site.specie.symbol), []).append(cn)
    return CoordinationStats(
        method=method, cn={el: np.array(v) for el, v in sorted(grouped.items())}
    )
