"""A/B of the rocksdb store's open after a SIGKILL, on the same databases: the code before
2026-12-06 (each partition read whole, the corruption check then, and its crash probe started
when it is opened), the key count instead of the whole read, and now (the key count, and the
probes of all partitions started together).

    python benchmarks/open_ab.py --users 3000000 --dir /tmp/open-ab \
        --json benchmarks/rocksdb-open-ab-2026-12-06.json

Builds 8 partitions of ``--users`` states (680-byte JSON values, as ``bench state`` seeds them)
through the store's own write path in a child process that then dies without flushing (a
SIGKILL: write-ahead logs to replay), keeps a pristine copy, and times opening all 8 partitions
from a fresh copy of it in a fresh process, the variants in turn, ``--repeats`` times each.
The files sit in the page cache (just copied), as after a restart on the same machine.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PARTITIONS = 8

BUILD = f"""
import json, os, random, sys
from pathlib import Path
from benchmarks.open_ab import store_at
store = store_at(Path(sys.argv[1]))
n, rng = int(sys.argv[2]), random.Random(0)
for p in range({PARTITIONS}):
    store._db_for_partition(p)
for i in range(n):
    key = json.dumps(f"u{{i:09d}}").encode()
    value = json.dumps({{"seq": [rng.randrange(100_000) for _ in range(60)]}}).encode()[:680]
    store.sent(key, i % {PARTITIONS})
    store.acked(i % {PARTITIONS}, i // {PARTITIONS}, key, value)
os._exit(0)  # no flush: the last memtables stay in the write-ahead logs
"""


def store_at(data_dir: Path) -> Any:
    """The worker's user-state store on ``data_dir`` (8 partitions, default memory budget)."""
    from streams.metrics import Metrics
    from streams.runtime.app import make_faust_app
    from streams.runtime.state_table import make_table
    from streams.settings import Settings

    settings = Settings.from_env({}, store="rocksdb", data_dir=data_dir,
                                 topic_partitions=PARTITIONS)
    return make_table(make_faust_app(settings), settings, Metrics()).data


VARIANTS = ("before", "key_count", "now")


def open_all(data_dir: Path, variant: str) -> dict[str, float]:
    """Seconds to open the 8 partitions, each as the worker opens it after a crash."""
    store = store_at(data_dir)
    if variant == "before":  # every block read once, the count from that read
        def read_counts(db: Any) -> tuple[int, int | None]:
            raw = db.get(store.offset_key)
            return store._read_whole(db) - 2, None if raw is None else int(raw)
        store._read_counts = read_counts
    if variant in ("before", "key_count"):  # each probe started when its partition opens
        start = store.probes.start
        store.probes.start = lambda paths: start(paths) if isinstance(paths, list) else None
    t0 = time.perf_counter()
    for p in range(PARTITIONS):
        store._db_for_partition(p)
    seconds = time.perf_counter() - t0
    users = sum(store._counts.values())
    for db in store._dbs.values():
        db.close()
    return {"seconds": round(seconds, 3), "users": users}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=1_000_000)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/open-ab"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    shutil.rmtree(args.dir, ignore_errors=True)
    pristine, trial = args.dir / "pristine", args.dir / "trial"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", BUILD, str(pristine), str(args.users)], check=True)
    built = time.perf_counter() - t0
    size = sum(f.stat().st_size for f in pristine.rglob("*") if f.is_file())
    runs: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
    for _ in range(args.repeats):
        for name in runs:
            shutil.rmtree(trial, ignore_errors=True)
            shutil.copytree(pristine, trial)
            child = subprocess.run(
                [sys.executable, "-c", "import json, sys; from pathlib import Path; "
                 "from benchmarks.open_ab import open_all; "
                 "print(json.dumps(open_all(Path(sys.argv[1]), sys.argv[2])))",
                 str(trial), name],
                check=True, capture_output=True, text=True)
            runs[name].append(json.loads(child.stdout.strip().splitlines()[-1]))
            print(name, runs[name][-1], flush=True)
    out = {"what": __doc__.strip().splitlines()[0], "users": args.users,
           "partitions": PARTITIONS, "disk_bytes": size, "build_s": round(built, 1),
           "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "runs": runs,
           "median_s": {k: sorted(r["seconds"] for r in v)[len(v) // 2]
                        for k, v in runs.items()}}
    print(json.dumps(out["median_s"]))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    shutil.rmtree(args.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
