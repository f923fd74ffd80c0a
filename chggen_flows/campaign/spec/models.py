"""The campaign spec's pydantic models: one typed section per concern.

The settings sections (``sampler``, ``inpaint``, ``relax``, ``framework``, ``baseline``)
are the science core's own settings classes (:class:`~chggen_flows.core.settings_model.
CoreSettings`): the spec holds the very objects the stage Makers carry and the jobs
use. A section is stored (and hashed) as the keys the user gave
(:meth:`~chggen_flows.core.settings_model.CoreSettings.given`), so the core's defaults
can improve without changing a stored campaign's hash.

To add a section: give it a model (a ``CoreSettings`` subclass when a Maker carries
it, else a :class:`SpecModel`), add the field here, pass it to the Maker in
``campaign/build.py`` (``stage_makers``) and list its keys in docs/campaigns.md.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import (
    Field,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from chggen_flows.campaign.spec.compositions import (
    CompositionLine,
    CompositionRange,
    SpecModel,
    check_elements,
    parse_composition,
    plain_formula,
)
from chggen_flows.core.baseline import BaselineSettings
from chggen_flows.core.device import check_device_name
from chggen_flows.core.generation import InpaintSettings, SamplerSettings
from chggen_flows.core.relax import RelaxSettings
from chggen_flows.core.relax.potentials import check_potential
from chggen_flows.core.symmetry import FrameworkSettings
from chggen_flows.makers.schemas import DEFAULT_DFT_THRESHOLD
from chggen_flows.makers.stages import resolve_routing, routing_problems

#: Volumes per atom outside this range (A^3/atom) are not crystals of real elements.
_VOLUME_RANGE = (5.0, 120.0)
#: The spec sections that are science-core settings classes (what each section holds).
SETTINGS_SECTIONS: dict[str, type] = {
    "sampler": SamplerSettings,
    "inpaint": InpaintSettings,
    "relax": RelaxSettings,
    "framework": FrameworkSettings,
    "baseline": BaselineSettings,
}


def _check_routing(routing: dict[str, str]) -> dict[str, str]:
    problems = routing_problems(routing)
    if problems:
        errors = [
            InitErrorDetails(
                type=PydanticCustomError("spec_value", "{message}", {"message": message}),
                loc=(key,),
                input=routing[key],
            )
            for key, message in problems.items()
        ]
        raise ValidationError.from_exception_data("routing", errors)
    return routing


class V0Settings(SpecModel):
    """Volume per atom of the sampled lattices (V = natoms * V0)."""

    source: Literal["auto", "value"] = "auto"
    value: float | None = Field(None, description="A^3/atom; required when source is 'value'.")

    @model_validator(mode="after")
    def _check(self) -> V0Settings:
        if self.source == "value" and self.value is None:
            raise ValueError("v0.source 'value' needs v0.value (A^3/atom)")
        if self.value is not None and not _VOLUME_RANGE[0] <= self.value <= _VOLUME_RANGE[1]:
            raise ValueError(
                f"impossible volume per atom {self.value} A^3 (expected "
                f"{_VOLUME_RANGE[0]}-{_VOLUME_RANGE[1]})"
            )
        return self


class ModelSettings(SpecModel):
    """Score model checkpoint (None: the shipped model) and device."""

    checkpoint: str | None = None
    device: str = "auto"

    @field_validator("device")
    @classmethod
    def _check_device(cls, value: str) -> str:
        # The name only: whether the worker has a GPU is known on the worker.
        return check_device_name(value)


class StabilitySettings(SpecModel):
    """E_d reference and the DFT gate."""

    reference: str = Field("offline", description="offline | mp | path to an entries file")
    dft_threshold: float = Field(
        DEFAULT_DFT_THRESHOLD, description="eV/atom; E_d below this goes to r2SCAN"
    )
    dft_max_candidates: int = Field(20, ge=0)
    dft: bool = True
    dft_prescreen_potential: str | None = Field(
        None,
        description="potential that re-relaxes the shortlist and ranks it on its own E_d "
        "before the VASP jobs (chgnet-r2scan: rank on r2SCAN); None ranks on the E_d stage's",
    )
    dft_prescreen_threshold: float | None = Field(
        None,
        description="eV/atom on the pre-screen potential's scale; candidates at or above "
        "it get no DFT (None: rank only)",
        allow_inf_nan=False,
    )

    @field_validator("dft_prescreen_potential")
    @classmethod
    def _check_prescreen_potential(cls, value: str | None) -> str | None:
        if value is not None:
            check_potential(value)
        return value


class HostSettings(SpecModel):
    """Host mode: a given host structure plus guests to insert by inpainting."""

    structure: str = Field(description="CIF/POSCAR path, relative to the spec file.")
    guests: dict[str, int]
    n_candidates: int = Field(ge=1)

    @field_validator("guests")
    @classmethod
    def _check_guests(cls, value: dict[str, int]) -> dict[str, int]:
        check_elements(list(value))
        for symbol, count in value.items():
            if count <= 0:
                raise ValueError(f"guest count of {symbol} must be positive, got {count}")
        return value


class CampaignSpec(SpecModel):
    """A validated campaign spec (see ``docs/campaigns.md`` for every field)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)
    description: str = ""
    mode: Literal["unconditional", "host"] = "unconditional"
    compositions: list[str] = Field(default_factory=list)
    composition_range: CompositionRange | None = None
    composition_line: CompositionLine | None = None
    guests: list[str] = Field(
        default_factory=list, description="Guest species removed to find the host framework."
    )
    formula_units: list[int] = Field(default_factory=lambda: [1, 2])
    lattices_per_composition: int = Field(2, ge=1)
    candidates_per_lattice: int = Field(4, ge=1)
    host: HostSettings | None = None
    v0: V0Settings = Field(default_factory=V0Settings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    # The science core's settings classes, as the Makers carry them (SETTINGS_SECTIONS).
    sampler: SamplerSettings = Field(default_factory=SamplerSettings)
    inpaint: InpaintSettings = Field(default_factory=InpaintSettings)
    relax: RelaxSettings = Field(default_factory=RelaxSettings)
    framework: FrameworkSettings = Field(default_factory=FrameworkSettings)
    stability: StabilitySettings = Field(default_factory=StabilitySettings)
    baseline: BaselineSettings | None = Field(
        None,
        description="Adds a random-search arm (keys of core.baseline.BaselineSettings, e.g. "
        "{kind: pyxtal}); see docs/baseline.md.",
    )
    batch_size: int = Field(200, ge=1, description="Candidates per job.")
    routing: dict[str, str] = Field(default_factory=dict)
    seed: int = 0

    @field_serializer(*SETTINGS_SECTIONS)
    def _given_keys(self, value: Any) -> Any:
        # the keys the user gave, as given: what the registry stores and the hash covers
        return None if value is None else value.given()

    _routing = field_validator("routing")(classmethod(lambda cls, v: _check_routing(v)))

    @field_validator("compositions")
    @classmethod
    def _check_compositions(cls, value: list[str]) -> list[str]:
        return [plain_formula(parse_composition(f)) for f in value]

    _elements = field_validator("guests")(classmethod(lambda cls, v: check_elements(v)))

    @field_validator("formula_units")
    @classmethod
    def _check_formula_units(cls, value: list[int]) -> list[int]:
        if not value:
            raise ValueError("formula_units must list at least one count")
        for n in value:
            if n <= 0:
                raise ValueError(f"formula unit counts must be positive, got {n}")
        return sorted(set(value))

    @model_validator(mode="after")
    def _check_mode(self) -> CampaignSpec:
        if self.mode == "host":
            if self.host is None:
                raise ValueError(
                    "mode 'host' needs a 'host' section (structure, guests, n_candidates)"
                )
            if self.baseline is not None:
                raise ValueError(
                    "a 'baseline' arm needs an unconditional campaign (its candidates are "
                    "the same compositions and cells as the generated ones)"
                )
        elif not self.all_compositions():
            raise ValueError(
                "no compositions: give 'compositions', 'composition_range' or 'composition_line'"
            )
        return self

    def all_compositions(self) -> list[str]:
        """Reduced formulas of every composition to search, duplicates removed."""
        formulas = list(self.compositions)
        for source in (self.composition_range, self.composition_line):
            if source is not None:
                formulas.extend(source.expand())
        return list(dict.fromkeys(formulas))

    def resolved_routing(self) -> dict[str, str]:
        """The worker category of every routed stage, the spec's overrides applied."""
        return resolve_routing(self.routing)

    def spec_hash(self) -> str:
        """sha256 of the spec's canonical JSON: equal specs give equal campaigns."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()
