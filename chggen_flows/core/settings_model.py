"""The base of the science core's settings classes (sampler, inpainting, relaxation, ...).

Each settings class is a frozen pydantic model: its fields are the keys a campaign spec
section accepts, their defaults are the one home of each default (the CLI's options and
the docs read them), and its validators hold the ranges. The same object travels from
the YAML file through the spec, the Makers and the stored FireWorks documents to the
job that uses it.

Two ways in:

- ``SamplerSettings(n_levels=0)`` (Python, the CLI, a Maker): values are converted as
  pydantic does (a YAML list becomes a tuple) and a bad value raises
  :class:`~chggen_flows.errors.InputError` with the message and hint of the check that
  failed.
- A campaign spec (``model_validate(..., context={STRICT_CONTEXT: True})``): values are
  first checked strictly against each field's type, so ``"1e-3"`` (YAML 1.1 reads it as
  a string) or ``1.5`` for an integer is refused with ``expected ..., got ...`` instead
  of being converted; pydantic then reports every problem at its key.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from chggen_flows.errors import ChggenError, InputError, unknown_key_message

#: Validation-context key that turns on the strict type check of campaign specs.
STRICT_CONTEXT = "strict_settings"
#: Error type of a key that is not a field (pydantic's own says only "Extra inputs...").
UNKNOWN_KEY = "settings_unknown_key"


class CoreSettings(BaseModel):
    """A frozen, validated settings object of the science core.

    Subclasses declare fields with defaults and raise :class:`InputError` (a
    ``ValueError``) from field validators for values out of range, so pydantic locates
    the problem at its field. ``renamed`` maps keys a stored campaign may still use to
    the current field names.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Old key -> field name, accepted from stored specs and Makers (one place per class).
    renamed: ClassVar[dict[str, str]] = {}
    # The keys and values as given (a spec's YAML): what a spec stores and hashes.
    _given: dict[str, Any] | None = PrivateAttr(default=None)

    def __init__(self, /, *args: Any, **data: Any) -> None:
        if args:  # positional, in field order, as the dataclasses these were accepted
            names = list(type(self).model_fields)
            if len(args) > len(names) or set(names[: len(args)]) & set(data):
                raise TypeError(f"{type(self).__name__}: bad positional arguments {args!r}")
            data = {**dict(zip(names, args, strict=False)), **data}
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise settings_error(type(self), exc) from exc

    # Nested in a spec, pydantic must validate the fields itself (not call this
    # __init__), so that each problem keeps its location instead of one InputError.
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    @model_validator(mode="wrap")
    @classmethod
    def _check_input(cls, data: Any, handler: Any, info: ValidationInfo) -> Any:
        given = None
        if isinstance(data, Mapping):
            # "@module"/"@class" are monty's markers (as_dict), not settings
            data = given = {
                cls.renamed.get(key, key): value
                for key, value in data.items()
                if not str(key).startswith("@")
            }
            strict = bool(info.context and info.context.get(STRICT_CONTEXT))
            errors = input_errors(cls, data, strict)
            if errors:
                # the other keys' range checks too: every problem at once
                bad = {detail["loc"][0] for detail in errors}
                try:
                    handler({key: value for key, value in data.items() if key not in bad})
                except ValidationError as exc:
                    errors.extend(_details(exc))
                raise ValidationError.from_exception_data(cls.__name__, errors)
        settings = handler(data)
        if given is not None and settings is not data:
            settings._given = given
        problem = settings.related_problem()
        if problem is not None:
            # raised here, not in an after-validator, so pydantic keeps the location
            raise _located(settings, problem)
        return settings

    @classmethod
    def default(cls, name: str) -> Any:
        """The default of field ``name`` (for the CLI's options: one home per default)."""
        field = cls.model_fields[name]
        return field.get_default(call_default_factory=True)

    def related_problem(self) -> RelatedFieldsError | None:
        """The first failed check that relates several fields, or None."""
        return None

    def __eq__(self, other: object) -> bool:
        # the values decide, not how they were given (pydantic compares private state too)
        if type(other) is not type(self):
            return NotImplemented
        return self.__dict__ == other.__dict__  # type: ignore[union-attr]

    def given(self) -> dict[str, Any]:
        """The keys set explicitly, with their values as given (YAML lists stay lists):
        what a campaign spec stores and hashes, so validation does not change either."""
        if self._given is not None:
            return dict(self._given)
        return self.model_dump(exclude_unset=True)

    def as_dict(self) -> dict[str, Any]:
        """monty's MSONable form (how jobflow stores a Maker that carries settings in a
        FireWorks document): the class and the keys given, so a job decoded later
        still knows which values were left to their defaults."""
        return {"@module": type(self).__module__, "@class": type(self).__name__, **self.given()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Inverse of :meth:`as_dict` (monty's decoder calls it)."""
        return cls(**data)

    @classmethod
    def coerce(cls, value: Self | Mapping[str, Any] | None) -> Self:
        """``value`` as settings: a Maker's field may hold the plain dict of keyword
        arguments that Makers stored before the fields were typed (old FireWorks
        documents), or None for the defaults."""
        if isinstance(value, cls):
            return value
        return cls() if value is None else cls(**dict(value))


def settings_error(cls: type[BaseModel], exc: ValidationError) -> ChggenError:
    """The user-facing error of a failed construction: the check's own InputError when
    one check failed, else every problem, one per line, at its key."""
    errors = exc.errors()
    if len(errors) == 1:
        context = errors[0].get("ctx", {})
        if isinstance(context.get("error"), ChggenError):
            return context["error"]
        if errors[0]["type"].startswith("settings_"):
            return InputError(context["message"], hint=context.get("hint") or None)
    lines = [f"{'.'.join(map(str, e['loc'])) or '(all)'}: {error_text(e)}" for e in errors]
    return InputError(
        f"invalid {cls.__name__}: " + "; ".join(lines),
        hint=f"see the documentation of {cls.__module__}.{cls.__name__}",
    )


def error_text(error: Mapping[str, Any]) -> str:
    """One pydantic error in words: a core check's message (with its hint), or pydantic's."""
    context = error.get("ctx", {})
    own = context.get("error")
    if isinstance(own, ChggenError):
        return own.message + (f" ({own.hint})" if own.hint else "")
    if error["type"].startswith("settings_") and context.get("hint"):
        return f"{context['message']} ({context['hint']})"
    return str(error["msg"]).removeprefix("Value error, ")


def _error(kind: str, key: str, value: Any, message: str, hint: str = "") -> InitErrorDetails:
    context = {"message": message, "hint": hint}
    error = PydanticCustomError(kind, "{message}", context)
    return InitErrorDetails(type=error, loc=(key,), input=value)


def input_errors(
    cls: type[BaseModel], data: Mapping[str, Any], strict: bool
) -> list[InitErrorDetails]:
    """Unknown keys (with the closest field: ``did you mean 'n_levels'?``) and, when
    ``strict``, values of the wrong type for their field, each located at its key."""
    errors = []
    for key, value in data.items():
        if key not in cls.model_fields:
            message = unknown_key_message(key, list(cls.model_fields))
            errors.append(_error(UNKNOWN_KEY, key, value, message))
        elif (
            strict
            and not _is_settings(field_types(cls)[key])  # a nested class checks its own
            and (problem := type_problem(cls, key, value)) is not None
        ):
            errors.append(_error("settings_type", key, value, problem))
    return errors


def _details(exc: ValidationError) -> list[InitErrorDetails]:
    """``exc``'s errors, to be raised again with others."""
    details = []
    for error in exc.errors():
        context = error.get("ctx")
        kind: Any = error["type"]
        if kind.startswith("settings_"):  # ours: PydanticCustomError, not a built-in type
            kind = PydanticCustomError(kind, "{message}", context)
        detail = InitErrorDetails(type=kind, loc=error["loc"], input=error["input"])
        if context is not None and not isinstance(kind, PydanticCustomError):
            detail["ctx"] = context
        details.append(detail)
    return details


def type_problem(cls: type[BaseModel], key: str, value: Any) -> str | None:
    """Why ``value`` is not strictly of field ``key``'s type (lists count as tuples),
    or None."""
    hint = field_types(cls)[key]
    candidate = _as_tuples(value) if _is_tuple(hint) else value
    try:
        _strict_adapter(cls, key).validate_python(candidate)
    except ValidationError:
        message = f"expected {describe_type(hint)}, got {value!r}"
        if isinstance(value, str) and re.fullmatch(r"[-+]?\d*\.?\d+[eE][-+]?\d+", value):
            message += " (YAML reads 1e-3 as a string: write 1.0e-3)"
        return message
    return None


@cache
def field_types(cls: type[BaseModel]) -> dict[str, Any]:
    """Resolved type annotations of a settings class's fields."""
    return {name: field.annotation for name, field in cls.model_fields.items()}


@cache
def _strict_adapter(cls: type[BaseModel], key: str) -> TypeAdapter:
    return TypeAdapter(field_types(cls)[key], config=ConfigDict(strict=True))


def _is_settings(hint: Any) -> bool:
    return isinstance(hint, type) and issubclass(hint, CoreSettings)


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
    if isinstance(hint, type) and issubclass(hint, BaseModel):
        return f"a mapping of {hint.__name__} keys"
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


class RelatedFieldsError(InputError):
    """A check relating several fields (``sigma_max >= sigma_min``) failed.

    Returned by :meth:`CoreSettings.related_problem`; the spec locates it at the one of
    ``fields`` the user set (``sigma_max`` alone below the default ``sigma_min``), or
    at the section when several were set.
    """

    def __init__(self, fields: tuple[str, ...], message: str, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.fields = fields


def _located(settings: BaseModel, exc: RelatedFieldsError) -> ValidationError:
    given = [name for name in exc.fields if name in settings.model_fields_set]
    loc = (given[0],) if len(given) == 1 else ()
    value = getattr(settings, given[0]) if len(given) == 1 else None
    # message and hint as strings: pydantic-core turns an exception in ctx back into a
    # value error at the section
    context = {"message": exc.message, "hint": exc.hint or ""}
    detail = PydanticCustomError("settings_value", "{message}", context)
    return ValidationError.from_exception_data(
        type(settings).__name__, [InitErrorDetails(type=detail, loc=loc, input=value)]
    )


def bounded(
    *names: str,
    low: float,
    inclusive: bool = True,
    unit: str = "",
    hint: str | None = None,
) -> Any:
    """A field validator: each of ``names`` must be ``>= low`` (``> low`` when not
    ``inclusive``); None passes (optional fields). The message names the field, the
    bound and the value: ``n_levels must be >= 1, got 0``; NaN fails.

    Use as a class attribute: ``_n_levels = bounded("n_levels", low=1, hint="e.g. 200")``.
    """
    op = ">=" if inclusive else ">"

    def check(cls: type, value: Any, info: ValidationInfo) -> Any:
        if value is None or (value >= low if inclusive else value > low):
            return value
        raise InputError(f"{info.field_name} must be {op} {low:g}{unit}, got {value}", hint=hint)

    return field_validator(*names)(classmethod(check))  # type: ignore[arg-type]


def one_of(
    name: str, choices: tuple[str, ...], message: str | None = None, hint: str | None = None
) -> Any:
    """A field validator (before conversion): ``name`` must be one of ``choices``.

    ``message`` may use ``{value!r}``; the default reads ``dtype must be 'float32' or
    'float64', got 'float16'``.
    """
    text = message or f"{name} must be {' or '.join(map(repr, choices))}, got {{value!r}}"

    def check(cls: type, value: Any) -> Any:
        if value not in choices:
            raise InputError(text.format(value=value), hint=hint)
        return value

    return field_validator(name, mode="before")(classmethod(check))  # type: ignore[arg-type]
