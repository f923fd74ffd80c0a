"""The one stage table: for each routed stage, its routing key, the record stage(s) its
jobs produce, its job name(s), its default worker category and its Maker.

The three vocabularies meet here: a spec's ``routing:`` keys (``symmetry``), the
:class:`~chggen_flows.makers.schemas.Stage` values its jobs are tagged with and that
records carry (``classified``), and the jobs' names (``symmetry``). The campaign spec
checks ``routing:`` against this table, the flow makers route every job through
:func:`resolve_routing`, and ``chggen campaign check`` prints it.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass

from chggen_flows.errors import closest_key, unknown_key_message
from chggen_flows.makers.schemas import Stage

#: Worker categories a job can be routed to (FireWorks ``_category``): a worker started
#: with ``chggen worker --category gpu`` runs the jobs routed to ``gpu``.
CATEGORIES: tuple[str, ...] = ("gpu", "cpu", "vasp")


@dataclass(frozen=True)
class RoutedStage:
    """One row of the stage table.

    Attributes
    ----------
    key
        The routing key (a spec's ``routing: {key: category}`` overrides the category).
    category
        Default worker category of its jobs (one of :data:`CATEGORIES`).
    maker
        ``module:Class`` of its Maker (imported on demand: the DFT makers load atomate2).
    stages
        The :class:`Stage` values its jobs are tagged with (``job.metadata["stage"]``)
        and leave their records at; empty for jobs added at run time.
    job_names
        The names its jobs get (the Makers' default ``name``).
    does
        What the stage does, in a few words (for ``chggen campaign check`` and the docs).
    """

    key: str
    category: str
    maker: str
    stages: tuple[Stage, ...]
    job_names: tuple[str, ...]
    does: str


#: The stage table, in pipeline order.
STAGE_TABLE: tuple[RoutedStage, ...] = (
    RoutedStage(
        "adapt",
        "gpu",
        "chggen_flows.makers.adapt:AdaptMaker",
        (),
        ("adapt",),
        "with a model.adapt section: fine-tune the score model on the system's known "
        "structures before generation (no candidate records)",
    ),
    RoutedStage(
        "generate",
        "gpu",
        "chggen_flows.makers.generate:GenerateMaker",
        (Stage.GENERATED,),
        ("generate",),
        "sample structures with the score model",
    ),
    RoutedStage(
        "relax",
        "cpu",
        "chggen_flows.makers.relax:RelaxMaker",
        (Stage.RELAXED, Stage.RELAXED_INPAINT),
        ("relax", "relax inpainted"),
        "CHGNet relaxation, after generation and after inpainting",
    ),
    RoutedStage(
        "framework",
        "cpu",
        "chggen_flows.makers.framework:FrameworkMaker",
        (Stage.FRAMEWORK,),
        ("framework", "host framework"),
        "remove the guests and symmetrise the host; in host mode, the user's host",
    ),
    RoutedStage(
        "inpaint",
        "gpu",
        "chggen_flows.makers.inpaint:InpaintMaker",
        (Stage.INPAINTED,),
        ("inpaint",),
        "inpaint the guests into the host with the score model",
    ),
    RoutedStage(
        "symmetry",
        "cpu",
        "chggen_flows.makers.symmetry:SymmetryMaker",
        (Stage.CLASSIFIED,),
        ("symmetry",),
        "classify the relaxed candidate's space group",
    ),
    RoutedStage(
        "ehull",
        "cpu",
        "chggen_flows.makers.ehull:EhullMaker",
        (Stage.EHULL,),
        ("ehull",),
        "E_d against the reference hull, over every batch; DFT shortlist",
    ),
    RoutedStage(
        "dft_gate",
        "cpu",
        "chggen_flows.makers.dft:DFTGateMaker",
        (Stage.DFT,),
        ("r2SCAN gate",),
        "choose the candidates for r2SCAN and add their VASP flows",
    ),
    RoutedStage(
        "dft",
        "vasp",
        "chggen_flows.makers.dft:R2SCANEdMaker",
        (),
        ("r2SCAN E_d",),
        "the VASP jobs the gate adds at run time",
    ),
    RoutedStage(
        "baseline",
        "cpu",
        "chggen_flows.makers.baseline:BaselineMaker",
        (Stage.GENERATED,),
        ("baseline",),
        "random-search arm, from a spec's baseline section",
    ),
    RoutedStage(
        "hosts",
        "cpu",
        "chggen_flows.makers.host_source:HostSourceMaker",
        (Stage.FRAMEWORK,),
        ("host source",),
        "host arms: analogue templates or random frameworks, ready for inpainting",
    ),
    RoutedStage(
        "substitution",
        "cpu",
        "chggen_flows.makers.substitution:SubstitutionMaker",
        (Stage.GENERATED,),
        ("substitution",),
        "plain ion exchange of the analogue templates (arm baseline:substitution)",
    ),
    RoutedStage(
        "orderings",
        "cpu",
        "chggen_flows.makers.orderings:OrderingMaker",
        (Stage.GENERATED,),
        ("orderings",),
        "Ewald and enumerated orderings of a disordered host (arms baseline:ewald, "
        "baseline:enumeration)",
    ),
)

#: Routing key -> default worker category (the table's ``category`` column).
DEFAULT_ROUTING: dict[str, str] = {row.key: row.category for row in STAGE_TABLE}


def stage_row(key: str) -> RoutedStage:
    """The table row of routing key ``key`` (KeyError for an unknown key)."""
    return next(row for row in STAGE_TABLE if row.key == key)


def maker_class(key: str) -> type:
    """The Maker class of routing key ``key``."""
    module, _, name = stage_row(key).maker.partition(":")
    return getattr(importlib.import_module(module), name)


def routing_problems(overrides: Mapping[str, str]) -> dict[str, str]:
    """Routing key -> why ``overrides`` cannot route it (an unknown key or category)."""
    problems = {}
    for key, category in overrides.items():
        if key not in DEFAULT_ROUTING:
            problems[key] = unknown_key_message(key, list(DEFAULT_ROUTING), "stage")
        elif category not in CATEGORIES:
            message = f"unknown category {category!r} for {key} (known: {', '.join(CATEGORIES)})"
            guess = closest_key(category, list(CATEGORIES))
            if guess is not None:
                message += f"; did you mean {guess!r}?"
            problems[key] = message
    return problems


def resolve_routing(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """The worker category of every routing key: the table's, with ``overrides``.

    The one place routing is resolved (the spec checks its ``routing:`` with
    :func:`routing_problems` first). Raises ValueError for an unknown routed stage or
    category.
    """
    problems = routing_problems(overrides or {})
    unknown = sorted(key for key in problems if key not in DEFAULT_ROUTING)
    if unknown:
        raise ValueError(f"unknown routed stage(s) {unknown}; known: {list(DEFAULT_ROUTING)}")
    if problems:
        raise ValueError("; ".join(problems.values()))
    return {**DEFAULT_ROUTING, **(overrides or {})}
