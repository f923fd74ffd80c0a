"""Crystal-structure-search metrics: did generation beat random search?

Everything is computed from the candidate table of ``chggen results``
(:func:`chggen_flows.campaign.results.load_candidates` columns: ``candidate_id``,
``reduced_formula``, ``e_d``, ``spacegroup_number``, ``symmetric``, ``duplicate_of``,
``valid``, ...) plus, optionally, the candidates' final structures and the named known
structures of the system. A column ``arm`` (e.g. ``chggen``, ``baseline:pyxtal``)
splits the table into the arms compared; without it the whole table is one arm.

Definitions (see ``docs/baseline.md``):

- **E_d distribution**: median and share below 0, 0.03 and 0.1 eV/atom over the
  candidates with an E_d (duplicates included: it describes what the search produced).
- **symmetric**: final space group not P1 or P-1 (the paper's definition,
  :data:`~chggen_flows.core.symmetry.NOT_SYMMETRIC`), over candidates with a group.
- **valid**: not rejected by the pipeline and no two atoms closer than
  ``min_distance`` (0.5 Å). SMACT charge neutrality is reported beside it (and folded in
  with ``require_charge_neutral``), for compositions with an anion-forming element only.
- **unique**: valid and ``duplicate_of`` empty (the E_d stage's de-duplication).
- **rediscovered**: the structure matches a known structure (pymatgen
  ``StructureMatcher(ltol=0.2, stol=0.3, angle_tol=5)``, MatterGen's evaluation).
- **novel**: unique and matching no known structure.
- **S.U.N.**: stable (E_d < ``sun_threshold``, 0.1 eV/atom as in MatterGen), unique and
  novel; the S.U.N. rate is over all candidates of the arm.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Composition, Structure

from chggen_flows.core.generation.candidate import check_candidate
from chggen_flows.core.symmetry import NOT_SYMMETRIC
from chggen_flows.errors import InputError

#: Elements that take a negative oxidation state in ionic solids: a composition with one
#: of them is checked for SMACT charge neutrality, others (intermetallics and Zintl
#: phases such as Li-Si) are "not applicable". Zintl anions (Si4-, Si-Si dumbbells) are
#: charge-balanced only with bond counting, which SMACT does not do: it calls the known
#: Li5Si2 phase invalid.
ANION_FORMERS = frozenset({"N", "P", "As", "O", "S", "Se", "Te", "F", "Cl", "Br", "I"})
#: Candidate-table columns summed per arm and composition when present.
COST_COLUMNS = ("model_calls", "relax_steps", "chgnet_steps", "wall_time_s")
#: Name of the whole table's arm when it has no ``arm`` column.
DEFAULT_ARM = "all"


@dataclass(frozen=True)
class MetricsSettings:
    """Thresholds and tolerances of the search metrics.

    Attributes
    ----------
    thresholds
        E_d values (eV/atom) below which shares are reported.
    sun_threshold
        "Stable" in S.U.N.: E_d below this (eV/atom; MatterGen: 0.1).
    min_distance
        Structures with two atoms closer than this (Å) are invalid.
    ltol, stol, angle_tol
        StructureMatcher tolerances for rediscovery (MatterGen's values).
    charge_neutrality
        ``"auto"``: SMACT check for compositions with an element of
        :data:`ANION_FORMERS`, "not applicable" (None) otherwise; ``"always"``,
        ``"never"``.
    require_charge_neutral
        Count SMACT-invalid candidates as invalid (default False: SMACT rejects known
        polyanionic phases such as P2S7 or LiS4, so it is reported, not enforced).
    cost_columns
        Columns summed per group when present.
    """

    thresholds: tuple[float, ...] = (0.0, 0.03, 0.1)
    sun_threshold: float = 0.1
    min_distance: float = 0.5
    ltol: float = 0.2
    stol: float = 0.3
    angle_tol: float = 5.0
    charge_neutrality: Literal["auto", "always", "never"] = "auto"
    require_charge_neutral: bool = False
    cost_columns: tuple[str, ...] = COST_COLUMNS

    def __post_init__(self) -> None:
        object.__setattr__(self, "thresholds", tuple(float(t) for t in self.thresholds))
        object.__setattr__(self, "cost_columns", tuple(self.cost_columns))
        if not self.thresholds or not all(math.isfinite(t) for t in self.thresholds):
            raise InputError(f"thresholds must be finite E_d values, got {self.thresholds}")
        if not math.isfinite(self.sun_threshold):
            raise InputError(f"sun_threshold must be finite, got {self.sun_threshold}")
        if not self.min_distance >= 0:
            raise InputError(f"min_distance must be >= 0 Å, got {self.min_distance}")
        for name in ("ltol", "stol", "angle_tol"):
            if not getattr(self, name) > 0:
                raise InputError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.charge_neutrality not in ("auto", "always", "never"):
            raise InputError(
                f"charge_neutrality must be 'auto', 'always' or 'never', "
                f"got {self.charge_neutrality!r}"
            )

    def matcher(self) -> StructureMatcher:
        """The StructureMatcher of the rediscovery test."""
        return StructureMatcher(ltol=self.ltol, stol=self.stol, angle_tol=self.angle_tol)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready copy."""
        return asdict(self)


# --------------------------------------------------------------------------------------
# Per-structure and per-composition checks
# --------------------------------------------------------------------------------------


def too_close(structure: Structure, min_distance: float = 0.5) -> bool:
    """Whether two atoms (periodic images included) are closer than ``min_distance`` Å."""
    return not check_candidate(structure, min_distance)[0]


@cache
def _smact_valid(formula: str) -> bool:
    from smact.screening import smact_validity

    # CDVAE's and MatterGen's compositional validity: Pauling electronegativity test on,
    # all-metal compositions ("alloys") accepted.
    return bool(smact_validity(Composition(formula), use_pauling_test=True, include_alloys=True))


def charge_neutral(
    composition: Composition | str, mode: Literal["auto", "always", "never"] = "auto"
) -> bool | None:
    """SMACT charge neutrality of a composition, or None where it does not apply.

    Parameters
    ----------
    composition
        A formula or Composition.
    mode
        ``"auto"``: None unless the composition holds an anion-forming element
        (:data:`ANION_FORMERS`); ``"always"``: always check; ``"never"``: always None.

    Returns
    -------
    bool or None
        True when some combination of SMACT oxidation states sums to zero and passes
        the Pauling electronegativity test.

    Examples
    --------
    >>> charge_neutral("ZnPS3"), charge_neutral("Zn4S"), charge_neutral("Li5Si2")
    (True, False, None)
    """
    composition = Composition(composition)
    if mode == "never":
        return None
    if mode == "auto" and not {el.symbol for el in composition.elements} & ANION_FORMERS:
        return None
    return _smact_valid(composition.reduced_formula)


def rediscoveries(
    structures: Mapping[str, Structure],
    known: Sequence[tuple[str, Structure]],
    settings: MetricsSettings | None = None,
) -> dict[str, list[str]]:
    """Which known structures each candidate matches.

    Parameters
    ----------
    structures
        ``{candidate_id: structure}`` (relaxed candidates).
    known
        ``(name, structure)`` of the known phases, e.g.
        :func:`~chggen_flows.core.analysis.references.named_known_structures`.
    settings
        Matcher tolerances.

    Returns
    -------
    dict
        ``{candidate_id: [names of the matching known structures]}`` for every candidate
        (empty list: no match). Only structures of the same reduced formula are compared.
    """
    settings = settings or MetricsSettings()
    matcher = settings.matcher()
    by_formula: dict[str, list[tuple[str, Structure]]] = {}
    for name, structure in known:
        by_formula.setdefault(structure.composition.reduced_formula, []).append((name, structure))
    out: dict[str, list[str]] = {}
    for candidate_id, structure in structures.items():
        same = by_formula.get(structure.composition.reduced_formula, [])
        out[candidate_id] = [name for name, ref in same if matcher.fit(structure, ref)]
    return out


# --------------------------------------------------------------------------------------
# Candidate table
# --------------------------------------------------------------------------------------


def _missing(value: Any) -> bool:
    # pd.NA too: the report's normalised frames hold nullable booleans
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def candidate_table(
    frame: pd.DataFrame,
    structures: Mapping[str, Structure] | None = None,
    known: Sequence[tuple[str, Structure]] | None = None,
    settings: MetricsSettings | None = None,
    arm_column: str = "arm",
) -> pd.DataFrame:
    """The candidates with the per-candidate flags the metrics count.

    Parameters
    ----------
    frame
        Candidate table (``chggen results`` columns); needs ``candidate_id`` and
        ``reduced_formula``; ``e_d``, ``spacegroup_number``/``symmetric``,
        ``duplicate_of`` and ``valid`` are used when present.
    structures
        ``{candidate_id: final structure}``; without a candidate's structure its
        distance check, rediscovery and novelty are unknown (None).
    known
        Named known structures; None leaves rediscovery and novelty unknown.
    settings
        Thresholds and tolerances.
    arm_column
        Column naming each candidate's arm; absent: every row is arm ``"all"``.

    Returns
    -------
    pandas.DataFrame
        A copy of ``frame`` with ``arm`` and the added columns ``too_close``,
        ``charge_neutral``, ``is_valid``, ``is_symmetric``, ``unique``,
        ``rediscovery_checked``, ``rediscovered_as`` (names joined by ``"; "``, None if
        none or unchecked), ``novel``,
        ``stable`` and ``sun`` (booleans; None where unknown).

    Raises
    ------
    InputError
        Required columns missing or candidate ids repeated.
    """
    settings = settings or MetricsSettings()
    missing = [c for c in ("candidate_id", "reduced_formula") if c not in frame.columns]
    if missing:
        raise InputError(f"the candidate table lacks column(s) {missing}")
    table = frame.copy().reset_index(drop=True)
    if table["candidate_id"].duplicated().any():
        # ids are unique within a campaign, not across campaigns
        raise InputError(
            "candidate ids repeat in the table",
            hint="compare arms of one campaign, or prefix ids with their campaign",
        )
    table["arm"] = table[arm_column] if arm_column in table.columns else DEFAULT_ARM
    structures = structures or {}
    n = len(table)

    def column(name: str, default: Any) -> list[Any]:
        if name not in table.columns:
            return [default] * n
        return [default if _missing(v) else v for v in table[name]]

    e_d = np.array([np.nan if v is None else float(v) for v in column("e_d", None)])
    pipeline_valid = [bool(v) for v in column("valid", True)]
    duplicate = [v is not None and v != "" for v in column("duplicate_of", None)]
    ids = list(table["candidate_id"])

    close = [
        too_close(structures[i], settings.min_distance) if i in structures else None for i in ids
    ]
    neutral = [charge_neutral(f, settings.charge_neutrality) for f in table["reduced_formula"]]
    valid = [
        ok and c is not True and not (settings.require_charge_neutral and q is False)
        for ok, c, q in zip(pipeline_valid, close, neutral, strict=True)
    ]
    numbers = column("spacegroup_number", None)
    flags = column("symmetric", None)
    symmetric = [
        (int(g) not in NOT_SYMMETRIC) if g is not None else (None if f is None else bool(f))
        for g, f in zip(numbers, flags, strict=True)
    ]
    unique = [v and not d for v, d in zip(valid, duplicate, strict=True)]
    found = rediscoveries({i: structures[i] for i in ids if i in structures}, known or [], settings)
    names = [("; ".join(found[i]) or None) if i in found else None for i in ids]
    if known is None:
        novel: list[bool | None] = [None] * n
    else:
        novel = [
            (u and not found[i]) if i in found else (False if not u else None)
            for i, u in zip(ids, unique, strict=True)
        ]
    stable = [bool(x < settings.sun_threshold) for x in e_d]
    sun = [(False if not (s and u) else nv) for s, u, nv in zip(stable, unique, novel, strict=True)]
    table["too_close"] = pd.Series(close, dtype=object)
    table["charge_neutral"] = pd.Series(neutral, dtype=object)
    table["is_valid"] = valid
    table["is_symmetric"] = pd.Series(symmetric, dtype=object)
    table["unique"] = unique
    table["rediscovery_checked"] = [known is not None and i in found for i in ids]
    table["rediscovered_as"] = pd.Series(names, dtype=object)
    table["novel"] = pd.Series(novel, dtype=object)
    table["stable"] = stable
    table["sun"] = pd.Series(sun, dtype=object)
    return table


# --------------------------------------------------------------------------------------
# Aggregates
# --------------------------------------------------------------------------------------


def threshold_key(threshold: float) -> str:
    """Key of a threshold in ``share_below`` / ``n_below`` (``0.03`` -> ``"0.03"``)."""
    return f"{threshold:g}"


class CompositionMetrics(BaseModel):
    """Search metrics of one arm for one composition (or all, ``reduced_formula=None``).

    Counts that need structures or known structures are None when those were not given:
    ``n_too_close`` counts over the candidates whose structure was given (None if none
    was); ``n_novel``, ``n_sun`` and ``sun_rate`` are None as soon as one candidate that
    could count lacks its structure (a partial count would flatter or punish an arm);
    ``n_rediscovered`` and ``rediscovered`` cover the candidates that were checked.
    Shares are over ``n_with_e_d`` (E_d) and ``n_classified`` (symmetric); the S.U.N.
    rate is over ``n_candidates``.
    """

    arm: str
    reduced_formula: str | None = None
    n_candidates: int
    n_valid: int
    n_too_close: int | None = None
    n_charge_neutral: int | None = Field(
        None, description="candidates whose composition passes SMACT; None: not applicable"
    )
    n_with_e_d: int
    e_d_median: float | None = None
    e_d_min: float | None = None
    best_candidate_id: str | None = None
    best_spacegroup_number: int | None = None
    best_spacegroup_symbol: str | None = None
    n_below: dict[str, int] = Field(default_factory=dict)
    share_below: dict[str, float | None] = Field(default_factory=dict)
    n_classified: int = 0
    n_symmetric: int = 0
    symmetric_share: float | None = None
    n_unique: int
    n_rediscovered: int | None = None
    rediscovered: dict[str, list[str]] | None = Field(
        None, description="known structure name -> ids of the candidates matching it"
    )
    n_novel: int | None = None
    n_stable: int
    n_sun: int | None = None
    sun_rate: float | None = None
    costs: dict[str, float] = Field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        """One flat table row (thresholds and costs as their own columns)."""
        data = self.model_dump(exclude={"n_below", "share_below", "rediscovered", "costs"})
        data["composition"] = data.pop("reduced_formula") or "all"
        for key, value in self.n_below.items():
            data[f"n_e_d_below_{key}"] = value
        for key, share in self.share_below.items():
            data[f"share_e_d_below_{key}"] = share
        data["rediscovered"] = (
            None if self.rediscovered is None else ", ".join(sorted(self.rediscovered))
        )
        data.update({f"cost_{k}": v for k, v in self.costs.items()})
        return data


class ArmMetrics(CompositionMetrics):
    """Search metrics of one arm over all its compositions, with the per-composition ones."""

    compositions: list[CompositionMetrics] = Field(default_factory=list)

    def to_frame(self) -> pd.DataFrame:
        """One row for the arm (``composition == "all"``), then one per composition."""
        return pd.DataFrame([self.row()] + [c.row() for c in self.compositions])


class SearchMetrics(BaseModel):
    """Metrics of every arm of a comparison."""

    arms: list[ArmMetrics]
    settings: dict[str, Any] = Field(default_factory=dict)

    def arm(self, name: str) -> ArmMetrics:
        """The metrics of arm ``name`` (KeyError if there is none)."""
        for arm in self.arms:
            if arm.arm == name:
                return arm
        raise KeyError(name)

    def to_frame(self) -> pd.DataFrame:
        """One row per arm and composition (``composition == "all"``: the arm's total)."""
        frames = [arm.to_frame() for arm in self.arms]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _count(values: pd.Series) -> int | None:
    """Number of True values, None if any is unknown (a partial count would mislead)."""
    items = list(values)
    if any(v is None for v in items):
        return None
    return int(sum(bool(v) for v in items))


def _share(count: int | None, total: int) -> float | None:
    return None if count is None or total == 0 else count / total


def _group_metrics(
    group: pd.DataFrame, arm: str, formula: str | None, settings: MetricsSettings
) -> dict[str, Any]:
    e_d = pd.to_numeric(group.get("e_d", pd.Series(np.nan, index=group.index)), errors="coerce")
    with_e_d = e_d.dropna()
    best: dict[str, Any] = {}
    if len(with_e_d):
        index = with_e_d.idxmin()
        row = group.loc[index]
        number = row.get("spacegroup_number")
        symbol = row.get("spacegroup_symbol")
        best = {
            "e_d_min": float(with_e_d.min()),
            "e_d_median": float(with_e_d.median()),
            "best_candidate_id": str(row["candidate_id"]),
            "best_spacegroup_number": None if _missing(number) else int(number),
            "best_spacegroup_symbol": None if _missing(symbol) else str(symbol),
        }
    n_below = {threshold_key(t): int((with_e_d < t).sum()) for t in settings.thresholds}
    share_below = {k: (v / len(with_e_d) if len(with_e_d) else None) for k, v in n_below.items()}
    classified = [v for v in group["is_symmetric"] if v is not None]
    rediscovered = None
    n_rediscovered = None
    if group["rediscovery_checked"].any():
        rediscovered = {}
        for candidate_id, names in zip(
            group["candidate_id"], group["rediscovered_as"], strict=True
        ):
            for name in (names or "").split("; "):
                if name:
                    rediscovered.setdefault(name, []).append(str(candidate_id))
        n_rediscovered = int(group["rediscovered_as"].notna().sum())
    neutral = list(group["charge_neutral"])
    costs = {
        c: float(pd.to_numeric(group[c], errors="coerce").sum())
        for c in settings.cost_columns
        if c in group.columns
    }
    n_sun = _count(group["sun"])
    return {
        "arm": arm,
        "reduced_formula": formula,
        "n_candidates": len(group),
        "n_valid": int(group["is_valid"].sum()),
        # over the candidates whose structure was given (rejected ones often have none)
        "n_too_close": _count(group["too_close"].dropna())
        if group["too_close"].notna().any()
        else None,
        "n_charge_neutral": None
        if all(v is None for v in neutral)
        else int(sum(v is True for v in neutral)),
        "n_with_e_d": len(with_e_d),
        **best,
        "n_below": n_below,
        "share_below": share_below,
        "n_classified": len(classified),
        "n_symmetric": int(sum(classified)),
        "symmetric_share": _share(int(sum(classified)), len(classified)),
        "n_unique": int(group["unique"].sum()),
        "n_rediscovered": n_rediscovered,
        "rediscovered": rediscovered,
        "n_novel": _count(group["novel"]),
        "n_stable": int(group["stable"].sum()),
        "n_sun": n_sun,
        "sun_rate": _share(n_sun, len(group)),
        "costs": costs,
    }


def search_metrics(
    frame: pd.DataFrame,
    structures: Mapping[str, Structure] | None = None,
    known: Sequence[tuple[str, Structure]] | None = None,
    settings: MetricsSettings | None = None,
    arm_column: str = "arm",
) -> SearchMetrics:
    """Per-arm and per-composition search metrics of a candidate table.

    Parameters
    ----------
    frame, structures, known, settings, arm_column
        As for :func:`candidate_table` (``frame`` may also be its output).

    Returns
    -------
    SearchMetrics
        ``.arms`` in order of first appearance, each with its compositions sorted by
        formula; ``.to_frame()`` gives the table.

    Examples
    --------
    >>> frame = pd.DataFrame({"candidate_id": ["a", "b"], "reduced_formula": ["LiSi"] * 2,
    ...                       "e_d": [0.02, 0.2], "spacegroup_number": [88, 1]})
    >>> m = search_metrics(frame).arm("all")
    >>> m.e_d_median, m.share_below["0.03"], m.symmetric_share
    (0.11, 0.5, 0.5)
    """
    settings = settings or MetricsSettings()
    added = {"is_valid", "unique", "stable", "sun", "novel", "rediscovery_checked"}
    if added <= set(frame.columns) and "arm" in frame.columns:
        table = frame
    else:
        table = candidate_table(frame, structures, known, settings, arm_column)
    arms = []
    for arm in dict.fromkeys(table["arm"]):
        rows = table[table["arm"] == arm]
        compositions = [
            CompositionMetrics(**_group_metrics(group, str(arm), str(formula), settings))
            for formula, group in sorted(rows.groupby("reduced_formula"), key=lambda kv: kv[0])
        ]
        arms.append(
            ArmMetrics(**_group_metrics(rows, str(arm), None, settings), compositions=compositions)
        )
    return SearchMetrics(arms=arms, settings=settings.as_dict())
