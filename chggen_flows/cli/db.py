"""``chggen db``: manage the embedded database server and create the collections."""

from __future__ import annotations

import typer

from chggen_flows.cli.common import console, get_settings
from chggen_flows.errors import DatabaseError
from chggen_flows.settings import Settings, mask_uri

db_app = typer.Typer(
    name="db",
    help="The database: start/stop/inspect the embedded server, create collections.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add the ``db`` command group to the root app."""
    app.add_typer(db_app)


def _external(settings: Settings) -> str:
    """Printable (masked) description of the configured external server."""
    from chggen_flows.db import resolve_uri

    return mask_uri(resolve_uri(settings, start=False))


@db_app.command("start")
def start(
    port: int | None = typer.Option(
        None, "--port", min=1, max=65535, help="Port to listen on (default: a free one)."
    ),
) -> None:
    """Start the embedded SecantusDB server (does nothing if it already runs)."""
    from chggen_flows.db import EmbeddedServer

    settings = get_settings()
    if settings.uses_external_server:
        raise DatabaseError(
            f"a MongoDB server is configured ({_external(settings)}); "
            "the embedded server is not used",
            hint="unset mongo_uri / mongo_host / mongo_port (CHGGEN_MONGO_URI ...) to use it",
        )
    server = EmbeddedServer(settings.data_dir, port=port, auth=settings.embedded_auth)
    running = server.status()
    if running is not None and (running.auth or not settings.embedded_auth):
        if port is not None and port != running.port:
            raise DatabaseError(
                f"the embedded server already runs on port {running.port}",
                hint="stop it first (chggen db stop) to move it to another port",
            )
        console.print(f"Already running: {_shown(running)} (pid {running.pid})", highlight=False)
        return
    info = server.start()
    if info.note:
        console.print(f"[yellow]{info.note}[/]", highlight=False)
    console.print(
        f"Started: {_shown(info)} (pid {info.pid}, data in {server.storage_path})",
        highlight=False,
    )


def _shown(info) -> str:
    """The server's URI, password masked, and how it authenticates."""
    from chggen_flows.db.credentials import credentials_path

    settings = get_settings()
    if not info.auth:
        return f"{info.uri} (no authentication: open to every local user)"
    return f"{mask_uri(info.uri)} (password in {credentials_path(settings.data_dir)})"


@db_app.command("stop")
def stop() -> None:
    """Stop the embedded SecantusDB server (the data stays on disk)."""
    from chggen_flows.db import EmbeddedServer

    settings = get_settings()
    if EmbeddedServer(settings.data_dir).stop():
        console.print("Stopped the embedded database server.")
    else:
        console.print("The embedded database server was not running.")


@db_app.command("status")
def status() -> None:
    """Show which database server is used, whether it answers and what it holds."""
    from chggen_flows.db import EmbeddedServer, check_connection
    from chggen_flows.db.stores import database_summary

    settings = get_settings()
    if settings.uses_external_server:
        uri = check_connection(settings)
        console.print(f"External MongoDB server {_external(settings)}: reachable")
    else:
        server = EmbeddedServer(settings.data_dir, auth=settings.embedded_auth)
        info = server.status()
        if info is None:
            console.print(
                f"Embedded server: not running (data directory {settings.data_dir}); "
                "it starts on demand, or with: chggen db start"
            )
            return
        uri = info.uri
        console.print(
            f"Embedded server: running at {_shown(info)} (pid {info.pid})", highlight=False
        )
        console.print(f"Storage: {server.storage_path}")
    counts = database_summary(settings, uri)
    console.print(
        f"JobStore {settings.database}: {counts['outputs']} outputs, "
        f"{counts['data_files']} data files; LaunchPad {settings.launchpad_database}: "
        f"{counts['workflows']} workflows, {counts['fireworks']} fireworks",
        highlight=False,
    )


@db_app.command("init")
def init() -> None:
    """Create the JobStore and LaunchPad collections and indexes (keeps existing data)."""
    from chggen_flows.db import init_database

    settings = get_settings()
    created = init_database(settings)
    for database, collections in created.items():
        console.print(f"{database}: {', '.join(collections)}")


@db_app.command("migrate")
def migrate(
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Count the documents to rewrite; write nothing."
    ),
) -> None:
    """Rewrite the module names makers.* of campaigns submitted before the makers were
    renamed chggen_flows.makers, so their jobs and documents load (once; safe to rerun)."""
    from chggen_flows.db.migrate import LEGACY_PACKAGE, PACKAGE, migrate_module_names

    settings = get_settings()
    counts = migrate_module_names(settings, dry_run=dry_run)
    for count in counts:
        console.print(
            f"{count.database}.{count.collection}: {count.documents} documents, "
            f"{count.names} names",
            highlight=False,
        )
    documents = sum(count.documents for count in counts)
    if not documents:
        console.print(f"No document names {LEGACY_PACKAGE}.*: nothing to migrate.")
    elif dry_run:
        console.print(
            f"Dry run: {documents} documents name {LEGACY_PACKAGE}.*; nothing written "
            "(run without --dry-run to rewrite them)."
        )
    else:
        console.print(f"Rewrote {documents} documents: {LEGACY_PACKAGE}.* -> {PACKAGE}.*")
