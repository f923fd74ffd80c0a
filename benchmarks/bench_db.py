"""The embedded SecantusDB server: start-up, write durability cost, GridFS throughput.

Starts a fresh server in a temporary directory and measures, side by side:

- cold start (process start until ``ping`` answers) and a second ``start()`` that finds
  the running server (what every ``chggen`` command pays);
- ``insert_one`` of a 2 KB document with mongod's default write concern (``j: false``,
  the last ~0.1 s of writes are lost if the server is killed) and with ``j: true``
  (what chggen's ``journal=true`` URI option asks for); prints the ratio;
- a JobStore-style GridFS upload (journaled, as chggen writes) and download of a 17.6 MB array (over the 16 MB
  document limit).

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_db.py --writes 300
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


def main() -> None:
    """Run the measurements and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=300, help="inserts per variant")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of the write test")
    args = parser.parse_args()

    import gridfs

    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedServer(Path(tmp))
        began = time.perf_counter()
        info = server.start()
        cold = time.perf_counter() - began
        began = time.perf_counter()
        server.start()
        warm = time.perf_counter() - began
        # The URI asks for j: true; the write tests set their write concern explicitly.
        client: MongoClient = MongoClient(info.uri)
        try:
            plain = [_per_write_ms(client, False, args.writes) for _ in range(args.repeats)]
            journaled = [_per_write_ms(client, True, args.writes) for _ in range(args.repeats)]
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

    p, j = statistics.median(plain), statistics.median(journaled)
    mb = len(blob) / 1e6
    print(f"server cold start           {cold:7.2f} s")
    print(f"start() when running        {warm * 1000:7.1f} ms")
    print(f"insert_one, j: false        {p:7.2f} ms/write  ({1000 / p:.0f} writes/s)")
    print(f"insert_one, j: true         {j:7.2f} ms/write  ({1000 / j:.0f} writes/s)")
    print(f"ratio j:true / j:false      {j / p:7.1f} x")
    print(f"GridFS put {mb:.1f} MB           {put_s:7.2f} s  ({mb / put_s:.0f} MB/s)")
    print(f"GridFS get {mb:.1f} MB           {get_s:7.2f} s  ({mb / get_s:.0f} MB/s)")


if __name__ == "__main__":
    main()
