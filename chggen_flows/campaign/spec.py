"""Campaign spec: a YAML file, validated with pydantic, with errors a user can act on.

A spec says what to search (chemical system and compositions, or a host and guests), how
much (formula units x lattices x candidates per lattice), and how (V0 source, sampler,
relaxation, symmetry, E_d reference, DFT threshold, batch size and worker categories).
See ``docs/campaigns.md`` and the examples shipped in ``chggen_flows/campaign/examples``.
"""

from __future__ import annotations

import ast
import hashlib
import itertools
import json
import math
import operator
import re
from functools import reduce
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pymatgen.core import Composition, Element

from chggen_flows.errors import CheckpointError, InputError

#: Worker categories a job can be routed to (FireWorks ``_category``).
CATEGORIES = ("gpu", "cpu", "vasp")
#: Stages whose jobs are routed, and their default categories.
DEFAULT_ROUTING = {
    "generate": "gpu",
    "relax": "cpu",
    "framework": "cpu",
    "inpaint": "gpu",
    "symmetry": "cpu",
    "ehull": "cpu",
    "dft": "vasp",
}
#: Volumes per atom outside this range (A^3/atom) are not crystals of real elements.
_VOLUME_RANGE = (5.0, 120.0)
#: Named E_d reference sources (anything else is the path of an entries file).
REFERENCE_SOURCES = ("offline", "mp")
#: Folder (inside this package) of the example specs shipped as package data.
EXAMPLES_FOLDER = "examples"


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


class StabilitySettings(_Strict):
    """E_d reference and the DFT gate."""

    reference: str = Field("offline", description="offline | mp | path to an entries file")
    dft_threshold: float = Field(0.1, description="eV/atom; E_d below this goes to r2SCAN")
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
    sampler: dict[str, Any] = Field(default_factory=dict)
    inpaint: dict[str, Any] = Field(default_factory=dict)
    relax: dict[str, Any] = Field(default_factory=dict)
    framework: dict[str, Any] = Field(default_factory=dict)
    stability: StabilitySettings = Field(default_factory=StabilitySettings)
    batch_size: int = Field(200, ge=1, description="Candidates per job.")
    routing: dict[str, str] = Field(default_factory=dict)
    seed: int = 0

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

    @field_validator("routing")
    @classmethod
    def _check_routing(cls, value: dict[str, str]) -> dict[str, str]:
        for stage, category in value.items():
            if stage not in DEFAULT_ROUTING:
                raise ValueError(
                    f"unknown stage {stage!r} in routing ({', '.join(DEFAULT_ROUTING)})"
                )
            if category not in CATEGORIES:
                raise ValueError(
                    f"unknown category {category!r} for {stage} (known: {', '.join(CATEGORIES)})"
                )
        return value

    @model_validator(mode="after")
    def _check_mode(self) -> CampaignSpec:
        if self.mode == "host":
            if self.host is None:
                raise ValueError(
                    "mode 'host' needs a 'host' section (structure, guests, n_candidates)"
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


def _format_validation_error(exc: ValidationError, origin: str) -> str:
    lines = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"]) or "(top level)"
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"{location}: {message}")
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
            hint="fix the fields above; docs/campaigns.md describes each one",
        ) from exc
    return _resolve_paths(spec, base_dir or Path.cwd())


def _resolve_paths(spec: CampaignSpec, base_dir: Path) -> CampaignSpec:
    updates: dict[str, Any] = {}
    if spec.model.checkpoint:
        path = Path(spec.model.checkpoint).expanduser()
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
