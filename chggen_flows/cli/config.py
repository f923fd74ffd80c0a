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
    values = get_settings().masked()
    if as_json:
        console.print_json(json.dumps(values))
    else:
        # Plain print: rich markup would eat [brackets] in values.
        typer.echo(yaml.safe_dump(values, sort_keys=False).rstrip())


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
