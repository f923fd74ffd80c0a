"""Shared state and helpers of the CLI commands: console, settings, error reporting."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

console = Console()
err_console = Console(stderr=True)


@dataclass
class CLIState:
    """Options given before the sub-command (``chggen --config X --debug cmd``)."""

    config: Path | None = None
    debug: bool = False
    overrides: dict[str, Any] = field(default_factory=dict)


STATE = CLIState()


def get_settings(**overrides: Any):
    """Settings from the YAML file, CHGGEN_* variables and the CLI flags given here.

    Flags passed as ``overrides`` (None values are ignored) win over everything else.
    """
    from chggen_flows.settings import load_settings

    merged = {**STATE.overrides, **{k: v for k, v in overrides.items() if v is not None}}
    return load_settings(config_path=STATE.config, **merged)


def exit_with(message: str, hint: str | None = None, code: int = 2) -> None:
    """Print an error (and hint) on stderr and exit with ``code``."""
    err_console.print(f"[bold red]Error:[/] {message}", highlight=False)
    if hint:
        err_console.print(f"[yellow]Hint:[/] {hint}", highlight=False)
    raise typer.Exit(code)
