"""pymongo, the jobflow JobStore (with GridFS) and the FireWorks LaunchPad on SecantusDB."""

from __future__ import annotations

import pytest
from pymongo import MongoClient

from chggen_flows.db import get_job_store, get_launchpad, init_database, store_database
from chggen_flows.db.stores import DATA_COLLECTION, OUTPUTS_COLLECTION


def test_pymongo_crud(secantus_server, db_settings):
    client: MongoClient = MongoClient(secantus_server.uri)
    coll = client[db_settings.database]["crud"]
    coll.insert_many([{"formula": f, "n": n} for n, f in enumerate(["ZnPS3", "Li5Si2", "Zn2P2S7"])])
    coll.create_index("formula", unique=True)
    assert coll.find_one({"formula": "Li5Si2"})["n"] == 1
    assert coll.update_one({"formula": "ZnPS3"}, {"$set": {"n": 10}}).modified_count == 1
    assert sorted(d["n"] for d in coll.find({}, {"n": 1})) == [1, 2, 10]
    assert coll.delete_many({"n": {"$gt": 1}}).deleted_count == 2
    assert coll.count_documents({}) == 1
    client.close()


def test_init_database_creates_collections_and_keeps_data(db_settings):
    created = init_database(db_settings)
    assert {OUTPUTS_COLLECTION, f"{DATA_COLLECTION}.files", f"{DATA_COLLECTION}.chunks"} <= set(
        created[db_settings.database]
    )
    assert {"fireworks", "launches", "workflows", "fw_id_assigner"} <= set(
        created[db_settings.launchpad_database]
    )
    store = get_job_store(db_settings)
    store.connect()
    store.docs_store.update({"uuid": "u1", "index": 1, "output": 3}, key=["uuid", "index"])
    index_keys = {
        k for idx in store_database(store)[OUTPUTS_COLLECTION].list_indexes() for k in idx["key"]
    }
    assert {"uuid", "index"} <= index_keys
    store.close()

    init_database(db_settings)  # a second run deletes nothing
    store.connect()
    assert store.query_one({"uuid": "u1"})["output"] == 3
    store.close()


def test_job_store_round_trip_with_gridfs_document_over_16_mb(db_settings, tmp_path, monkeypatch):
    from jobflow import job, run_locally

    monkeypatch.chdir(tmp_path)  # run_locally writes job directories here
    # 17.6 MB of text: more than MongoDB's 16 MB document limit, so it can only be
    # stored through the GridFS "data" store (text keeps serialisation cheap).
    frames = 1_100_000

    @job(data="trajectory")
    def make_trajectory(n: int) -> dict:
        return {"n": n, "trajectory": "".join(f"{i % 10**15:016d}" for i in range(n))}

    @job
    def tail(doc: dict) -> str:
        return doc["trajectory"][-16:]

    first = make_trajectory(frames)
    flow = [first, tail(first.output)]
    store = get_job_store(db_settings)
    responses = run_locally(flow, store=store, ensure_success=True)
    assert responses[flow[1].uuid][1].output == f"{frames - 1:016d}"

    store.connect()
    doc = store.query_one({"uuid": first.uuid}, load=False)
    blob = doc["output"]["trajectory"]
    assert blob["store"] == "data" and "blob_uuid" in blob  # a reference, not the data
    loaded = store.query_one({"uuid": first.uuid}, load=True)
    assert len(loaded["output"]["trajectory"]) == 16 * frames
    assert loaded["output"]["trajectory"][16:32] == f"{1:016d}"
    files = store.additional_stores["data"]._files_collection
    assert files.find_one({"metadata.job_uuid": first.uuid})["length"] > 16 * 1024**2
    store.close()


def test_launchpad_add_workflow_run_and_query(db_settings, tmp_path, monkeypatch):
    from fireworks import Firework, FWorker, ScriptTask, Workflow
    from fireworks.core.rocket_launcher import launch_rocket

    init_database(db_settings)
    lpad = get_launchpad(db_settings)
    fw1 = Firework(ScriptTask.from_str("echo generate > gen.txt"), name="generate")
    fw2 = Firework(ScriptTask.from_str("echo relax"), name="relax", parents=[fw1])
    temporary_ids = fw1.fw_id, fw2.fw_id  # add_wf renumbers the Firework objects
    mapping = lpad.add_wf(Workflow([fw1, fw2], name="smoke"))
    first_id, second_id = (mapping[i] for i in temporary_ids)
    assert lpad.get_fw_by_id(first_id).state == "READY"
    assert lpad.get_fw_by_id(second_id).state == "WAITING"

    monkeypatch.chdir(tmp_path)
    # What ``rlaunch singleshot`` does, twice: each run pulls the next READY firework.
    assert launch_rocket(lpad, FWorker(name="test-worker"), strm_lvl="ERROR")
    assert lpad.get_fw_by_id(second_id).state == "READY"
    assert launch_rocket(lpad, FWorker(name="test-worker"), strm_lvl="ERROR")

    assert {lpad.get_fw_by_id(i).state for i in (first_id, second_id)} == {"COMPLETED"}
    wf = lpad.get_wf_summary_dict(first_id)
    assert wf["state"] == "COMPLETED"
    assert set(lpad.get_fw_ids({"state": "COMPLETED"})) == {first_id, second_id}
    assert (tmp_path / "gen.txt").exists() or any(tmp_path.glob("launcher_*/gen.txt"))
    launch = lpad.launches.find_one({"fw_id": first_id})
    assert launch["fworker"]["name"] == "test-worker"
    lpad.connection.close()


def test_store_database_uses_public_connection_attributes(db_settings):
    from jobflow import JobStore
    from maggma.stores import MemoryStore, MongoStore

    from chggen_flows.errors import DatabaseError

    store = get_job_store(db_settings)
    db = store_database(store)
    assert db.name == db_settings.database
    assert store_database(get_job_store(db_settings)).client is db.client  # one per server
    # a store given piecewise (host/port, as jobflow.yaml may) reaches the same server
    info = MongoClient(db_settings.mongo_uri.get_secret_value()).address
    piecewise = JobStore(MongoStore(db_settings.database, "outputs", host=info[0], port=info[1]))
    assert store_database(piecewise).name == db_settings.database
    assert store_database(piecewise).command("ping")["ok"] == 1
    with pytest.raises(DatabaseError, match="MemoryStore"):
        store_database(JobStore(MemoryStore()))
