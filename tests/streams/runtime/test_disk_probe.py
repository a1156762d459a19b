"""Crashed databases opened first in child processes (``streams.runtime.disk_probe``), as the
disk store uses them on real RocksDB files."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from streams.runtime import disk_probe
from streams.runtime.disk_probe import log_to_replay, probe_open
from tests.fixtures.disk_worker import Worker

# 20,000 seeded values written and the process killed (the log not flushed), then seeded
# garbage over a tenth of the log: this RocksDB spins forever replaying it (found by trying
# seeds; 8 of 30 random corruptions of such a log hung it)
WRITE_AND_DIE = """
import os, random, sys
from faust.stores.rocksdb import RocksDBOptions
db, rng = RocksDBOptions().open(sys.argv[1]), random.Random(0)
for i in range(20_000):
    db.put(f"k{i}".encode(), rng.randbytes(200))
os._exit(0)
"""


def test_a_database_whose_log_hangs_rocksdb_is_rebuilt_not_waited_for(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    worker = Worker(tmp_path)
    path = worker.store.partition_path(0)
    subprocess.run([sys.executable, "-c", WRITE_AND_DIE, str(path)], check=True)
    (wal,) = path.glob("*.log")
    size = wal.stat().st_size
    with wal.open("r+b") as fh:
        fh.seek(size // 3)
        fh.write(random.Random(1000).randbytes(size // 10))
    assert log_to_replay(path)
    monkeypatch.setattr(disk_probe, "PROBE_TIMEOUT_S", 3.0)
    copy = tmp_path / "copy.db"
    subprocess.run(["cp", "-r", str(path), str(copy)], check=True)
    assert (probe_open(copy) or "").startswith("hangs replaying")  # the bug is still there
    start = time.monotonic()
    try:
        worker.store._db_for_partition(0)
        assert time.monotonic() - start < 10
        assert worker.discarded("unreadable") == 1 and worker.persisted(0) is None
    finally:
        worker.close()


def test_the_probes_of_every_crashed_partition_start_together(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One probe (a Python start-up, ~0.1 s) after another took most of a restart's open."""
    worker = Worker(tmp_path)
    for p in range(4):
        subprocess.run([sys.executable, "-c", WRITE_AND_DIE, str(worker.store.partition_path(p))],
                       check=True)
    started: list[Path] = []
    popen = subprocess.Popen

    def spy(args: list[str], **kwargs: Any) -> Any:
        started.append(Path(args[-1]))
        return popen(args, **kwargs)

    monkeypatch.setattr(disk_probe.subprocess, "Popen", spy)
    try:
        worker.store._db_for_partition(2)
        assert sorted(started) == [worker.store.partition_path(p) for p in range(4)]
        for p in (0, 1, 3):
            worker.store._db_for_partition(p)
        assert len(started) == 4 and worker.discarded("unreadable") == 0
        assert all(worker.store._counts[p] == 20_000 for p in range(4))  # each opened whole
    finally:
        worker.store.probes.stop()
        worker.close()
