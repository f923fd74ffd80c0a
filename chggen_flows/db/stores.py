"""The jobflow JobStore and the FireWorks LaunchPad built from the settings.

Job outputs go to the MongoStore collection ``outputs``; large objects (structures,
trajectories, arrays) go to the additional store ``data``, a GridFSStore
(``outputs_data``) whose chunked files have no 16 MB document limit. A job sends an
output there with ``@job(data=...)`` or ``job(data=["trajectory"])``.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from chggen_flows.db.connection import check_connection, resolve_uri, uri_with_database
from chggen_flows.errors import DatabaseError
from chggen_flows.settings import Settings

if TYPE_CHECKING:
    from fireworks import LaunchPad
    from jobflow import JobStore
    from pymongo import MongoClient
    from pymongo.database import Database

OUTPUTS_COLLECTION = "outputs"
DATA_COLLECTION = "outputs_data"
DATA_STORE_NAME = "data"
# Fields jobflow queries outputs by (uuid/index: references between jobs).
OUTPUT_INDEXES = ("uuid", "index", "name", "state", "completed_at", "metadata.campaign")
LAUNCHPAD_COLLECTIONS = ("fireworks", "launches", "workflows", "offline_runs", "fw_id_assigner")


def get_job_store(settings: Settings, check: bool = True) -> JobStore:
    """The jobflow JobStore of ``settings`` (documents + GridFS ``data`` store).

    Parameters
    ----------
    settings
        The settings (the embedded server is started when it is the one configured).
    check
        Verify the connection first, so an unreachable server fails in 3 s with a
        clear :class:`~chggen_flows.errors.DatabaseError` instead of a timeout later.

    Returns
    -------
    JobStore
        Not yet connected; call ``connect()`` or use it in ``run_locally`` / a flow.
    """
    from jobflow import JobStore
    from maggma.stores import GridFSStore, MongoStore

    uri = check_connection(settings) if check else resolve_uri(settings)
    docs = MongoStore(database=settings.database, collection_name=OUTPUTS_COLLECTION, uri=uri)
    data = GridFSStore(database=settings.database, collection_name=DATA_COLLECTION, uri=uri)
    return JobStore(docs, additional_stores={DATA_STORE_NAME: data})


# One client per server and process, as pymongo advises (clients pool connections and
# are thread-safe); keyed by the connection arguments.
_CLIENTS: dict[str, MongoClient] = {}
_CLIENTS_LOCK = threading.Lock()


def store_database(store: JobStore) -> Database:
    """The pymongo database holding a JobStore's documents (its ``MongoStore``).

    For collections beside the job outputs (the campaign registry) and for database
    commands. maggma gives a store's pymongo collection only as the private
    ``_collection``; this opens a client from the store's public connection attributes
    (``uri``, or ``host``/``port``/credentials, and ``mongoclient_kwargs``) instead,
    shared by every store of the same server in this process.

    Raises
    ------
    DatabaseError
        The documents store is not a MongoDB store (e.g. a ``MemoryStore``).
    """
    from maggma.stores import MemoryStore, MongoStore
    from pymongo import MongoClient

    docs = store.docs_store
    # MemoryStore subclasses MongoStore but lives in mongomock, not on a server.
    direct = isinstance(docs, MongoStore) and not isinstance(docs, MemoryStore)
    if not direct or getattr(docs, "ssh_tunnel", None) is not None:
        raise DatabaseError(
            f"the job store's documents store is a {type(docs).__name__} without a "
            "direct MongoDB connection",
            hint="use the JobStore of chggen's settings (chggen_flows.db.get_job_store)",
        )
    kwargs: dict[str, Any] = dict(docs.mongoclient_kwargs)
    if docs.uri is not None:
        args: tuple[Any, ...] = (docs.uri,)
    else:
        # The same arguments MongoStore.connect passes.
        args = (docs.host, docs.port)
        if docs.username:
            kwargs.update(
                username=docs.username, password=docs.password, authSource=docs.auth_source
            )
    key = repr((args, sorted(kwargs.items())))
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            client = _CLIENTS[key] = MongoClient(*args, **kwargs)
    return client[docs.database]


def get_launchpad(settings: Settings, check: bool = True, log_level: str = "WARNING") -> LaunchPad:
    """The FireWorks LaunchPad of ``settings`` (database ``settings.launchpad_database``).

    Parameters
    ----------
    settings
        The settings.
    check
        Verify the connection first (see :func:`get_job_store`).
    log_level
        Level of the LaunchPad's console log (FireWorks' own default is INFO).
    """
    from fireworks import LaunchPad

    uri = check_connection(settings) if check else resolve_uri(settings)
    name = settings.launchpad_database
    # URI mode: FireWorks reads the database from ``name``, its scripts from the URI.
    return LaunchPad(
        host=uri_with_database(uri, name), name=name, uri_mode=True, strm_lvl=log_level
    )


def init_database(settings: Settings) -> dict[str, list[str]]:
    """Create the JobStore and LaunchPad collections and indexes; never deletes data.

    Safe to run again on a database in use. Returns, per database, its collections.
    """
    store = get_job_store(settings)
    store.connect()
    try:
        for key in OUTPUT_INDEXES:
            store.docs_store.ensure_index(key)
        data = store.additional_stores[DATA_STORE_NAME]
        # GridFSStore indexes its ``.files`` collection: blob lookups and job clean-up.
        for key in ("blob_uuid", "job_uuid", "job_index"):
            data.ensure_index(key)
        # An empty GridFS bucket has no collections yet; create them so they are listed.
        db = store_database(store)
        for suffix in ("files", "chunks"):
            name = f"{DATA_COLLECTION}.{suffix}"
            if name not in db.list_collection_names():
                db.create_collection(name)
        outputs = sorted(db.list_collection_names())
    finally:
        store.close()

    lpad = get_launchpad(settings, check=False)
    try:
        lpad.tuneup()
        # add_wf needs the id counter document; create it only when absent (a reset
        # would delete workflows). Same _id as LaunchPad.reset uses.
        if lpad.fw_id_assigner.count_documents({}) == 0:
            lpad.fw_id_assigner.update_one(
                {"_id": -1},
                {"$setOnInsert": {"next_fw_id": 1, "next_launch_id": 1}},
                upsert=True,
            )
        for name in LAUNCHPAD_COLLECTIONS:
            if name not in lpad.db.list_collection_names():
                lpad.db.create_collection(name)
        fireworks = sorted(lpad.db.list_collection_names())
    finally:
        lpad.connection.close()
    return {settings.database: outputs, settings.launchpad_database: fireworks}


def database_summary(settings: Settings, uri: str) -> dict[str, int]:
    """Document counts of the JobStore and LaunchPad databases at ``uri``.

    Keys: ``outputs`` (job output documents), ``data_files`` (GridFS objects),
    ``workflows`` and ``fireworks`` (LaunchPad). Missing collections count 0.
    """
    from pymongo import MongoClient

    from chggen_flows.db.connection import CHECK_TIMEOUT_MS

    client: MongoClient = MongoClient(uri, serverSelectionTimeoutMS=CHECK_TIMEOUT_MS)
    try:
        jobs, lpad = client[settings.database], client[settings.launchpad_database]
        return {
            "outputs": jobs[OUTPUTS_COLLECTION].estimated_document_count(),
            "data_files": jobs[f"{DATA_COLLECTION}.files"].estimated_document_count(),
            "workflows": lpad["workflows"].estimated_document_count(),
            "fireworks": lpad["fireworks"].estimated_document_count(),
        }
    finally:
        client.close()
