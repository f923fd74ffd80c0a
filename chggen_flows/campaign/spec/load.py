"""Reading a campaign spec: YAML in, a validated :class:`CampaignSpec` out, or one
:class:`~chggen_flows.errors.InputError` that lists every problem at its key; relative
paths resolved; the examples shipped with the package."""

from __future__ import annotations

import typing
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from chggen_flows.campaign.spec.models import SETTINGS_SECTIONS, CampaignSpec
from chggen_flows.core.settings_model import STRICT_CONTEXT, UNKNOWN_KEY, error_text
from chggen_flows.errors import CheckpointError, InputError, unknown_key_message

#: Named E_d reference sources (anything else is the path of an entries file).
REFERENCE_SOURCES = ("offline", "mp")
#: Folder (inside chggen_flows.campaign) of the example specs shipped as package data.
EXAMPLES_FOLDER = "examples"


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
    if error["type"] in ("extra_forbidden", UNKNOWN_KEY):
        model = _model_at(error["loc"])
        if model is not None:
            key = error["loc"][-1]
            # pydantic says only "Extra inputs are not permitted": name the closest field
            message = unknown_key_message(key, list(model.model_fields))
            other = _other_section(key, model)
            if other is not None:
                message += f"; {key!r} belongs in the '{other}' section"
            return message
    return error_text(error)


def _other_section(key: object, model: type[BaseModel]) -> str | None:
    """The settings section that has ``key``, when ``model`` is another one."""
    for section, cls in SETTINGS_SECTIONS.items():
        if cls is not model and key in cls.model_fields:
            return section
    return None


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
        # strict: "1e-3" or 1.5 for an integer is an error here, not converted
        spec = CampaignSpec.model_validate(data, context={STRICT_CONTEXT: True})
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
    if spec.model.adapt is not None:
        model = updates.get("model", spec.model)
        sources = [
            _resolve_source(s, base_dir, "model.adapt.source") for s in spec.model.adapt.source
        ]
        adapt = spec.model.adapt.model_copy(update={"source": sources})
        updates["model"] = model.model_copy(update={"adapt": adapt})
    if spec.host is not None:
        path = Path(spec.host.structure).expanduser()
        path = path if path.is_absolute() else (base_dir / path)
        if not path.is_file():
            raise InputError(
                f"host structure {path} does not exist", hint="fix host.structure in the spec"
            )
        updates["host"] = spec.host.model_copy(update={"structure": str(path.resolve())})
    if spec.hosts is not None and spec.hosts.source:
        updates["hosts"] = _resolved_sources(spec.hosts, base_dir)
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


def _resolve_source(source: str, base_dir: Path, key: str) -> str:
    """One structure source of the spec (``key`` names where): a named source (the
    Materials Project: ``mp``, ``materials_project``) as it is, a file or folder made
    absolute against the spec's folder and required to exist."""
    from chggen_flows.core.sources.readers.materials_project import MaterialsProject

    if source in HOST_SOURCE_NAMES or MaterialsProject.claims(source):
        return source
    path = Path(source).expanduser()
    path = path if path.is_absolute() else (base_dir / path)
    if not path.exists():
        raise InputError(
            f"{key} {path} does not exist",
            hint="give a folder of CIFs, a .json/.csv file of structures, or materials_project",
        )
    return str(path.resolve())


def _resolved_sources(hosts: Any, base_dir: Path) -> Any:
    """``hosts`` with each file or folder source made absolute (checked to exist)."""
    given = (hosts.source,) if isinstance(hosts.source, str) else hosts.source
    sources = [_resolve_source(source, base_dir, "hosts.source") for source in given]
    return type(hosts)(**{**hosts.given(), "source": sources})


#: Structure sources that are names, not paths (core.sources).
HOST_SOURCE_NAMES: tuple[str, ...] = ("mp", "materials_project")


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
