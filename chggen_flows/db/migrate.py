"""Rewrite the pre-rename module names ``makers.*`` of stored documents, once.

Campaigns submitted before the makers became ``chggen_flows.makers`` name them
``makers.<stage>`` in their serialised objects: the ``@module`` of each job's Maker and
function (FireWorks ``fireworks``/``launches``), of the stage documents (JobStore
``outputs``) and of the objects in the GridFS ``data`` store. Nothing imports ``makers``
any more, so those documents would no longer load (monty even returns a missing class
as a plain dict, which fails later and far away). :func:`migrate_module_names` rewrites
them in place, so the code keeps a single name for each Maker; a second run finds
nothing. ``chggen db migrate`` runs it, with ``--dry-run`` to count only; workers refuse
to start on a LaunchPad that still holds such jobs (:func:`check_module_names`).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chggen_flows.db.connection import check_connection
from chggen_flows.errors import CampaignError
from chggen_flows.settings import Settings

if TYPE_CHECKING:
    from pymongo.collection import Collection
    from pymongo.database import Database

#: The package the makers were importable as before, and the one they are now.
LEGACY_PACKAGE = "makers"
PACKAGE = "chggen_flows.makers"
MODULE_KEY = "@module"
_GRIDFS_FILES = ".files"
#: Where a FireWork names its job's function and Maker (jobflow's JobFiretask).
_JOB_MODULE_FIELDS = ("spec._tasks.job.function.@module", "spec._tasks.job.function.@bound.@module")


@dataclass(frozen=True)
class MigrationCount:
    """What one collection holds (or held) under the legacy names.

    Attributes
    ----------
    database, collection
        Where (a GridFS bucket is named by its ``<bucket>.files`` collection).
    documents
        Documents (or GridFS files) naming at least one legacy module.
    names
        ``@module`` values naming a legacy module in them, all together.
    """

    database: str
    collection: str
    documents: int
    names: int


def current_module(name: str) -> str | None:
    """The current name of a legacy module name (``makers.relax`` ->
    ``chggen_flows.makers.relax``), or None when ``name`` is not a legacy one."""
    if name == LEGACY_PACKAGE or name.startswith(LEGACY_PACKAGE + "."):
        return PACKAGE + name[len(LEGACY_PACKAGE) :]
    return None


def rename_modules(value: Any) -> tuple[Any, int]:
    """``value`` with every legacy ``@module`` renamed, and how many were.

    Walks nested dicts and lists; returns ``value`` itself when nothing was renamed.
    """
    if isinstance(value, dict):
        renamed, count = {}, 0
        for key, item in value.items():
            new_name = current_module(item) if key == MODULE_KEY and isinstance(item, str) else None
            if new_name is not None:
                renamed[key] = new_name
                count += 1
            else:
                renamed[key], n = rename_modules(item)
                count += n
        return (renamed, count) if count else (value, 0)
    if isinstance(value, list):
        items = [rename_modules(item) for item in value]
        count = sum(n for _, n in items)
        return ([item for item, _ in items], count) if count else (value, 0)
    return value, 0


def check_module_names(fireworks: Collection) -> None:
    """Raise when FireWorks in ``fireworks`` name their jobs by a legacy module.

    Such a job would load with its function as a plain dict (monty keeps a class it
    cannot import as a dict) and fail when run, far from the cause.

    Raises
    ------
    CampaignError
        With the count, and ``chggen db migrate`` as the hint.
    """
    pattern = {"$regex": f"^{LEGACY_PACKAGE}(\\.|$)"}
    count = fireworks.count_documents({"$or": [{field: pattern} for field in _JOB_MODULE_FIELDS]})
    if count:
        raise CampaignError(
            f"{count} FireWorks name their jobs by the module {LEGACY_PACKAGE}.*, which is "
            f"{PACKAGE}.* since the makers were renamed",
            hint="with no worker running, rewrite them once: chggen db migrate "
            "(--dry-run counts them first)",
        )


def migrate_module_names(settings: Settings, dry_run: bool = False) -> list[MigrationCount]:
    """Rewrite the legacy ``makers.*`` module names in the JobStore and LaunchPad databases.

    Every collection of ``settings.database`` and ``settings.launchpad_database`` is read
    (GridFS buckets file by file, as JSON, zlib-compressed or not); documents naming a
    legacy module are replaced by their renamed copy. A GridFS file is uploaded anew
    (same name and metadata) before the old one is deleted, so an interruption never
    loses a blob. Safe to run again: renamed documents hold no legacy name.

    Parameters
    ----------
    settings
        Which server and databases.
    dry_run
        Count only; write nothing.

    Returns
    -------
    list of MigrationCount
        One per collection holding legacy names (before the rewrite); empty when none.
    """
    from pymongo import MongoClient

    client: MongoClient = MongoClient(check_connection(settings))
    try:
        counts = []
        for name in (settings.database, settings.launchpad_database):
            counts.extend(_migrate_database(client[name], dry_run))
        return counts
    finally:
        client.close()


def _migrate_database(db: Database, dry_run: bool) -> Iterator[MigrationCount]:
    collections = sorted(db.list_collection_names())
    buckets = {c[: -len(_GRIDFS_FILES)] for c in collections if c.endswith(_GRIDFS_FILES)}
    for collection in collections:
        bucket = collection.rsplit(".", 1)[0]
        if bucket in buckets and collection != bucket:  # GridFS .files/.chunks
            if collection.endswith(_GRIDFS_FILES):
                documents, names = _migrate_bucket(db, bucket, dry_run)
            else:
                continue
        else:
            documents, names = _migrate_collection(db, collection, dry_run)
        if documents:
            yield MigrationCount(db.name, collection, documents, names)


def _migrate_collection(db: Database, collection: str, dry_run: bool) -> tuple[int, int]:
    documents = names = 0
    for document in db[collection].find({}):
        renamed, count = rename_modules(document)
        if count:
            documents, names = documents + 1, names + count
            if not dry_run:
                db[collection].replace_one({"_id": document["_id"]}, renamed)
    return documents, names


def _migrate_bucket(db: Database, bucket: str, dry_run: bool) -> tuple[int, int]:
    import gridfs

    files = gridfs.GridFSBucket(db, bucket_name=bucket)
    documents = names = 0
    for entry in list(db[bucket + _GRIDFS_FILES].find({})):
        raw = files.open_download_stream(entry["_id"]).read()
        metadata = entry.get("metadata") or {}
        compressed = metadata.get("compression") == "zlib"
        try:
            content = json.loads(zlib.decompress(raw) if compressed else raw)
        except (ValueError, zlib.error):  # not a JSON blob: names no module
            continue
        renamed, count = rename_modules(content)
        metadata, in_metadata = rename_modules(metadata)
        if not count + in_metadata:
            continue
        documents, names = documents + 1, names + count + in_metadata
        if dry_run:
            continue
        data = json.dumps(renamed).encode("utf-8")
        # maggma's GridFSStore reads the newest upload of a key: upload, then delete.
        files.upload_from_stream(
            entry.get("filename") or "",
            zlib.compress(data) if compressed else data,
            metadata=metadata,
        )
        files.delete(entry["_id"])
    return documents, names
