"""A synthetic candidates table with the shape of a real campaign.

Used to try the report without a database (``chggen report demo --synthetic N``), by
the report benchmark (10^4 candidates) and by tests. The numbers are random draws around
the paper's Zn-P-S medians (dE 0.08 eV/atom, RMSD 0.10 Å, E_d 0.07 eV/atom); they are
not results of any model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pymatgen.core import Composition

from chggen_flows.makers.schemas import STAGES

_COMPOSITIONS = ("ZnPS3", "ZnP2S6", "Zn2P2S7", "Zn3P2S8", "ZnS", "P2S5", "Zn4P2S9")
_LATTICES = ("cubic", "hexagonal", "tetragonal", "orthorhombic", "monoclinic", "triclinic")
_SPACEGROUPS = ((5, "C2"), (8, "Cm"), (12, "C2/m"), (14, "P2_1/c"), (62, "Pnma"), (148, "R-3"))


def synthetic_candidates(
    n: int,
    campaign: str = "demo",
    seed: int = 0,
    threshold: float = 0.1,
    dft_fraction: float = 0.3,
) -> pd.DataFrame:
    """A random candidates frame with the columns of ``load_candidates``.

    Parameters
    ----------
    n
        Number of candidates.
    campaign
        Value of the ``campaign`` column.
    seed
        Random seed (same seed, same frame).
    threshold
        E_d threshold (eV/atom) that sets ``below_threshold``.
    dft_fraction
        Fraction of below-threshold candidates that have an r2SCAN E_d.

    Returns
    -------
    pandas.DataFrame
        One row per candidate; later-stage values are missing for candidates whose
        ``stage`` has not reached them.
    """
    rng = np.random.default_rng(seed)
    formulas = rng.choice(_COMPOSITIONS, size=n)
    units = rng.integers(1, 5, size=n)
    atoms_per_unit = {f: int(Composition(f).num_atoms) for f in _COMPOSITIONS}
    # Full formula of the cell, as load_candidates gives it ("Zn2 P2 S6").
    cell_formulas = {
        (f, u): (Composition(f) * u).formula for f in _COMPOSITIONS for u in range(1, 5)
    }
    natoms = np.array([atoms_per_unit[f] for f in formulas]) * units
    mode = np.where(rng.random(n) < 0.8, "unconditional", "host")
    valid = rng.random(n) > 0.05
    # Furthest stage reached; most candidates finish, some stop early.
    last = len(STAGES) - 2
    stage_idx = np.where(rng.random(n) < 0.85, last, rng.integers(0, last, size=n))
    stage_idx = np.where(valid, stage_idx, 0)
    host = mode == "host"
    reached = {name: stage_idx >= i for i, name in enumerate(STAGES)}

    uncond = reached["relaxed"] & ~host
    de_uncond = np.where(uncond, rng.lognormal(np.log(0.08), 0.6, n), np.nan)
    rmsd_uncond = np.where(uncond, rng.lognormal(np.log(0.10), 0.7, n), np.nan)
    symmetric_uncond = np.where(uncond, rng.random(n) < 0.04, None)
    framework_found = np.where(reached["framework"] & ~host, rng.random(n) < 0.9, None)
    inpainted = reached["inpainted"] & (host | (framework_found == True))  # noqa: E712
    de_inpaint = np.where(inpainted, rng.lognormal(np.log(0.05), 0.6, n), np.nan)
    rmsd_inpaint = np.where(inpainted, rng.lognormal(np.log(0.06), 0.7, n), np.nan)
    classified = reached["classified"] & inpainted
    symmetric = np.where(classified, rng.random(n) < 0.45, None)
    sg = rng.integers(0, len(_SPACEGROUPS), size=n)
    sg_number = np.where(symmetric == True, [_SPACEGROUPS[i][0] for i in sg], np.nan)  # noqa: E712
    sg_symbol = np.where(symmetric == True, [_SPACEGROUPS[i][1] for i in sg], None)  # noqa: E712
    has_ed = reached["ehull"] & classified
    e_d = np.where(has_ed, rng.normal(0.08, 0.06, n), np.nan)
    duplicate_of = np.array([None] * n, dtype=object)
    dup = has_ed & (rng.random(n) < 0.05)
    duplicate_of[dup] = "cand-000000"
    below = np.where(has_ed, e_d < threshold, None)
    dft = has_ed & (e_d < threshold) & ~dup & (rng.random(n) < dft_fraction)
    e_d_r2scan = np.where(dft, e_d + rng.normal(-0.02, 0.03, n), np.nan)

    return pd.DataFrame(
        {
            "campaign": campaign,
            "candidate_id": [f"cand-{i:06d}" for i in range(n)],
            "formula": [cell_formulas[(f, u)] for f, u in zip(formulas, units, strict=True)],
            "reduced_formula": formulas,
            "chemsys": "P-S-Zn",
            "natoms": natoms,
            "formula_units": units,
            "lattice_type": rng.choice(_LATTICES, size=n),
            "mode": mode,
            "stage": [STAGES[i] for i in np.where(dft, len(STAGES) - 1, stage_idx)],
            "valid": valid,
            "rejected_reason": np.where(valid, None, "min_distance"),
            "de_uncond": de_uncond,
            "rmsd_uncond": rmsd_uncond,
            "symmetric_uncond": symmetric_uncond,
            "framework_found": framework_found,
            "de_inpaint": de_inpaint,
            "rmsd_inpaint": rmsd_inpaint,
            "spacegroup_number": sg_number,
            "spacegroup_symbol": sg_symbol,
            "symmetric": symmetric,
            "e_d": e_d,
            "duplicate_of": duplicate_of,
            "below_threshold": below,
            "dft_state": np.where(dft, "COMPLETED", None),
            "e_d_r2scan": e_d_r2scan,
        }
    )
