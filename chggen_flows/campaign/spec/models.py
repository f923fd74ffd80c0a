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
    BaseModel,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
    model_serializer,
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
from chggen_flows.core.hosts.settings import HostSourceSettings
from chggen_flows.core.model.adapt import AdaptSettings
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
    "hosts": HostSourceSettings,
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


class AdaptSpec(AdaptSettings):
    """``model.adapt``: fine-tune the campaign's model on the known structures of its
    chemical system before generation (the keys of
    :class:`~chggen_flows.core.model.adapt.AdaptSettings`, plus ``source``).

    Stored and hashed as the keys the user gave, so the core's defaults can change
    without moving a stored campaign's hash.
    """

    source: list[str] = Field(
        min_length=1,
        description="Structure source(s): a folder of CIFs, a .json/.csv file, or "
        "materials_project; relative paths are relative to the spec file.",
    )

    @field_validator("source", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("device")
    @classmethod
    def _check_device(cls, value: str) -> str:
        return check_device_name(value)

    @field_validator("exclude_formulas")
    @classmethod
    def _known_elements(cls, value: list[str]) -> list[str]:
        # a misspelt element would match nothing: the phase would not be held out
        for formula in value:
            parse_composition(formula)
        return value

    def given(self) -> dict[str, Any]:
        """The keys set in the spec, as stored and hashed (and handed to the Maker)."""
        return self.model_dump(mode="json", exclude_unset=True)


class ModelSettings(SpecModel):
    """Score model checkpoint (None: the shipped model), device, and adaptation."""

    checkpoint: str | None = None
    device: str = "auto"
    adapt: AdaptSpec | None = None

    @field_validator("device")
    @classmethod
    def _check_device(cls, value: str) -> str:
        # The name only: whether the worker has a GPU is known on the worker.
        return check_device_name(value)

    @model_serializer(mode="wrap")
    def _without_absent_adapt(self, handler: Any) -> Any:
        # a spec without model.adapt dumps (and hashes) exactly as before the key existed
        data = handler(self)
        if self.adapt is None:
            data.pop("adapt", None)
        else:
            data["adapt"] = self.adapt.given()
        return data


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

    @model_serializer(mode="wrap")
    def _stored(self, handler: Any) -> Any:
        # the pre-screen keys came later: stored only when given (hashes unchanged)
        return _without_unset(self, handler(self), _LATER_STABILITY_KEYS)

    @field_validator("dft_prescreen_potential")
    @classmethod
    def _check_prescreen_potential(cls, value: str | None) -> str | None:
        if value is not None:
            check_potential(value)
        return value


#: Keys added after campaigns were stored, per section: stored (and hashed) only when
#: given, so a spec stored before them keeps its campaign id.
_LATER_HOST_KEYS = frozenset({"max_supercell", "ewald", "enumeration_limit"})
_LATER_STABILITY_KEYS = frozenset({"dft_prescreen_potential", "dft_prescreen_threshold"})


def _without_unset(model: BaseModel, data: Any, keys: frozenset[str]) -> Any:
    """``data`` (``model`` dumped) without those of ``keys`` the user did not give."""
    if isinstance(data, dict):
        for key in keys - model.model_fields_set:
            data.pop(key, None)
    return data


#: Spec sections added after campaigns were stored: left out of the stored spec (and
#: its hash) while unset.
_LATER_SECTIONS = ("hosts",)


class HostSettings(SpecModel):
    """Host mode: a given host structure plus guests to insert by inpainting.

    A structure with partial occupancies defines its own guests (no ``guests``): the
    fully occupied sites are the host, the partially occupied species the guests, on
    the smallest supercell (up to ``max_supercell``) with whole counts; its Ewald and
    enumeration baselines run on the same supercell (docs/hosts.md).
    """

    structure: str = Field(description="CIF/POSCAR path, relative to the spec file.")
    guests: dict[str, int] | None = None
    n_candidates: int = Field(ge=1)
    max_supercell: int = Field(8, ge=1, description="Disordered host: largest supercell.")
    ewald: int = Field(16, ge=0, description="Disordered host: Ewald orderings kept (0: none).")
    enumeration_limit: int = Field(
        500, ge=0, description="Disordered host: enumerate up to this many orderings (0: never)."
    )

    @model_serializer(mode="wrap")
    def _stored(self, handler: Any) -> Any:
        # keys added for disordered hosts are stored only when given (hashes unchanged)
        return _without_unset(self, handler(self), _LATER_HOST_KEYS)

    @field_validator("guests")
    @classmethod
    def _check_guests(cls, value: dict[str, int] | None) -> dict[str, int] | None:
        if value is None:
            return None
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
    hosts: HostSourceSettings | None = Field(
        None,
        description="Adds host arms (analogue templates, plain substitution, random "
        "frameworks; keys of core.hosts.HostSourceSettings); see docs/hosts.md.",
    )
    batch_size: int = Field(200, ge=1, description="Candidates per job.")
    routing: dict[str, str] = Field(default_factory=dict)
    seed: int = 0

    @field_serializer(*SETTINGS_SECTIONS)
    def _given_keys(self, value: Any) -> Any:
        # the keys the user gave, as given: what the registry stores and the hash covers
        return None if value is None else value.given()

    @model_serializer(mode="wrap")
    def _stored(self, handler: Any) -> Any:
        data = handler(self)
        if isinstance(data, dict):
            for key in _LATER_SECTIONS:
                if getattr(self, key) is None:
                    data.pop(key, None)
        return data

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
            if self.hosts is not None:
                raise ValueError(
                    "a 'hosts' section needs an unconditional campaign (its hosts are made "
                    "for the campaign's compositions); a host-mode campaign has one host"
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
