"""Self-contained HTML of a campaign report.

Figures are embedded as base64 PNGs and CIFs as ``data:`` URIs, so the single
``report.html`` file can be mailed or attached to a notebook and still shows everything;
the same PNGs and CIFs are also written beside it for reuse.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from urllib.parse import quote

from chggen_flows import __version__
from chggen_flows.report.data import Distribution, ReportSummary, SymmetryRate

_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .8em 0; font-size: .9em; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: right; }
th { background: #f3f3f3; } td.l, th.l { text-align: left; }
figure { margin: 1em 0; } figure img { max-width: 100%; }
figcaption { font-size: .85em; color: #555; }
.missing { background: #fff6e0; border-left: 4px solid #e0a000; padding: .6em 1em; }
.note { font-size: .85em; color: #555; }
"""


#: Section anchors and titles, in order (the table of contents at the top).
_SECTIONS = (
    ("funnel", "Pipeline"),
    ("relaxation", "Relaxation"),
    ("e_d", "Energy above hull"),
    ("symmetry", "Symmetry"),
    ("spacegroups", "Space groups"),
    ("dft", "CHGNet vs r2SCAN"),
    ("best", "Best candidates"),
    ("locality", "Locality bias"),
)


@dataclass(frozen=True)
class RenderedFigure:
    """A figure ready to embed: file stem, caption and PNG bytes."""

    name: str
    caption: str
    png: bytes


def fmt(value: float | None, digits: int = 3) -> str:
    """A number as shown in the report (fixed ``digits`` decimals, "n/a" when missing)."""
    return "n/a" if value is None else f"{value:.{digits}f}"


def pct(value: float | None) -> str:
    """A fraction shown as a percentage with one decimal ("n/a" when missing)."""
    return "n/a" if value is None else f"{100 * value:.1f}%"


def cif_name(candidate_id: str) -> str:
    """File name of a candidate's CIF: the id with anything but [A-Za-z0-9._-] as '_'."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", candidate_id) + ".cif"


class Markup(str):
    """Text that is already HTML: table cells of this type are not escaped."""


def _table(header: list[str], rows: list[list[str]], left: int = 1) -> str:
    """An HTML table; the first ``left`` columns are left-aligned text. Cells are
    escaped here unless they are :class:`Markup`."""

    def cell(tag: str, i: int, text: str) -> str:
        cls = ' class="l"' if i < left else ""
        body = text if isinstance(text, Markup) else escape(text)
        return f"<{tag}{cls}>{body}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(header))
    body = "".join(
        "<tr>" + "".join(cell("td", i, c) for i, c in enumerate(row)) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figure(fig: RenderedFigure | None) -> str:
    if fig is None:
        return ""
    data = base64.b64encode(fig.png).decode("ascii")
    return (
        f'<figure id="fig-{fig.name}"><img alt="{escape(fig.caption)}" '
        f'src="data:image/png;base64,{data}"><figcaption>{escape(fig.caption)} '
        f'(<a href="figures/{fig.name}.png">PNG</a>)</figcaption></figure>'
    )


def _distribution_rows(dists: list[Distribution], quantity: str) -> list[list[str]]:
    return [
        [f"{quantity} {d.label} ({d.unit})", str(d.n), fmt(d.median), fmt(d.q25), fmt(d.q75)]
        for d in dists
    ]


def _rate_rows(rows: list[SymmetryRate], guests: bool) -> list[list[str]]:
    extra = (
        (lambda r: [str(r.n_symmetric_guests), pct(r.rate_symmetric_guests)])
        if guests
        else (lambda r: [])
    )
    return [
        [
            r.group,
            str(r.n_uncond),
            pct(r.rate_uncond),
            str(r.n_inpaint),
            pct(r.rate_inpaint),
            *extra(r),
        ]
        for r in rows
    ]


def _missing(text: str) -> str:
    return f'<p class="missing">{escape(text)}</p>'


def render_html(
    summary: ReportSummary,
    figures: dict[str, RenderedFigure],
    cifs: dict[str, str],
    locality: dict | None = None,
    locality_note: str | None = None,
) -> str:
    """The report as one HTML document.

    Parameters
    ----------
    summary
        Numbers from :func:`chggen_flows.report.data.gather`.
    figures
        Rendered figures by name (names of :data:`chggen_flows.report.figures.FIGURES`
        plus ``locality``); absent names are sections without data.
    cifs
        CIF text per candidate id of the best-candidates table (embedded as downloads).
    locality
        ``LocalityComparison.to_dict()`` when the locality analysis ran.
    locality_note
        Why the locality analysis did not run (shown instead of it).

    Returns
    -------
    str
        The HTML text.
    """
    s = summary
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>CHGGen report: {escape(s.campaign)}</title><style>{_CSS}</style></head><body>",
        f"<h1>CHGGen campaign report: {escape(s.campaign)}</h1>",
        f"<p class='note'>{s.n_candidates} candidates; chemical systems: "
        f"{escape(', '.join(s.chemical_systems) or 'none')}. Generated "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC by chggen-flows {__version__}.</p>",
        "<p class='note'>"
        + " · ".join(f"<a href='#{anchor}'>{title}</a>" for anchor, title in _SECTIONS)
        + "</p>",
    ]
    if s.missing:
        items = "".join(f"<li>{escape(m)}</li>" for m in s.missing)
        parts.append(
            f"<div class='missing'><strong>Missing or incomplete:</strong><ul>{items}</ul></div>"
        )

    parts.append("<h2 id='funnel'>Pipeline</h2>")
    if s.funnel:
        parts.append(
            _table(
                ["step", "candidates", "definition"],
                [[f.name, str(f.count), f.definition] for f in s.funnel],
            )
        )
    parts.append(_figure(figures.get("funnel")))

    parts.append("<h2 id='relaxation'>Relaxation: dE and RMSD</h2>")
    if any(d.n for d in s.de + s.rmsd):
        rows = _distribution_rows(s.de, "dE") + _distribution_rows(s.rmsd, "RMSD")
        parts.append(_table(["quantity", "n", "median", "25%", "75%"], rows))
        parts.append(_figure(figures.get("de_rmsd")))
    else:
        parts.append(_missing("No CHGNet relaxation has finished yet."))

    parts.append("<h2 id='e_d'>Energy above hull</h2>")
    if s.e_d is not None and s.e_d.n:
        parts.append(
            _table(
                ["quantity", "value"],
                [
                    ["distinct candidates with E_d", str(s.e_d.n)],
                    ["median E_d (eV/atom)", fmt(s.e_d.median)],
                    ["fraction below zero", pct(s.e_d.fraction_below_zero)],
                    ["below the DFT threshold", str(s.e_d.n_below_threshold)],
                    ["reference hull", s.hull or ", ".join(s.e_d_references) or "n/a"],
                    ["E_d may be too low (missing hull phase)", str(s.n_e_d_warnings)],
                ],
            )
        )
        for warning in s.e_d_warnings:
            parts.append(f"<p class='missing'>{escape(warning)}</p>")
        parts.append(_figure(figures.get("e_d")))
        parts.append(_figure(figures.get("hull")))
    else:
        parts.append(_missing("No E_d values yet: the 'ehull' stage has not run."))

    if s.arms:
        parts.append("<h2 id='arms'>Generation vs random search: the arms side by side</h2>")
        parts.append(
            "<p>The campaign's arms: generated (<code>chggen</code>), host arms "
            "(<code>hosts:analogue</code>, <code>hosts:frameworks</code>, "
            "<code>hosts:disordered</code>: guests inpainted into known, random or "
            "disordered hosts) and baselines (<code>baseline:*</code>: random search, "
            "plain substitution, Ewald and enumerated orderings), relaxed, classified "
            "and ranked by the same jobs. Each arm is "
            "de-duplicated on its own (docs/baseline.md explains every column; "
            "<code>chggen results CAMPAIGN --metrics</code> adds rediscovered and novel "
            "structures).</p>"
        )
        parts.append(
            _table(
                [
                    "arm",
                    "candidates",
                    "valid",
                    "median E_d",
                    "E_d < 0",
                    "E_d < 0.03",
                    "E_d < 0.1",
                    "lowest E_d (SG)",
                    "symmetric",
                    "unique",
                ],
                [
                    [
                        str(r["arm"]),
                        str(r["n_candidates"]),
                        str(r["n_valid"]),
                        fmt(r.get("e_d_median")),
                        pct(r.get("share_e_d_below_0")),
                        pct(r.get("share_e_d_below_0.03")),
                        pct(r.get("share_e_d_below_0.1")),
                        f"{fmt(r.get('e_d_min'))} ({r.get('best_spacegroup_symbol') or '-'})",
                        pct(r.get("symmetric_share")),
                        str(r["n_unique"]),
                    ]
                    for r in s.arms
                ],
            )
        )
        parts.append(_figure(figures.get("arms")))
        if s.templates:
            parts.append(
                "<p>Per template: the analogue arm (guests inpainted into the stripped "
                "framework) next to plain substitution of the same template.</p>"
            )
            parts.append(
                _table(
                    ["template", "formula", "SG", "arm", "candidates", "with E_d", "lowest E_d"],
                    [
                        [
                            str(r["material_id"]),
                            str(r["formula"]),
                            str(r["spacegroup"]),
                            str(r["arm"]),
                            str(r["n_candidates"]),
                            str(r["n_with_e_d"]),
                            fmt(r.get("e_d_min")),
                        ]
                        for r in s.templates
                    ],
                )
            )

    parts.append("<h2 id='symmetry'>Symmetry: unconditional vs inpainting</h2>")
    if s.symmetry_overall is not None:
        header = ["group", "n uncond.", "symmetric uncond.", "n inpainting", "symmetric inpainting"]
        guests = s.symmetry_overall.n_symmetric_guests > 0
        if guests:
            header += ["n symmetric guests", "symmetric (symmetric guests)"]
        parts.append(_table(header, _rate_rows([s.symmetry_overall], guests)))
        parts.append(_figure(figures.get("symmetry_composition")))
        by_comp = _rate_rows(s.symmetry_by_composition, guests)
        parts.append(_table(["composition", *header[1:]], by_comp))
        parts.append(_figure(figures.get("symmetry_natoms")))
        by_natoms = _rate_rows(s.symmetry_by_natoms, guests)
        parts.append(_table(["atoms per cell", *header[1:]], by_natoms))
    else:
        parts.append(_missing("No candidate has been classified for symmetry yet."))

    parts.append("<h2 id='spacegroups'>Space groups</h2>")
    if s.spacegroups:
        parts.append(_figure(figures.get("spacegroups")))
    else:
        parts.append(_missing("No symmetric final structures yet."))

    parts.append("<h2 id='dft'>CHGNet vs r2SCAN</h2>")
    if s.parity is not None:
        p = s.parity
        parts.append(
            _table(
                ["candidates", "MAE (eV/atom)", "RMSE (eV/atom)", "Pearson r"],
                [[str(p.n), fmt(p.mae), fmt(p.rmse), fmt(p.pearson_r)]],
                left=0,
            )
        )
        parts.append(_figure(figures.get("parity")))
    else:
        parts.append(_missing("No r2SCAN results yet: the parity plot needs finished DFT jobs."))

    parts.append("<h2 id='best'>Best candidates</h2>")
    if s.best:
        rows = []
        for b in s.best:
            cif = cifs.get(b.candidate_id)
            link = (
                Markup(
                    f'<a download="{escape(cif_name(b.candidate_id))}" '
                    f'href="data:chemical/x-cif;charset=utf-8,{quote(cif)}">CIF</a>'
                )
                if cif
                else "n/a"
            )
            sg = f"{b.spacegroup_symbol} ({b.spacegroup_number})" if b.spacegroup_symbol else "n/a"
            rows.append(
                [
                    b.candidate_id,
                    b.formula,
                    b.mode or "n/a",
                    str(b.natoms or "n/a"),
                    sg,
                    fmt(b.e_d),
                    fmt(b.e_d_r2scan),
                    "yes" if b.below_threshold else "no",
                    link,
                ]
            )
        header = [
            "candidate",
            "formula",
            "mode",
            "atoms",
            "space group",
            "E_d CHGNet (eV/atom)",
            "E_d r2SCAN (eV/atom)",
            "below threshold",
            "structure",
        ]
        parts.append(_table(header, rows, left=5))
        if not cifs:
            parts.append(_missing("Structures were not available, so no CIFs are attached."))
    else:
        parts.append(_missing("No candidate has an E_d yet, so there is no ranking."))

    parts.append("<h2 id='locality'>Locality bias</h2>")
    if locality is not None:
        rows = [[pair, fmt(d)] for pair, d in locality["rdf_distance"].items()]
        parts.append(
            f"<p class='note'>The {locality['n_generated']} largest unconditionally generated "
            f"cells, as sampled (before relaxation), vs {locality['n_reference']} reference "
            "structures; RDF distance D is 0 for identical curves and 1 for no overlap.</p>"
        )
        parts.append(_table(["element pair", "RDF distance D"], rows))
        cn_rows = [
            [
                el,
                fmt(locality["cn_mean_generated"].get(el), 2),
                fmt(locality["cn_mean_reference"].get(el), 2),
            ]
            for el in sorted(
                set(locality["cn_mean_generated"]) | set(locality["cn_mean_reference"])
            )
        ]
        parts.append(_table(["element", "mean CN generated", "mean CN reference"], cn_rows))
        parts.append(_figure(figures.get("locality")))
    else:
        parts.append(_missing(locality_note or "The locality analysis was not requested."))

    parts.append("</body></html>")
    return "\n".join(p for p in parts if p)
