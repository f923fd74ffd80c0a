"""Campaign spec: a YAML file, validated with pydantic, with errors a user can act on.

A spec says what to search (chemical system and compositions, or a host and guests), how
much (formula units x lattices x candidates per lattice), and how (V0 source, sampler,
relaxation, symmetry, E_d reference, DFT threshold, batch size and worker categories).
See ``docs/campaigns.md`` and the examples shipped in ``chggen_flows/campaign/examples``.

- :mod:`.compositions`: the composition mini-language (ranges, lines, reduced formulas).
- :mod:`.models`: :class:`CampaignSpec` and its sections, typed with the science core's
  settings classes.
- :mod:`.load`: YAML in, a spec or one :class:`~chggen_flows.errors.InputError` out;
  the shipped examples.
"""

from __future__ import annotations

from chggen_flows.campaign.spec.compositions import (
    CompositionLine,
    CompositionRange,
    SpecModel,
    check_elements,
    parse_composition,
    plain_formula,
)
from chggen_flows.campaign.spec.load import (
    EXAMPLES_FOLDER,
    REFERENCE_SOURCES,
    example_names,
    example_path,
    load_spec,
    parse_spec,
)
from chggen_flows.campaign.spec.models import (
    SETTINGS_SECTIONS,
    CampaignSpec,
    HostSettings,
    ModelSettings,
    StabilitySettings,
    V0Settings,
)
from chggen_flows.errors import closest_key, unknown_key_message
from chggen_flows.makers.stages import CATEGORIES, DEFAULT_ROUTING

__all__ = [
    "CATEGORIES",
    "DEFAULT_ROUTING",
    "EXAMPLES_FOLDER",
    "REFERENCE_SOURCES",
    "SETTINGS_SECTIONS",
    "CampaignSpec",
    "CompositionLine",
    "CompositionRange",
    "HostSettings",
    "ModelSettings",
    "SpecModel",
    "StabilitySettings",
    "V0Settings",
    "check_elements",
    "closest_key",
    "example_names",
    "example_path",
    "load_spec",
    "parse_composition",
    "parse_spec",
    "plain_formula",
    "unknown_key_message",
]
