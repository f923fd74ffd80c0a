"""Campaign spec: a YAML file, validated with pydantic, with errors a user can act on.

A spec says what to search (chemical system and compositions, or a host and guests), how
much (formula units x lattices x candidates per lattice), and how (V0 source, sampler,
relaxation, symmetry, E_d reference, DFT threshold, batch size and worker categories).
See ``docs/campaigns.md`` and the examples shipped in ``chggen_flows/campaign/examples``.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import hashlib
import importlib
import itertools
import json
import math
import operator
import re
import types
import typing
from collections.abc import Callable
from functools import cache, reduce
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError
from pymatgen.core import Composition, Element

from chggen_flows.core.device import check_device_name
from chggen_flows.errors import CheckpointError, ChggenError, InputError
from chggen_flows.makers.flows import DEFAULT_ROUTING  # the one routing table (re-exported here)
from chggen_flows.makers.schemas import DEFAULT_DFT_THRESHOLD

#: Worker categories a job can be routed to (FireWorks ``_category``).
CATEGORIES = ("gpu", "cpu", "vasp")
#: Volumes per atom outside this range (A^3/atom) are not crystals of real elements.
_VOLUME_RANGE = (5.0, 120.0)
#: Named E_d reference sources (anything else is the path of an entries file).
REFERENCE_SOURCES = ("offline", "mp")
#: Folder (inside this package) of the example specs shipped as package data.
EXAMPLES_FOLDER = "examples"
#: Spec sections that the jobs pass as keyword arguments to a science-core settings
#: class (``module:Class``); the class's fields are the keys a section allows and its
#: ``__post_init__`` the ranges. Imported on first use: the sampler's module loads torch.
SETTINGS_SECTIONS = {
    "sampler": "chggen_flows.core.generation.sampler:SamplerSettings",
    "inpaint": "chggen_flows.core.generation.inpaint:InpaintSettings",
    "relax": "chggen_flows.core.relax.records:RelaxSettings",
    "framework": "chggen_flows.core.symmetry:FrameworkSettings",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _check_elements(symbols: list[str]) -> list[str]:
    for symbol in symbols:
        if not Element.is_valid_symbol(symbol):
            raise ValueError(f"unknown element {symbol!r}")
    return symbols


def _parse_composition(formula: str) -> Composition:
    """A composition with known elements and positive amounts, or a ValueError."""
    if not isinstance(formula, str) or not formula.strip():
        raise ValueError(f"empty composition {formula!r}")
    for token in _formula_symbols(formula):
        if not Element.is_valid_symbol(token):
            raise ValueError(f"unknown element {token!r} in composition {formula!r}")
    try:
        comp = Composition(formula)
    except Exception as exc:  # pymatgen raises several types for unparsable formulas
        raise ValueError(f"cannot parse composition {formula!r}: {exc}") from exc
    if any(amount <= 0 for amount in comp.values()) or comp.num_atoms <= 0:
        raise ValueError(f"composition {formula!r} has zero or negative amounts")
    if any(abs(amount - round(amount)) > 1e-8 for amount in comp.values()):
        raise ValueError(f"composition {formula!r} needs integer amounts")
    return comp


def plain_formula(composition: Composition) -> str:
    """Reduced formula without pymatgen's polyanion brackets: ``ZnP2S6``, not ``Zn(PS3)2``
    (used in candidate ids and file names)."""
    # ``formula`` orders elements by electronegativity ("Zn1 P2 S6"); drop the 1s.
    tokens = composition.reduced_composition.formula.split()
    return "".join(token[:-1] if re.fullmatch(r"[A-Za-z]+1", token) else token for token in tokens)


def _formula_symbols(formula: str) -> list[str]:
    """Element-like tokens of a formula (capital letter + lower-case letters)."""
    symbols, current = [], ""
    for char in formula:
        if char.isupper():
            if current:
                symbols.append(current)
            current = char
        elif char.islower() and current:
            current += char
        else:
            if current:
                symbols.append(current)
            current = ""
    if current:
        symbols.append(current)
    return symbols


_COMPARE = {
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_ARITH = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}


def _evaluate(node: ast.AST, counts: dict[str, int]) -> float | bool:
    """Evaluate a condition such as ``Li > Si`` or ``Li >= 2*Si`` on element counts.

    Only comparisons, +, -, *, numbers, element symbols and ``and``/``or`` are allowed, so
    a spec can never run code.
    """
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, counts)
    if isinstance(node, ast.Name):
        if node.id not in counts:
            raise ValueError(f"condition names {node.id!r}, not one of {sorted(counts)}")
        return counts[node.id]
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITH:
        return _ARITH[type(node.op)](_evaluate(node.left, counts), _evaluate(node.right, counts))
    if isinstance(node, ast.Compare):
        left = _evaluate(node.left, counts)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = _evaluate(comparator, counts)
            if type(op) not in _COMPARE or not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.BoolOp):
        values = [bool(_evaluate(v, counts)) for v in node.values]
        return all(values) if isinstance(node.op, ast.And) else any(values)
    raise ValueError(f"unsupported expression {ast.unparse(node)!r} in condition")


def settings_class(section: str) -> type:
    """The science-core settings dataclass that a spec section configures.

    Parameters
    ----------
    section
        ``sampler``, ``inpaint``, ``relax`` or ``framework``.

    Returns
    -------
    type
        A frozen dataclass whose ``__post_init__`` raises :class:`InputError` for values
        out of range (e.g. :class:`chggen_flows.core.relax.RelaxSettings`).
    """
    module, _, name = SETTINGS_SECTIONS[section].partition(":")
    return getattr(importlib.import_module(module), name)


def allowed_keys(section: str) -> list[str]:
    """Keys a settings section of the spec accepts: its core class's init fields.

    The dataclass is the single source of truth, so a field added to the core is
    accepted by specs at once (and one removed is rejected at submit, not on a worker).
    """
    return [f.name for f in dataclasses.fields(settings_class(section)) if f.init]


def section_settings(section: str, options: dict[str, Any]) -> Any:
    """The core settings object a job builds from a (validated) spec section.

    Lists become tuples for tuple-typed fields, as the framework job does for YAML's
    ``ladder`` lists. (The relaxation jobs also pass their device, ``model.device``,
    unless the section sets ``device``.)
    """
    hints = _field_types(section)
    values = {k: _as_tuples(v) if _is_tuple(hints[k]) else v for k, v in options.items()}
    return settings_class(section)(**values)


@cache
def _field_types(section: str) -> dict[str, Any]:
    # The core modules use ``from __future__ import annotations``: resolve the strings.
    return typing.get_type_hints(settings_class(section))


@cache
def _type_adapter(section: str, key: str) -> TypeAdapter:
    # Strict: the jobs get the user's values unconverted, so "1e-3" (YAML 1.1 reads it as
    # a string) or 1.0 for an integer must be rejected here, not coerced.
    return TypeAdapter(_field_types(section)[key], config=ConfigDict(strict=True))


def _is_tuple(hint: Any) -> bool:
    if typing.get_origin(hint) is tuple:
        return True
    return any(_is_tuple(arg) for arg in typing.get_args(hint) if arg is not Ellipsis)


def _as_tuples(value: Any) -> Any:
    return tuple(_as_tuples(v) for v in value) if isinstance(value, list | tuple) else value


def describe_type(hint: Any, plural: bool = False) -> str:
    """A settings field's type in words (``"an integer or null"``), for messages and docs.

    Parameters
    ----------
    hint
        A resolved type annotation of a core settings field.
    plural
        Words for a list of such values (``"integers"`` rather than ``"an integer"``).
    """
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return " or ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe_type(a, plural) for a in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {describe_type(args[0], plural=True)}"
        inner = ", ".join(describe_type(a).split(" ", 1)[-1] for a in args)
        return f"({inner}) {'lists' if plural else 'list'}"
    words = {
        bool: ("true or false", "true/false values"),
        int: ("an integer", "integers"),
        float: ("a number", "numbers"),
        str: ("a string", "strings"),
        Path: ("a path", "paths"),
        type(None): ("null", "nulls"),
    }
    if hint in words:
        return words[hint][plural]
    return getattr(hint, "__name__", str(hint))


def closest_key(key: object, allowed: list[str]) -> str | None:
    """The allowed key a mistyped ``key`` most likely meant (difflib), or None."""
    matches = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
    return matches[0] if matches else None


def unknown_key_message(key: object, allowed: list[str], what: str = "key") -> str:
    """``unknown key 'n_level'; did you mean 'n_levels'? (allowed: ...)``."""
    guess = closest_key(key, allowed)
    message = f"unknown {what} {key!r}"
    if guess is not None:
        message += f"; did you mean {guess!r}?"
    return f"{message} (allowed: {', '.join(allowed) or 'none'})"


def _line_error(loc: tuple, message: str, value: Any) -> InitErrorDetails:
    # The message goes in ctx: a template with braces of its own would be misread.
    error = PydanticCustomError("spec_value", "{message}", {"message": message})
    return InitErrorDetails(type=error, loc=loc, input=value)


def _core_problem(section: str, options: dict[str, Any]) -> str | None:
    """Why the core class refuses ``options``, or None when it accepts them."""
    try:
        section_settings(section, options)
    except ChggenError as exc:
        return exc.message + (f" ({exc.hint})" if exc.hint else "")
    except (TypeError, ValueError) as exc:  # a check the core class does not word itself
        return str(exc)
    return None


def _type_problem(section: str, key: str, value: Any) -> str | None:
    hint = _field_types(section)[key]
    candidate = _as_tuples(value) if _is_tuple(hint) else value
    try:
        _type_adapter(section, key).validate_python(candidate)
    except ValidationError:
        message = f"expected {describe_type(hint)}, got {value!r}"
        if isinstance(value, str) and re.fullmatch(r"[-+]?\d*\.?\d+[eE][-+]?\d+", value):
            message += " (YAML reads 1e-3 as a string: write 1.0e-3)"
        return message
    return None


def _other_section(key: str, section: str) -> str | None:
    for other in SETTINGS_SECTIONS:
        if other != section and key in allowed_keys(other):
            return other
    return None


def section_errors(section: str, options: dict[str, Any]) -> list[InitErrorDetails]:
    """Every problem of one settings section, located at its key.

    Unknown keys (with the closest allowed key), values of the wrong type, then the core
    class's own range checks: each key alone (so the error names it), and, when each is
    fine alone, all keys together (checks that relate two fields, e.g. sigma_min <=
    sigma_max).
    """
    allowed = allowed_keys(section)
    errors: list[InitErrorDetails] = []
    typed: dict[str, Any] = {}
    for key, value in options.items():
        if key not in allowed:
            message = unknown_key_message(key, allowed)
            other = _other_section(key, section)
            if other is not None:
                message += f"; {key!r} belongs in the '{other}' section"
            errors.append(_line_error((key,), message, value))
        elif (problem := _type_problem(section, key, value)) is not None:
            errors.append(_line_error((key,), problem, value))
        else:
            typed[key] = value
    alone = {key: _core_problem(section, {key: value}) for key, value in typed.items()}
    errors.extend(_line_error((k,), p, typed[k]) for k, p in alone.items() if p is not None)
    if not errors and (problem := _core_problem(section, typed)) is not None:
        errors.append(_line_error((), problem, options))
    return errors


def _settings_validator(section: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def check(options: dict[str, Any]) -> dict[str, Any]:
        errors = section_errors(section, options)
        if errors:
            # Raised as a ValidationError, pydantic prefixes each error's location with
            # the field's, so the message reads ``relax.fmax: ...``.
            raise ValidationError.from_exception_data(section, errors)
        return options  # unchanged: the jobs get and the registry stores the user's keys

    return check


def _routing_errors(routing: dict[str, str]) -> list[InitErrorDetails]:
    stages = list(DEFAULT_ROUTING)
    errors = []
    for stage, category in routing.items():
        if stage not in DEFAULT_ROUTING:
            errors.append(
                _line_error((stage,), unknown_key_message(stage, stages, "stage"), category)
            )
        elif category not in CATEGORIES:
            message = f"unknown category {category!r} for {stage} (known: {', '.join(CATEGORIES)})"
            guess = closest_key(category, list(CATEGORIES))
            if guess is not None:
                message += f"; did you mean {guess!r}?"
            errors.append(_line_error((stage,), message, category))
    return errors


def _check_routing(routing: dict[str, str]) -> dict[str, str]:
    errors = _routing_errors(routing)
    if errors:
        raise ValidationError.from_exception_data("routing", errors)
    return routing


SamplerOptions = Annotated[dict[str, Any], AfterValidator(_settings_validator("sampler"))]
InpaintOptions = Annotated[dict[str, Any], AfterValidator(_settings_validator("inpaint"))]
RelaxOptions = Annotated[dict[str, Any], AfterValidator(_settings_validator("relax"))]
FrameworkOptions = Annotated[dict[str, Any], AfterValidator(_settings_validator("framework"))]
Routing = Annotated[dict[str, str], AfterValidator(_check_routing)]


class CompositionRange(_Strict):
    """All compositions ``A_x B_y ...`` with integer counts in ``[1, max_count]``.

    Only reduced formulas are kept (``Li2Si2`` is ``LiSi``); ``condition`` filters them,
    e.g. ``"Li > Si"`` for the Li-rich side of Li-Si.
    """

    elements: list[str] = Field(min_length=2)
    max_count: int = Field(6, ge=1, le=20)
    condition: str | None = None

    _check = field_validator("elements")(classmethod(lambda cls, v: _check_elements(v)))

    @field_validator("condition")
    @classmethod
    def _parse_condition(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ast.parse(value, mode="eval")
            except SyntaxError as exc:
                raise ValueError(f"condition {value!r} is not an expression: {exc.msg}") from exc
        return value

    def expand(self) -> list[str]:
        """The reduced formulas in the range, in a stable order."""
        tree = ast.parse(self.condition, mode="eval") if self.condition else None
        formulas = []
        for counts in itertools.product(range(1, self.max_count + 1), repeat=len(self.elements)):
            if reduce(math.gcd, counts) != 1:
                continue
            named = dict(zip(self.elements, counts, strict=True))
            if tree is not None and not _evaluate(tree, named):
                continue
            formulas.append(plain_formula(Composition(named)))
        return formulas


class CompositionLine(_Strict):
    """Compositions on a pseudo-binary line ``a * A + b * B`` (e.g. ZnS-P2S5)."""

    endpoints: tuple[str, str]
    ratios: list[tuple[int, int]] = Field(min_length=1)

    @field_validator("endpoints")
    @classmethod
    def _check_endpoints(cls, value: tuple[str, str]) -> tuple[str, str]:
        for formula in value:
            _parse_composition(formula)
        return value

    @field_validator("ratios")
    @classmethod
    def _check_ratios(cls, value: list[tuple[int, int]]) -> list[tuple[int, int]]:
        for a, b in value:
            if a < 0 or b < 0 or a + b == 0:
                raise ValueError(f"ratio {a}:{b} needs non-negative counts, not both zero")
        return value

    def expand(self) -> list[str]:
        """The reduced formulas of the line's points, duplicates removed."""
        first, second = (Composition(f) for f in self.endpoints)
        formulas = [plain_formula(a * first + b * second) for a, b in self.ratios]
        return list(dict.fromkeys(formulas))


class V0Settings(_Strict):
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


class ModelSettings(_Strict):
    """Score model checkpoint (None: the shipped model) and device."""

    checkpoint: str | None = None
    device: str = "auto"

    @field_validator("device")
    @classmethod
    def _check_device(cls, value: str) -> str:
        # The name only: whether the worker has a GPU is known on the worker.
        return check_device_name(value)


class StabilitySettings(_Strict):
    """E_d reference and the DFT gate."""

    reference: str = Field("offline", description="offline | mp | path to an entries file")
    dft_threshold: float = Field(
        DEFAULT_DFT_THRESHOLD, description="eV/atom; E_d below this goes to r2SCAN"
    )
    dft_max_candidates: int = Field(20, ge=0)
    dft: bool = True


class HostSettings(_Strict):
    """Host mode: a given host structure plus guests to insert by inpainting."""

    structure: str = Field(description="CIF/POSCAR path, relative to the spec file.")
    guests: dict[str, int]
    n_candidates: int = Field(ge=1)

    @field_validator("guests")
    @classmethod
    def _check_guests(cls, value: dict[str, int]) -> dict[str, int]:
        _check_elements(list(value))
        for symbol, count in value.items():
            if count <= 0:
                raise ValueError(f"guest count of {symbol} must be positive, got {count}")
        return value


class CampaignSpec(_Strict):
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
    # Plain dicts of the user's keys (what the jobs receive and the registry stores),
    # checked against the core settings classes; see SETTINGS_SECTIONS.
    sampler: SamplerOptions = Field(default_factory=dict)
    inpaint: InpaintOptions = Field(default_factory=dict)
    relax: RelaxOptions = Field(default_factory=dict)
    framework: FrameworkOptions = Field(default_factory=dict)
    stability: StabilitySettings = Field(default_factory=StabilitySettings)
    baseline: dict[str, Any] | None = Field(
        None,
        description="Adds a random-search arm (keys of core.baseline.BaselineSettings, e.g. "
        "{kind: pyxtal}); see docs/baseline.md.",
    )
    batch_size: int = Field(200, ge=1, description="Candidates per job.")
    routing: Routing = Field(default_factory=dict)
    seed: int = 0

    @field_validator("baseline")
    @classmethod
    def _check_baseline(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        from chggen_flows.core.baseline import BaselineSettings

        allowed = [f.name for f in dataclasses.fields(BaselineSettings) if f.init]
        for key in value:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ValueError(f"unknown key {key!r}{hint} (allowed: {', '.join(allowed)})")
        try:
            BaselineSettings(**value)
        except (InputError, TypeError) as exc:
            raise ValueError(getattr(exc, "message", str(exc))) from exc
        return value  # unchanged: the jobs get and the registry stores the user's keys

    @field_validator("compositions")
    @classmethod
    def _check_compositions(cls, value: list[str]) -> list[str]:
        return [plain_formula(_parse_composition(f)) for f in value]

    _elements = field_validator("guests")(classmethod(lambda cls, v: _check_elements(v)))

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

    def category(self, stage: str) -> str:
        """The worker category the jobs of ``stage`` are routed to."""
        return self.routing.get(stage, DEFAULT_ROUTING[stage])

    def spec_hash(self) -> str:
        """sha256 of the spec's canonical JSON: equal specs give equal campaigns."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The spec model (CampaignSpec or a nested section) that holds the field at ``loc``."""
    model: type[BaseModel] = CampaignSpec
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        nested = [
            arg
            for arg in (field.annotation, *typing.get_args(field.annotation))
            if isinstance(arg, type) and issubclass(arg, BaseModel)
        ]
        if not nested:
            return None
        model = nested[0]
    return model


def _error_message(error: dict[str, Any]) -> str:
    if error["type"] == "extra_forbidden":
        # pydantic says only "Extra inputs are not permitted": name the closest field.
        model = _model_at(error["loc"])
        if model is not None:
            return unknown_key_message(error["loc"][-1], list(model.model_fields))
    return error["msg"].removeprefix("Value error, ")


def _format_validation_error(exc: ValidationError, origin: str) -> str:
    lines = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"]) or "(top level)"
        lines.append(f"{location}: {_error_message(error)}")
    return f"invalid campaign spec {origin}:\n  " + "\n  ".join(lines)


def parse_spec(
    data: dict[str, Any], origin: str = "", base_dir: Path | None = None
) -> CampaignSpec:
    """Validate a spec dict; relative paths (checkpoint, host structure) resolve against
    ``base_dir``. Raises :class:`InputError` listing every problem."""
    if not isinstance(data, dict):
        raise InputError(f"campaign spec {origin} is not a mapping", hint="see docs/campaigns.md")
    try:
        spec = CampaignSpec.model_validate(data)
    except ValidationError as exc:
        raise InputError(
            _format_validation_error(exc, origin),
            hint="fix the fields above (`chggen campaign check SPEC` checks a spec without "
            "submitting it); docs/campaigns.md lists every field and the keys of each section",
        ) from exc
    return _resolve_paths(spec, base_dir or Path.cwd())


def _resolve_paths(spec: CampaignSpec, base_dir: Path) -> CampaignSpec:
    updates: dict[str, Any] = {}
    if spec.model.checkpoint:
        from chggen_flows.core.model.checkpoint import resolve_checkpoint

        path = resolve_checkpoint(spec.model.checkpoint)
        path = path if path.is_absolute() else (base_dir / path)
        if not path.is_file():
            raise CheckpointError(
                f"model checkpoint {path} does not exist",
                hint="fix model.checkpoint in the spec, or remove it to use the shipped model",
            )
        updates["model"] = spec.model.model_copy(update={"checkpoint": str(path.resolve())})
    if spec.host is not None:
        path = Path(spec.host.structure).expanduser()
        path = path if path.is_absolute() else (base_dir / path)
        if not path.is_file():
            raise InputError(
                f"host structure {path} does not exist", hint="fix host.structure in the spec"
            )
        updates["host"] = spec.host.model_copy(update={"structure": str(path.resolve())})
    reference = spec.stability.reference
    if reference not in REFERENCE_SOURCES:
        path = Path(reference).expanduser()
        path = path if path.is_absolute() else (base_dir / path)
        if not path.is_file():
            raise InputError(
                f"E_d reference entries file {path} does not exist",
                hint=f"use one of {', '.join(REFERENCE_SOURCES)} or an existing .json/.csv file",
            )
        updates["stability"] = spec.stability.model_copy(update={"reference": str(path.resolve())})
    return spec.model_copy(update=updates) if updates else spec


def load_spec(path: str | Path) -> CampaignSpec:
    """Read and validate a YAML spec file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"campaign spec {path} does not exist", hint="check the path")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise InputError(f"campaign spec {path} is not valid YAML: {exc}") from exc
    return parse_spec(data, origin=str(path), base_dir=path.parent)


def example_names() -> list[str]:
    """Names of the example specs shipped with the package."""
    root = resources.files("chggen_flows.campaign") / EXAMPLES_FOLDER
    return sorted(p.name.removesuffix(".yaml") for p in root.iterdir() if p.name.endswith(".yaml"))


def example_path(name: str) -> Path:
    """Path of a shipped example spec (``li-si-quick``, ``li-si``, ``zn-p-s``, ...)."""
    candidate = resources.files("chggen_flows.campaign") / EXAMPLES_FOLDER / f"{name}.yaml"
    if not candidate.is_file():
        raise InputError(
            f"no example campaign named {name!r}",
            hint=f"choose one of: {', '.join(example_names())}",
        )
    return Path(str(candidate))
