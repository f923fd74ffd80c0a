"""Partial radial distribution functions g_ab(r) of sets of periodic structures.

The RDF of an element pair (a, b) is

    g_ab(r) = V / (N_a N_b) * n_ab(r) / (4 pi r^2 dr)

with n_ab(r) the number of ordered pairs (i of species a, j of species b, i != j, any
periodic image) at a distance in [r, r + dr). For a set of structures the numerators and
denominators are summed before dividing, so every atom pair weighs the same whatever
cell it sits in. g(r) and the normalisation are intensive: a supercell has the same RDF
as its primitive cell, which is what lets generated supercells be compared with small
reference cells directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations_with_replacement

import numpy as np
from pymatgen.core import Structure
from scipy.ndimage import gaussian_filter1d

from chggen_flows.errors import InputError

Pair = tuple[str, str]


@dataclass(frozen=True)
class PartialRDF:
    """Partial RDFs of a set of structures on a common radial grid.

    Attributes
    ----------
    r
        Bin centres (Å).
    g
        g_ab(r) per element pair, keyed by the alphabetically sorted pair.
    n_structures
        Number of structures averaged.
    """

    r: np.ndarray
    g: dict[Pair, np.ndarray] = field(default_factory=dict)
    n_structures: int = 0

    @property
    def bin_width(self) -> float:
        """Width of one radial bin (Å)."""
        return float(self.r[1] - self.r[0])


def _pair(a: str, b: str) -> Pair:
    return (a, b) if a <= b else (b, a)


def partial_rdfs(
    structures: Sequence[Structure], r_max: float = 6.0, bin_width: float = 0.05
) -> PartialRDF:
    """Ensemble-averaged partial RDFs of every element pair present in ``structures``.

    Parameters
    ----------
    structures
        Ordered periodic structures (any cell size).
    r_max
        Largest distance (Å); pairs in all periodic images up to it are counted.
    bin_width
        Radial bin width (Å).

    Returns
    -------
    PartialRDF
        One curve per element pair that occurs in at least one structure.
    """
    if not structures:
        raise InputError("No structures given for the RDF.", "Pass at least one structure.")
    if r_max <= 0 or bin_width <= 0 or bin_width >= r_max:
        raise InputError(
            f"Invalid RDF grid r_max={r_max}, bin_width={bin_width}.",
            "Use 0 < bin_width < r_max (e.g. r_max 6 Å, bin width 0.05 Å).",
        )
    edges = np.arange(0.0, r_max + 0.5 * bin_width, bin_width)
    shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    counts: dict[Pair, np.ndarray] = {}
    # Sum over structures of N_a N_b / V: the ideal-gas pair density of each pair.
    density: dict[Pair, float] = {}
    for structure in structures:
        if not structure.is_ordered:
            raise InputError(
                "RDFs need ordered structures (one species per site).",
                "Order the structure first, e.g. with pymatgen's OrderDisorderedStructureTransformation.",
            )
        species = np.array([str(site.specie.symbol) for site in structure])
        elements = sorted({str(el) for el in species})
        n_el = {el: int((species == el).sum()) for el in elements}
        for a, b in combinations_with_replacement(elements, 2):
            key = _pair(a, b)
            density[key] = density.get(key, 0.0) + n_el[a] * n_el[b] / structure.volume
            counts.setdefault(key, np.zeros(len(shell)))
        centres, neighbours, _, distances = structure.get_neighbor_list(r_max)
        keep = distances > 1e-8
        ai, bi, d = species[centres[keep]], species[neighbours[keep]], distances[keep]
        for a, b in combinations_with_replacement(elements, 2):
            # Ordered pairs i in a, j in b; for a != b each unordered pair is seen twice
            # (i->j and j->i) in the list, so keep one direction only.
            mask = (ai == a) & (bi == b)
            counts[_pair(a, b)] += np.histogram(d[mask], bins=edges)[0]
    g = {key: counts[key] / (density[key] * shell) for key in sorted(counts)}
    return PartialRDF(r=0.5 * (edges[1:] + edges[:-1]), g=g, n_structures=len(structures))


def rdf_distance(first: PartialRDF, second: PartialRDF, smearing: float = 0.1) -> dict[Pair, float]:
    """Normalised L1 distance between the partial RDFs of two sets, per element pair.

    Each curve is smoothed with a Gaussian of width ``smearing`` (Å) so that small shifts
    of a peak do not count as a full mismatch; then
    ``D = sum |g1 - g2| / sum (g1 + g2)``, which is 0 for identical curves and 1 for
    curves without overlap. A pair present in only one set gets 1.

    Parameters
    ----------
    first, second
        RDFs on the same radial grid.
    smearing
        Gaussian width (Å); 0 compares the raw histograms.

    Returns
    -------
    dict
        Distance in [0, 1] per element pair of either set.
    """
    if first.r.shape != second.r.shape or not np.allclose(first.r, second.r):
        raise InputError(
            "The two RDFs are on different radial grids.",
            "Compute both with the same r_max and bin_width.",
        )
    sigma = smearing / first.bin_width
    out = {}
    for key in sorted(set(first.g) | set(second.g)):
        if key not in first.g or key not in second.g:
            out[key] = 1.0
            continue
        g1, g2 = first.g[key], second.g[key]
        if sigma > 0:
            g1, g2 = gaussian_filter1d(g1, sigma), gaussian_filter1d(g2, sigma)
        total = float(np.sum(g1 + g2))
        out[key] = float(np.sum(np.abs(g1 - g2)) / total) if total > 0 else 0.0
    return out
