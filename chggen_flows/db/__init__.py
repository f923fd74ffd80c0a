"""Settings-driven MongoDB access: embedded SecantusDB server, JobStore, LaunchPad.

Typical use::

    from chggen_flows.settings import load_settings
    from chggen_flows.db import get_job_store, get_launchpad

    settings = load_settings()
    store = get_job_store(settings)  # starts the embedded server when no URI is set
    lpad = get_launchpad(settings)
"""

from __future__ import annotations

from chggen_flows.db.connection import check_connection, resolve_uri, uri_with_database
from chggen_flows.db.server import EmbeddedServer, ServerInfo
from chggen_flows.db.stores import get_job_store, get_launchpad, init_database, store_database

__all__ = [
    "EmbeddedServer",
    "ServerInfo",
    "check_connection",
    "get_job_store",
    "get_launchpad",
    "init_database",
    "resolve_uri",
    "store_database",
    "uri_with_database",
]
