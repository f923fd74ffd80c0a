"""Host sources for inpainting: analogue frameworks of known crystals, random symmetric
frameworks and disordered structures. Each gives :class:`HostSeed` objects (an ordered
host and the guests to inpaint) that :func:`inpaint_hosts` turns into candidates."""

from __future__ import annotations

from chggen_flows.core.hosts.analogue import (
    AnalogueHost,
    AnalogueSearch,
    AnalogueTarget,
    SkippedTemplate,
    find_analogue_hosts,
    framework_matches,
    substitute,
    template_guest_start,
)
from chggen_flows.core.hosts.disordered import (
    DisorderedHost,
    count_orderings,
    disordered_host,
    enumerate_orderings,
    ewald_orderings,
    host_from_structure,
)
from chggen_flows.core.hosts.frameworks import random_frameworks
from chggen_flows.core.hosts.inpainting import inpaint_hosts
from chggen_flows.core.hosts.seed import HostSeed
from chggen_flows.core.hosts.settings import HOST_ARMS, HostSourceSettings

__all__ = [
    "HOST_ARMS",
    "AnalogueHost",
    "AnalogueSearch",
    "AnalogueTarget",
    "DisorderedHost",
    "HostSeed",
    "HostSourceSettings",
    "SkippedTemplate",
    "count_orderings",
    "disordered_host",
    "enumerate_orderings",
    "ewald_orderings",
    "find_analogue_hosts",
    "framework_matches",
    "host_from_structure",
    "inpaint_hosts",
    "random_frameworks",
    "substitute",
    "template_guest_start",
]
