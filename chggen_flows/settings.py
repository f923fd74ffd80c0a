"""The one settings object of chggen-flows: database, data directory, model, device.

Values come from four places; a higher one wins over a lower one:

1. keyword overrides (the ``chggen`` command-line flags),
2. environment variables ``CHGGEN_<FIELD>`` (e.g. ``CHGGEN_MONGO_URI``),
3. a YAML file: the ``--config`` flag, else ``CHGGEN_CONFIG``, else
   ``~/.config/chggen/config.yaml`` when it exists,
4. the defaults below.

Secrets (the MongoDB URI, which may hold a password, and the password itself) are
:class:`~pydantic.SecretStr`: they print as ``**********`` and :meth:`Settings.masked`
is the only view meant for display.
"""

from __future__ import annotations

import difflib
import os
import re
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from chggen_flows.core.device import check_device_name
from chggen_flows.errors import ConfigError

ENV_PREFIX = "CHGGEN_"
MASK = "**********"

# Fields holding file system paths: relative values in a YAML file are taken relative
# to the file's directory, so a project-local config works from any working directory.
_PATH_FIELDS = ("data_dir", "checkpoint")
# Characters MongoDB forbids in database names (on any platform).
_BAD_DB_CHARS = '/\\. "$'


def default_data_dir() -> Path:
    """Per-user data directory: ``$XDG_DATA_HOME/chggen`` or ``~/.local/share/chggen``."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "chggen"


def default_config_path() -> Path:
    """Per-user YAML file read when neither ``--config`` nor ``CHGGEN_CONFIG`` is given."""
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "chggen" / "config.yaml"


def mask_uri(uri: str) -> str:
    """Replace the password of a MongoDB URI (and ``...password=`` options) by a mask.

    Examples
    --------
    >>> mask_uri("mongodb://alice:s3cret@db.example.org:27017/chggen")
    'mongodb://alice:**********@db.example.org:27017/chggen'
    """
    # Up to the *last* "@": a password with an unescaped "@" must not half show (an "@"
    # in the options then hides the hosts too; better too much masked than too little).
    masked = re.sub(r"^([a-z+]+://[^:@/?]*):.*@", rf"\1:{MASK}@", uri, flags=re.I | re.S)
    return re.sub(r"([?&][^=&]*password[^=&]*)=[^&]*", rf"\1={MASK}", masked, flags=re.I)


# The YAML file of the current ``load_settings`` call; ``Settings()`` built directly
# (e.g. by tests) reads no file.
_yaml_file: ContextVar[Path | None] = ContextVar("chggen_yaml_file", default=None)


class _YamlSource(PydanticBaseSettingsSource):
    """Settings source reading the YAML file named by :data:`_yaml_file`."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        # Unused: __call__ returns the whole mapping at once.
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = _yaml_file.get()
        return {} if path is None else read_yaml_config(path)


def read_yaml_config(path: Path) -> dict[str, Any]:
    """Read a settings YAML file into a mapping, resolving relative paths against it.

    Raises
    ------
    ConfigError
        When the file is missing, unreadable, not valid YAML or not a mapping.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"configuration file {path} does not exist",
            hint="fix --config / CHGGEN_CONFIG, or create the file (see docs/configuration.md)",
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"cannot read configuration file {path}: {exc.strerror}",
            hint="check the file's permissions",
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or "syntax error"
        raise ConfigError(
            f"invalid YAML in configuration file {path}{where}: {problem}",
            hint="the file must be a YAML mapping such as 'device: cpu' (one key per line)",
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"configuration file {path} holds a {type(data).__name__}, not a mapping",
            hint="write one 'key: value' per line, e.g. 'device: cpu'",
        )
    base = Path(path).resolve().parent
    for key in _PATH_FIELDS:
        value = data.get(key)
        if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
            data[key] = str(base / value)
    return data


class Settings(BaseSettings):
    """Configuration of chggen-flows (see the module docstring for the precedence).

    Attributes
    ----------
    mongo_uri
        MongoDB connection string of an existing server (may hold credentials).
    mongo_host, mongo_port, mongo_username, mongo_password
        An existing server given piecewise (used when ``mongo_uri`` is unset). Setting
        ``mongo_uri``, ``mongo_port`` or ``mongo_host`` selects an external server;
        with none of them chggen starts its embedded SecantusDB server.
    database
        Database of the jobflow JobStore (job outputs, GridFS data).
    launchpad_database
        Database of the FireWorks LaunchPad.
    data_dir
        Embedded server data, its pid/port file, caches (``CHGGEN_DATA_DIR``).
    checkpoint
        Score-model checkpoint; None uses the model shipped with the package.
    device
        ``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (CUDA when a GPU is visible); the
        GPU index is checked where the model runs.
    threads
        CPU threads for torch; None uses the core count (at most 8).
    embedded_auth
        Whether the embedded server requires authentication (default True): its one
        user's password is generated on first start and kept in
        ``<data_dir>/credentials.json`` (mode 0600). False leaves it open to every
        local user; only for a single-user machine.
    worker_allowed_packages
        Packages, besides chggen_flows, atomate2 and jobflow, whose functions and FireWorks tasks a
        chggen worker runs (e.g. ``[my_lab_jobs]``); a job naming anything else FIZZLES
        unrun.

    Notes
    -----
    ``Settings(...)`` reads keyword arguments and ``CHGGEN_*`` variables only; use
    :func:`load_settings` to include the YAML file.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        validate_default=True,
        case_sensitive=False,
    )

    mongo_uri: SecretStr | None = None
    mongo_host: str = "127.0.0.1"
    mongo_port: int | None = Field(default=None, ge=1, le=65535)
    mongo_username: str | None = None
    mongo_password: SecretStr | None = None
    database: str = "chggen"
    launchpad_database: str = "chggen_fireworks"
    data_dir: Path = Field(default_factory=default_data_dir)
    checkpoint: Path | None = None
    device: str = "auto"
    threads: int | None = Field(default=None, ge=1)
    embedded_auth: bool = True
    # NoDecode: the environment variable is a comma-separated list (validator below)
    worker_allowed_packages: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("worker_allowed_packages", mode="before")
    @classmethod
    def _split_packages(cls, value: Any) -> Any:
        # CHGGEN_WORKER_ALLOWED_PACKAGES="a,b" as well as a JSON/YAML list
        if isinstance(value, str):
            if value.strip().startswith("["):
                return yaml.safe_load(value)
            return [p.strip() for p in value.split(",") if p.strip()]
        return value

    @field_validator("worker_allowed_packages", mode="after")
    @classmethod
    def _check_packages(cls, value: list[str]) -> list[str]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", name):
                raise ValueError(f"{name!r} is not a Python package name (e.g. my_lab.jobs)")
        return value

    @field_validator("device", mode="after")
    @classmethod
    def _check_device(cls, value: str) -> str:
        return check_device_name(value)

    @field_validator("data_dir", "checkpoint", mode="after")
    @classmethod
    def _expand_user(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser()

    @field_validator("database", "launchpad_database", mode="after")
    @classmethod
    def _check_database_name(cls, value: str) -> str:
        bad = sorted(set(value) & set(_BAD_DB_CHARS))
        if not value or bad or len(value) > 63:
            raise ValueError(
                "a MongoDB database name has 1-63 characters and none of "
                f"{' '.join(repr(c) for c in _BAD_DB_CHARS)}"
            )
        return value

    @field_validator("mongo_uri", mode="after")
    @classmethod
    def _check_uri_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(
            ("mongodb://", "mongodb+srv://")
        ):
            # Not echoing the value: it may hold a password.
            raise ValueError("must start with mongodb:// or mongodb+srv://")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Flags (init kwargs) > environment > YAML file > defaults; no .env files."""
        return init_settings, env_settings, _YamlSource(settings_cls)

    @property
    def uses_external_server(self) -> bool:
        """Whether an existing MongoDB server is configured (else the embedded one runs)."""
        return (
            self.mongo_uri is not None
            or self.mongo_port is not None
            or "mongo_host" in self.model_fields_set
        )

    def masked(self) -> dict[str, Any]:
        """All settings as plain JSON-able values, secrets masked (safe to print or log)."""
        out = self.model_dump(mode="json")
        if self.mongo_uri is not None:
            out["mongo_uri"] = mask_uri(self.mongo_uri.get_secret_value())
        if self.mongo_password is not None:
            out["mongo_password"] = MASK
        return out


def resolve_config_path(config_path: Path | None = None) -> Path | None:
    """The YAML file in effect: the argument, else ``CHGGEN_CONFIG``, else the user file.

    The per-user file (:func:`default_config_path`) is only used when it exists; an
    explicitly named file that is missing is an error when it is read.
    """
    if config_path is not None:
        return Path(config_path).expanduser()
    env = os.environ.get(f"{ENV_PREFIX}CONFIG")
    if env:
        return Path(env).expanduser()
    user_file = default_config_path()
    return user_file if user_file.is_file() else None


def load_settings(config_path: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings from flags, environment, YAML file and defaults.

    Parameters
    ----------
    config_path
        YAML file; None falls back to ``CHGGEN_CONFIG`` and then the per-user file.
    **overrides
        Values from command-line flags; None values are ignored (flag not given).

    Returns
    -------
    Settings
        The validated settings.

    Raises
    ------
    ConfigError
        For a missing or invalid YAML file, an unknown key or a value of the wrong type.
    """
    path = resolve_config_path(config_path)
    given = {k: v for k, v in overrides.items() if v is not None}
    token = _yaml_file.set(path)
    try:
        return Settings(**given)
    except ValidationError as exc:
        raise _config_error(exc, path, set(given)) from None
    except SettingsError as exc:
        raise ConfigError(
            f"invalid configuration: {exc}", hint="check the CHGGEN_* environment variables"
        ) from None
    finally:
        _yaml_file.reset(token)


def _config_error(exc: ValidationError, path: Path | None, flags: set[str]) -> ConfigError:
    """Turn a pydantic ValidationError into one readable ConfigError with a hint."""
    fields = sorted(Settings.model_fields)
    problems: list[str] = []
    hints: list[str] = []
    unknown = False
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "settings"
        if err["type"] == "extra_forbidden":
            unknown = True
            where = f"in {path}" if path is not None and key not in flags else "given"
            problems.append(f"unknown setting {key!r} {where}")
            close = difflib.get_close_matches(key, fields, n=1)
            if close:
                hints.append(f"did you mean {close[0]!r}?")
        else:
            # Never echo the input: it may be a password or a URI with credentials.
            problems.append(f"{key} ({_source_of(key, path, flags)}): {err['msg']}")
    if unknown:
        hints.append(
            f"valid settings: {', '.join(fields)}; set them in the YAML file"
            f"{f' ({path})' if path else ''} or as {ENV_PREFIX}<NAME> environment variables"
        )
    else:
        hints.append(
            "fix the value where it is set (chggen config path names the YAML file); "
            "docs/configuration.md lists each setting's type and default"
        )
    return ConfigError("invalid configuration: " + "; ".join(problems), hint=" ".join(hints))


def _source_of(key: str, path: Path | None, flags: set[str]) -> str:
    """Where the value of setting ``key`` came from, for error messages."""
    if key in flags:
        return "command-line flag"
    env = f"{ENV_PREFIX}{key.upper()}"
    if env in {name.upper() for name in os.environ}:
        return f"environment variable {env}"
    return f"configuration file {path}" if path is not None else "default"
