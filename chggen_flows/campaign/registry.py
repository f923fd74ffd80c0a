"""The campaign registry: one document per submitted campaign, next to the job outputs.

It lives in the JobStore's database (collection ``campaigns``) so that the results API,
which is given only a JobStore, can list campaigns, and so that a resubmitted spec is
recognised by its hash.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from chggen_flows.errors import CampaignError

if TYPE_CHECKING:
    from jobflow import JobStore
    from pymongo.collection import Collection

COLLECTION = "campaigns"


def registry(store: JobStore) -> Collection:
    """The ``campaigns`` collection of the JobStore's database."""
    from chggen_flows.db.stores import store_database

    return store_database(store)[COLLECTION]


def find_campaign(store: JobStore, campaign: str) -> dict[str, Any]:
    """The registry document of ``campaign``; a unique prefix of the id is enough.

    Raises
    ------
    CampaignError
        No campaign, or several, match.
    """
    coll = registry(store)
    doc = coll.find_one({"campaign": campaign}, {"_id": 0})
    if doc is not None:
        return doc
    matches = list(coll.find({"campaign": {"$regex": f"^{re.escape(campaign)}"}}, {"_id": 0}))
    if len(matches) == 1:
        return matches[0]
    known = sorted(d["campaign"] for d in coll.find({}, {"campaign": 1}))
    if not matches:
        raise CampaignError(
            f"no campaign {campaign!r} in the database",
            hint="list campaigns with `chggen status`"
            + (f"; known: {', '.join(known[:8])}" if known else ""),
        )
    raise CampaignError(
        f"{campaign!r} matches several campaigns: {', '.join(d['campaign'] for d in matches)}",
        hint="give the full campaign id",
    )
