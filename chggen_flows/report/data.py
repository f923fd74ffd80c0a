"""Numbers of a campaign report, gathered from the candidates table.

The input is the one-row-per-candidate frame of
``chggen_flows.campaign.results.load_candidates`` (columns
``chggen_flows.campaign.results.CANDIDATE_COLUMNS``); missing columns and missing values mean "this stage has not
produced that number yet". Every statistic is defined here once, with its denominator,
so the HTML, the figures and ``summary.json`` cannot disagree.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

# One definition of the table's columns and of the stage order: the results API's.
from chggen_flows.campaign.results import CANDIDATE_COLUMNS
from chggen_flows.makers.schemas import CHGGEN_ARM, STAGES, is_pipeline_arm

_NUMERIC = (
    "natoms",
    "formula_units",
    "de_uncond",
    "rmsd_uncond",
    "framework_symprec",
    "de_inpaint",
    "rmsd_inpaint",
    "spacegroup_number",
    "energy_per_atom",
    "e_d",
    "e_d_r2scan",
)
_FLAGS = ("valid", "symmetric_uncond", "framework_found", "symmetric", "below_threshold")


class FunnelStep(BaseModel):
    """How many candidates reached one step of the pipeline."""

    name: str
    count: int
    definition: str


class Distribution(BaseModel):
    """Summary of one per-candidate quantity (None where there are no values)."""

    label: str
    unit: str
    n: int
    median: float | None = None
    mean: float | None = None
    q25: float | None = None
    q75: float | None = None


class EdSummary(Distribution):
    """E_d distribution plus the fraction of candidates below the hull (E_d < 0)."""

    fraction_below_zero: float | None = None
    n_below_threshold: int = 0


class SymmetryRate(BaseModel):
    """Symmetry success of unconditional generation vs inpainting for one group.

    ``rate_uncond`` is the fraction of candidates with a known ``symmetric_uncond``
    that are symmetric after the first relaxation; ``rate_inpaint`` the fraction with
    a known final ``symmetric`` that are symmetric after inpainting (guests left free)
    and relaxation; ``rate_symmetric_guests`` the same for candidates whose guests were
    made symmetric (``inpaint.guest_symmetry``), None when the campaign has none.
    Random-search arms are not counted here.
    """

    group: str
    n_uncond: int
    rate_uncond: float | None
    n_inpaint: int
    rate_inpaint: float | None
    n_symmetric_guests: int = 0
    rate_symmetric_guests: float | None = None


class SpacegroupCount(BaseModel):
    """Number of distinct symmetric candidates in one final space group."""

    number: int
    symbol: str
    count: int


class ParityStats(BaseModel):
    """Agreement of CHGNet E_d with r2SCAN E_d over candidates that have both."""

    n: int
    mae: float
    rmse: float
    pearson_r: float | None


class BestCandidate(BaseModel):
    """One row of the best-candidates table."""

    candidate_id: str
    formula: str
    mode: str | None
    natoms: int | None
    spacegroup_symbol: str | None
    spacegroup_number: int | None
    e_d: float
    e_d_r2scan: float | None
    below_threshold: bool


class ReportSummary(BaseModel):
    """Everything a report shows as numbers (written as ``summary.json``)."""

    campaign: str
    n_candidates: int
    chemical_systems: list[str] = Field(default_factory=list)
    funnel: list[FunnelStep] = Field(default_factory=list)
    de: list[Distribution] = Field(default_factory=list)
    rmsd: list[Distribution] = Field(default_factory=list)
    e_d: EdSummary | None = None
    symmetry_overall: SymmetryRate | None = None
    symmetry_by_composition: list[SymmetryRate] = Field(default_factory=list)
    symmetry_by_natoms: list[SymmetryRate] = Field(default_factory=list)
    spacegroups: list[SpacegroupCount] = Field(default_factory=list)
    parity: ParityStats | None = None
    dft_states: dict[str, int] = Field(default_factory=dict)
    e_d_references: list[str] = Field(default_factory=list)
    hull: str | None = Field(None, description="The reference hull, in one line.")
    missing_phases: list[str] = Field(
        default_factory=list, description="Known phases the reference hull lacks."
    )
    n_e_d_warnings: int = Field(
        0, description="Distinct candidates whose E_d may be too low (missing hull phase)."
    )
    e_d_warnings: list[str] = Field(default_factory=list)
    arms: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Search metrics per arm (generated, host arms, baselines), when the "
        "campaign has more than one arm: one row per arm over all its compositions.",
    )
    templates: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Host arms with templates (analogue, substitution): one row per arm "
        "and template (material id, formula, space group), its candidates and lowest E_d.",
    )
    best: list[BestCandidate] = Field(default_factory=list)
    missing: list[str] = Field(default_factory=list)


def normalise_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` with every column of ``CANDIDATE_COLUMNS`` and clean types.

    Missing columns are added as all-missing, numeric columns become float (NaN when
    missing) and flag columns become nullable booleans, so that partial campaigns and
    documents written by older versions go through the same code.
    """
    out = frame.reindex(columns=list(dict.fromkeys([*frame.columns, *CANDIDATE_COLUMNS])))
    for col in _NUMERIC:
        out[col] = pd.to_numeric(out[col], errors="coerce").astype(float)
    for col in _FLAGS:
        out[col] = _as_flag(out[col])
    # Identifiers are shown and used as file names: always strings.
    out["candidate_id"] = [str(v) for v in out["candidate_id"]]
    return out.reset_index(drop=True)


def _as_flag(series: pd.Series) -> pd.Series:
    """Nullable booleans: True/False where known, <NA> where missing."""
    known = series.notna()
    values = pd.array([pd.NA] * len(series), dtype="boolean")
    values[known.to_numpy()] = series[known].astype(bool).to_numpy()
    return pd.Series(values, index=series.index)


def _is_true(series: pd.Series) -> pd.Series:
    return series.fillna(False).astype(bool)


def _stage_rank(stage: pd.Series) -> pd.Series:
    ranks = {name: i for i, name in enumerate(STAGES)}
    return stage.map(ranks).astype(float)


def _distribution(values: pd.Series, label: str, unit: str) -> Distribution:
    clean = values.dropna().to_numpy(dtype=float)
    if clean.size == 0:
        return Distribution(label=label, unit=unit, n=0)
    q25, median, q75 = np.percentile(clean, [25, 50, 75])
    return Distribution(
        label=label,
        unit=unit,
        n=int(clean.size),
        median=float(median),
        mean=float(clean.mean()),
        q25=float(q25),
        q75=float(q75),
    )


def funnel_steps(frame: pd.DataFrame) -> list[FunnelStep]:
    """Counts through the pipeline, each with the rule that defines it."""
    rank = _stage_rank(frame["stage"])
    relaxed = frame["de_uncond"].notna() | frame["de_inpaint"].notna()
    dft_state = frame["dft_state"].astype("string").str.upper()
    dft_done = frame["e_d_r2scan"].notna() | (dft_state == "COMPLETED").fillna(False)
    steps = (
        ("generated", len(frame), "every candidate"),
        ("valid", int(_is_true(frame["valid"]).sum()), "not rejected at any stage (valid = true)"),
        ("relaxed", int(relaxed.sum()), "has a CHGNet relaxation (dE known)"),
        (
            "framework found",
            int(_is_true(frame["framework_found"]).sum()),
            "framework_found = true",
        ),
        (
            "inpainted",
            int((rank >= STAGES.index("inpainted")).sum()),
            "reached stage 'inpainted' or later",
        ),
        ("symmetric", int(_is_true(frame["symmetric"]).sum()), "final structure not P1/P-1"),
        (
            "below threshold",
            int(_is_true(frame["below_threshold"]).sum()),
            "E_d below the DFT threshold (below_threshold = true)",
        ),
        ("DFT done", int(dft_done.sum()), "r2SCAN E_d known or dft_state COMPLETED"),
    )
    return [FunnelStep(name=n, count=c, definition=d) for n, c, d in steps]


def _rate(flags: pd.Series) -> tuple[int, float | None]:
    known = flags.dropna()
    if known.empty:
        return 0, None
    return len(known), float(known.astype(bool).mean())


def symmetry_rates(frame: pd.DataFrame, by: str | None) -> list[SymmetryRate]:
    """Symmetry success of unconditional vs inpainting, overall (``by=None``) or per group.

    Groups with neither rate known are left out; rows are sorted by number of atoms for
    ``by="natoms"``, else by group size (largest first).
    """
    arm = frame["arm"].fillna(CHGGEN_ARM)
    frame = frame[arm.map(is_pipeline_arm)]  # the host arms have no unconditional step
    groups: Iterable[tuple[object, pd.DataFrame]] = (
        [("all", frame)] if by is None else frame.dropna(subset=[by]).groupby(by, sort=False)
    )
    rows = []
    for key, part in groups:
        symmetric_guests = part["guest_symmetry"].fillna("free") == "symmetric"
        # a symmetric-guest copy shares its first relaxation with the candidate it copies
        n_u, r_u = _rate(part.loc[part["arm"].fillna(CHGGEN_ARM) == CHGGEN_ARM, "symmetric_uncond"])
        n_i, r_i = _rate(part.loc[~symmetric_guests, "symmetric"])
        n_s, r_s = _rate(part.loc[symmetric_guests, "symmetric"])
        if n_u == 0 and n_i == 0 and n_s == 0:
            continue
        label = str(int(key)) if isinstance(key, float) and key.is_integer() else str(key)
        rows.append(
            SymmetryRate(
                group=label,
                n_uncond=n_u,
                rate_uncond=r_u,
                n_inpaint=n_i,
                rate_inpaint=r_i,
                n_symmetric_guests=n_s,
                rate_symmetric_guests=r_s,
            )
        )
    if by == "natoms":
        rows.sort(key=lambda r: float(r.group))
    else:
        rows.sort(key=lambda r: -(r.n_uncond + r.n_inpaint + r.n_symmetric_guests))
    return rows


def unique_candidates(frame: pd.DataFrame) -> pd.DataFrame:
    """Candidates that are not duplicates of another (``duplicate_of`` missing)."""
    dup = frame["duplicate_of"]
    return frame[dup.isna() | (dup.astype("string") == "")]


def largest_generated(frame: pd.DataFrame, n: int) -> list[str]:
    """Ids of the ``n`` unconditionally generated candidates with the most atoms.

    The locality-bias sample: host-mode candidates are left out (their guests were never
    generated unconditionally), and large cells are where the bias shows (paper Fig. 2).
    """
    mode = frame["mode"].astype("string").fillna("unconditional")
    uncond = frame[mode != "host"]
    ordered = uncond.sort_values(["natoms", "candidate_id"], ascending=[False, True])
    return ordered["candidate_id"].head(n).tolist()


def _ed_summary(frame: pd.DataFrame) -> EdSummary:
    unique = unique_candidates(frame)
    base = _distribution(unique["e_d"], "E_d (CHGNet)", "eV/atom")
    values = unique["e_d"].dropna()
    return EdSummary(
        **base.model_dump(),
        fraction_below_zero=float((values < 0).mean()) if len(values) else None,
        n_below_threshold=int(_is_true(unique["below_threshold"]).sum()),
    )


def _spacegroups(frame: pd.DataFrame) -> list[SpacegroupCount]:
    unique = unique_candidates(frame)
    sym = unique[_is_true(unique["symmetric"]) & unique["spacegroup_number"].notna()]
    if sym.empty:
        return []
    symbols = sym["spacegroup_symbol"].astype("string").fillna("?")
    counts = sym.groupby([sym["spacegroup_number"].astype(int), symbols]).size()
    rows = [
        SpacegroupCount(number=int(n), symbol=str(s), count=int(c)) for (n, s), c in counts.items()
    ]
    return sorted(rows, key=lambda r: (-r.count, r.number))


def parity_stats(frame: pd.DataFrame) -> ParityStats | None:
    """MAE, RMSE and Pearson r of CHGNet vs r2SCAN E_d (None without DFT results)."""
    both = frame[["e_d", "e_d_r2scan"]].dropna()
    if both.empty:
        return None
    diff = both["e_d"].to_numpy() - both["e_d_r2scan"].to_numpy()
    r = None
    if len(both) > 2 and both["e_d"].std() > 0 and both["e_d_r2scan"].std() > 0:
        r = float(np.corrcoef(both["e_d"], both["e_d_r2scan"])[0, 1])
    return ParityStats(
        n=len(both),
        mae=float(np.abs(diff).mean()),
        rmse=float(math.sqrt((diff**2).mean())),
        pearson_r=r,
    )


def best_candidates(frame: pd.DataFrame, top: int = 20) -> list[BestCandidate]:
    """The ``top`` distinct candidates with the lowest E_d (r2SCAN E_d shown when known)."""
    unique = unique_candidates(frame).dropna(subset=["e_d"])
    best = unique.sort_values(["e_d", "candidate_id"]).head(top)
    return [
        BestCandidate(
            candidate_id=str(row.candidate_id),
            formula=str(row.reduced_formula if pd.notna(row.reduced_formula) else row.formula),
            mode=None if pd.isna(row.mode) else str(row.mode),
            natoms=None if pd.isna(row.natoms) else int(row.natoms),
            spacegroup_symbol=None
            if pd.isna(row.spacegroup_symbol)
            else str(row.spacegroup_symbol),
            spacegroup_number=None
            if pd.isna(row.spacegroup_number)
            else int(row.spacegroup_number),
            e_d=float(row.e_d),
            e_d_r2scan=None if pd.isna(row.e_d_r2scan) else float(row.e_d_r2scan),
            below_threshold=bool(row.below_threshold) if pd.notna(row.below_threshold) else False,
        )
        for row in best.itertuples(index=False)
    ]


def arm_rows(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Search metrics per arm (no structures here: rediscovery and novelty are left out),
    when the campaign has more than one arm."""
    from chggen_flows.core.analysis.search_metrics import search_metrics

    if "arm" not in df or df["arm"].dropna().nunique() < 2:
        return []
    metrics = search_metrics(df.assign(arm=df["arm"].fillna(CHGGEN_ARM)))
    return [arm.row() for arm in metrics.arms]


def template_rows(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Per arm and template (analogue inpainting next to plain substitution of the same
    template): candidates, those with E_d, the lowest E_d; empty without templates."""
    if "template" not in df:
        return []
    has = df["template"].map(lambda t: isinstance(t, dict))
    if not has.any():
        return []
    part = df[has]
    keys = part["template"].map(lambda t: str(t.get("material_id")))
    rows = []
    for (material_id, arm), group in part.groupby([keys, part["arm"].fillna(CHGGEN_ARM)]):
        template = group["template"].iloc[0]
        e_d = pd.to_numeric(group["e_d"], errors="coerce").dropna()
        rows.append(
            {
                "material_id": material_id,
                "formula": template.get("formula"),
                "spacegroup": template.get("spacegroup_symbol")
                or template.get("spacegroup_number"),
                "arm": arm,
                "n_candidates": len(group),
                "n_with_e_d": len(e_d),
                "e_d_min": float(e_d.min()) if len(e_d) else None,
            }
        )
    return sorted(rows, key=lambda r: (r["material_id"], r["arm"]))


def _missing_notes(summary: ReportSummary) -> list[str]:
    """One sentence per section that has nothing to show, saying which stage is missing."""
    notes = []
    if summary.n_candidates == 0:
        return ["No candidates found for this campaign: nothing has been generated yet."]
    if all(d.n == 0 for d in summary.de + summary.rmsd):
        notes.append("No dE/RMSD values: no candidate has finished a CHGNet relaxation yet.")
    if summary.e_d is None or summary.e_d.n == 0:
        notes.append("No E_d values: the energy-above-hull stage ('ehull') has not run yet.")
    if summary.symmetry_overall is None:
        notes.append("No symmetry classification yet: the 'classified' stage has not run.")
    if not summary.spacegroups:
        notes.append("No symmetric final structures: the space-group distribution is empty.")
    if summary.parity is None:
        note = "No r2SCAN results: the CHGNet vs r2SCAN parity plot needs DFT results."
        if summary.dft_states:
            states = ", ".join(f"{n} {state}" for state, n in sorted(summary.dft_states.items()))
            note += f" DFT jobs so far: {states}."
        notes.append(note)
    return notes


def gather(frame: pd.DataFrame, campaign: str | None = None, top: int = 20) -> ReportSummary:
    """All numbers of a report from a candidates frame.

    Parameters
    ----------
    frame
        One row per candidate (``load_candidates``); may be empty or lack columns.
    campaign
        Name shown in the report; taken from the ``campaign`` column when None.
    top
        Number of rows in the best-candidates table.

    Returns
    -------
    ReportSummary
        Counts, distributions and rates; ``missing`` says which sections are empty.
    """
    df = normalise_frame(frame)
    if campaign is None:
        names = df["campaign"].dropna().astype(str).unique()
        campaign = ", ".join(sorted(names)) if len(names) else "unnamed campaign"
    summary = ReportSummary(campaign=campaign, n_candidates=len(df))
    if len(df):
        summary.chemical_systems = sorted(df["chemsys"].dropna().astype(str).unique())
        summary.funnel = funnel_steps(df)
        summary.de = [
            _distribution(df["de_uncond"], "unconditional", "eV/atom"),
            _distribution(df["de_inpaint"], "inpainting", "eV/atom"),
        ]
        summary.rmsd = [
            _distribution(df["rmsd_uncond"], "unconditional", "Å"),
            _distribution(df["rmsd_inpaint"], "inpainting", "Å"),
        ]
        summary.e_d = _ed_summary(df)
        overall = symmetry_rates(df, None)
        summary.symmetry_overall = overall[0] if overall else None
        summary.symmetry_by_composition = symmetry_rates(df, "reduced_formula")
        summary.symmetry_by_natoms = symmetry_rates(df, "natoms")
        summary.spacegroups = _spacegroups(df)
        summary.parity = parity_stats(df)
        summary.e_d_references = sorted(df["e_d_reference"].dropna().astype(str).unique())
        warned = unique_candidates(df)["e_d_warning"].dropna().astype(str)
        summary.n_e_d_warnings = len(warned)
        summary.e_d_warnings = sorted(warned.unique())
        states = df["dft_state"].dropna().astype(str)
        summary.dft_states = {k: int(v) for k, v in states.value_counts().items()}
        summary.best = best_candidates(df, top)
        summary.arms = arm_rows(df)
        summary.templates = template_rows(df)
    summary.missing = _missing_notes(summary)
    return summary
