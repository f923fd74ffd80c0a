"""``chggen config``: show the settings in effect (secrets masked) and where they come from."""

from __future__ import annotations

import json

import typer
import yaml

from chggen_flows.cli.common import STATE, console, get_settings
from chggen_flows.errors import ConfigError

config_app = typer.Typer(
    name="config",
    help="Settings: show the values in effect and the configuration file used.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add the ``config`` command group to the root app."""
    app.add_typer(config_app)


@config_app.command("show")
def show(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of YAML."),
) -> None:
    """Print every setting after flags, environment and file are merged (secrets masked)."""
    settings = get_settings()
    values = settings.masked()
    if as_json:
        console.print_json(json.dumps(values))
    else:
        # Plain print: rich markup would eat [brackets] in values.
        typer.echo(yaml.safe_dump(values, sort_keys=False).rstrip())
        credential = _embedded_credential(settings)
        if credential:  # a comment: the output stays a loadable settings file
            typer.echo(f"# {credential}")


def _embedded_credential(settings) -> str | None:
    """Where the embedded server's password is kept, the password masked (or None)."""
    from chggen_flows.db.credentials import credentials_path, read_credential
    from chggen_flows.settings import MASK

    if settings.uses_external_server or not settings.embedded_auth:
        return None
    path = credentials_path(settings.data_dir)
    try:
        credential = read_credential(settings.data_dir)
    except ConfigError:
        return f"embedded server credential: {path} (unreadable)"
    if credential is None:
        return f"embedded server credential: {path} (made on first start)"
    return f"embedded server credential: user {credential.username}, password {MASK} in {path}"


@config_app.command("path")
def path() -> None:
    """Print the YAML configuration file in effect (or that none is used)."""
    from chggen_flows.settings import default_config_path, resolve_config_path

    config = resolve_config_path(STATE.config)
    if config is None:
        console.print(
            f"No configuration file (would read {default_config_path()} if it existed); "
            "using environment variables and defaults."
        )
        return
    if not config.is_file():
        raise ConfigError(
            f"configuration file {config} does not exist",
            hint="create it (see docs/configuration.md) or fix --config / CHGGEN_CONFIG",
        )
    typer.echo(str(config))
