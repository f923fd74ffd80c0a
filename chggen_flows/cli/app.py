"""Root ``chggen`` app: global options and registration of every command group."""

from __future__ import annotations

import sys
from importlib import import_module
from pathlib import Path

import typer

from chggen_flows import __version__
from chggen_flows.cli.common import STATE, err_console
from chggen_flows.errors import ChggenError

app = typer.Typer(
    name="chggen",
    help="CHGGen crystal structure discovery campaigns: generate, relax, symmetrise, "
    "inpaint, rank by E_d and send the best to r2SCAN DFT, on jobflow + FireWorks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Every module here defines ``register(app)``; the order is the order of ``--help``.
COMMAND_MODULES = (
    "campaign",
    "run",
    "status",
    "results",
    "report",
    "generate",
    "relax",
    "ehull",
    "reference",
    "train",
    "analysis",
    "db",
    "config",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"chggen-flows {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    config: Path | None = typer.Option(
        None, "--config", envvar="CHGGEN_CONFIG", help="YAML settings file (also CHGGEN_CONFIG)."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    STATE.config = config
    STATE.debug = debug


for _name in COMMAND_MODULES:
    import_module(f"chggen_flows.cli.{_name}").register(app)


def run(argv: list[str] | None = None) -> None:
    """Run the app, turning user-facing errors into a message, a hint and exit code 2."""
    try:
        # Outside standalone mode click returns a command's `typer.Exit(code)` instead
        # of exiting with it.
        code = app(args=argv, prog_name="chggen", standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except ChggenError as exc:
        if STATE.debug:
            raise
        err_console.print(f"[bold red]Error:[/] {exc.message}", highlight=False)
        if exc.hint:
            err_console.print(f"[yellow]Hint:[/] {exc.hint}", highlight=False)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err_console.print("Aborted.")
        sys.exit(130)
    except Exception as exc:  # click usage errors and bugs
        import click

        # typer >= 0.22 raises the usage errors of its own copy of click.
        usage_errors = (
            click.ClickException,
            getattr(typer, "TyperException", click.ClickException),
        )
        if isinstance(exc, usage_errors) and hasattr(exc, "show"):
            exc.show()
            sys.exit(exc.exit_code)
        if STATE.debug:
            raise
        err_console.print(f"[bold red]Internal error:[/] {type(exc).__name__}: {exc}")
        err_console.print("[yellow]Hint:[/] re-run with --debug for the traceback and report it.")
        sys.exit(1)
