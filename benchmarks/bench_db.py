"""The embedded SecantusDB server: start-up, authentication and durability cost, GridFS.

Starts a fresh server in a temporary directory, once without and once with
authentication (chggen's default: ``--auth``, SCRAM-SHA-256, the credential made on
first start), and measures for each, side by side:

- first start in a fresh directory (process start until ``ping`` answers; with
  authentication this includes creating the user, i.e. a second server start), a
  restart of the stopped server (every later start), and a second ``start()`` that finds
  the running server (what every ``chggen`` command pays);
- a new client's first query (connection set-up, and the SCRAM conversation with
  authentication);
- ``insert_one`` of a 2 KB document with mongod's default write concern (``j: false``,
  the last ~0.1 s of writes are lost if the server is killed) and with ``j: true``
  (what chggen's ``journal=true`` URI option asks for); prints the ratio;
- a JobStore-style GridFS upload (journaled, as chggen writes) and download of a 17.6 MB array (over the 16 MB
  document limit).

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_db.py --writes 300 --rounds 3
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from pymongo import MongoClient, WriteConcern

from chggen_flows.db import EmbeddedServer


def _per_write_ms(client: MongoClient, journal: bool, writes: int) -> float:
    coll = client.bench.get_collection(f"j_{journal}", write_concern=WriteConcern(w=1, j=journal))
    doc = {"payload": "x" * 2000}
    began = time.perf_counter()
    for i in range(writes):
        coll.insert_one({**doc, "i": i})
    return (time.perf_counter() - began) / writes * 1000


def _connect_ms(uri: str, repeats: int = 20) -> float:
    """A new client's first command: TCP connect, handshake and, with ``--auth``, the
    SCRAM-SHA-256 conversation (what each ``chggen`` command and each job pays once)."""
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        client: MongoClient = MongoClient(uri)
        client.chggen.outputs.find_one()
        times.append(time.perf_counter() - began)
        client.close()
    return statistics.median(times) * 1000


def measure(auth: bool, writes: int, repeats: int) -> dict[str, float]:
    """Every figure for one server, with or without authentication."""
    import gridfs

    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedServer(Path(tmp), auth=auth)
        began = time.perf_counter()
        info = server.start()
        cold = time.perf_counter() - began
        began = time.perf_counter()
        server.start()
        warm = time.perf_counter() - began
        # The URI asks for j: true; the write tests set their write concern explicitly.
        client: MongoClient = MongoClient(info.uri)
        try:
            connect = _connect_ms(info.uri)
            plain = [_per_write_ms(client, False, writes) for _ in range(repeats)]
            journaled = [_per_write_ms(client, True, writes) for _ in range(repeats)]
            blob = pickle.dumps(np.arange(2_200_000, dtype=float))
            fs = gridfs.GridFS(client.bench, collection="outputs_data")
            began = time.perf_counter()
            file_id = fs.put(blob)
            put_s = time.perf_counter() - began
            began = time.perf_counter()
            assert fs.get(file_id).read() == blob
            get_s = time.perf_counter() - began
        finally:
            client.close()
            server.stop()
        # A restart of a server whose storage (and credential) exist: every later start.
        began = time.perf_counter()
        server.start()
        restart = time.perf_counter() - began
        server.stop()
    return {
        "cold": cold,
        "restart": restart,
        "warm_ms": warm * 1000,
        "connect_ms": connect,
        "plain_ms": statistics.median(plain),
        "journal_ms": statistics.median(journaled),
        "mb": len(blob) / 1e6,
        "put_s": put_s,
        "get_s": get_s,
    }


def main() -> None:
    """Run the measurements, without and with authentication, and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=300, help="inserts per variant")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of the write test")
    parser.add_argument("--rounds", type=int, default=3, help="alternating server pairs")
    args = parser.parse_args()

    # Alternating rounds: on a shared machine the load drifts; medians over rounds.
    runs: dict[bool, list[dict[str, float]]] = {False: [], True: []}
    for _ in range(args.rounds):
        for auth in (False, True):
            runs[auth].append(measure(auth, args.writes, args.repeats))
    off, on = (
        {key: statistics.median(run[key] for run in runs[auth]) for key in runs[auth][0]}
        for auth in (False, True)
    )
    rows = [
        ("first start, fresh directory (s)", "cold", "{:.2f}"),
        ("restart of an existing server (s)", "restart", "{:.2f}"),
        ("start() when running (ms)", "warm_ms", "{:.1f}"),
        ("new client, first query (ms)", "connect_ms", "{:.1f}"),
        ("insert_one, j: false (ms/write)", "plain_ms", "{:.2f}"),
        ("insert_one, j: true (ms/write)", "journal_ms", "{:.2f}"),
        (f"GridFS put {off['mb']:.1f} MB (s)", "put_s", "{:.2f}"),
        (f"GridFS get {off['mb']:.1f} MB (s)", "get_s", "{:.2f}"),
    ]
    print(f"{'':34s} {'no auth':>10s} {'auth':>10s} {'auth/no':>8s}")
    for label, key, fmt in rows:
        ratio = on[key] / off[key] if off[key] else float("nan")
        print(f"{label:34s} {fmt.format(off[key]):>10s} {fmt.format(on[key]):>10s} {ratio:7.2f}x")


if __name__ == "__main__":
    main()
