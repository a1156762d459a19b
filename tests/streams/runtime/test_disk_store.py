"""The disk store on real RocksDB files (no broker: acknowledgements and changelog records are
handed to it as faust would)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust
import pytest
from faust.types import TP

from streams.metrics import Metrics
from streams.runtime import disk_probe, disk_store
from streams.runtime.app import make_faust_app
from streams.runtime.disk_probe import log_to_replay, probe_open
from streams.runtime.disk_store import DiskStore, is_lock_error
from streams.runtime.state_table import make_table
from streams.settings import Settings


class Worker:
    """A faust app with the user-state table on ``data_dir``, as a worker builds it."""

    def __init__(self, data_dir: Path, memory_mb: int = 256) -> None:
        self.settings = Settings.from_env({}, store="rocksdb", data_dir=data_dir,
                                          topic_partitions=4, state_memory_mb=memory_mb)
        self.app: faust.App = make_faust_app(self.settings)
        self.metrics = Metrics()
        self.table = make_table(self.app, self.settings, self.metrics)
        store = self.table.data
        assert isinstance(store, DiskStore)
        self.store = store
        self.topic = self.table.changelog_topic_name

    def ack(self, partition: int, offset: int, key: str, value: Any) -> None:
        kb, vb = self.store._encode_key(key), self.store._encode_value(value)
        assert vb is not None
        self.store.sent(kb, partition)
        self.store.acked(partition, offset, kb, vb)

    def on_disk(self, partition: int, key: str) -> Any:
        raw = self.store._db_for_partition(partition).get(self.store._encode_key(key))
        return None if raw is None else self.store._decode_value(raw)

    def persisted(self, partition: int) -> int | None:
        offset: int | None = self.store.persisted_offset(TP(self.topic, partition))
        return offset

    def discarded(self, reason: str) -> float:
        value = self.metrics.registry.get_sample_value("sidstream_state_discarded_total",
                                                       {"reason": reason})
        return value or 0.0

    def close(self) -> None:
        for db in self.store._dbs.values():
            db.close()
        self.store._dbs.clear()


def changelog_record(partition: int, offset: int, key: bytes, value: bytes | None) -> Any:
    """A changelog event as faust's recovery hands it over: raw bytes in the message, decoded
    key and value on the event (the memory store reads those)."""
    return SimpleNamespace(
        key=json.loads(key), value=None if value is None else json.loads(value),
        message=SimpleNamespace(partition=partition, offset=offset, key=key, value=value,
                                tp=TP("t", partition)))


@pytest.fixture()
def worker(tmp_path: Path) -> Iterator[Worker]:
    w = Worker(tmp_path)
    yield w
    w.close()


def test_a_state_reaches_disk_only_with_its_acknowledged_changelog_offset(
        worker: Worker, tmp_path: Path) -> None:
    """A crash between the table write and the changelog's acknowledgement must not leave a
    state on disk that the changelog lacks (its event, redelivered, would be skipped as a
    duplicate and never reach the changelog)."""
    worker.store._db_for_partition(2)
    worker.table.data["u1"] = {"n": 1}
    assert worker.table.get("u1") == {"n": 1}  # the worker sees it at once
    assert worker.on_disk(2, "u1") is None and worker.persisted(2) is None
    worker.ack(2, 7, "u1", {"n": 1})
    assert worker.on_disk(2, "u1") == {"n": 1} and worker.persisted(2) == 7
    worker.table.data["u1"] = {"n": 2}  # set, never acknowledged: the worker dies
    worker.close()
    again = Worker(tmp_path)
    try:
        assert again.table.get("u1") is None  # nothing open: found only in its partition
        again.store._db_for_partition(2)
        assert again.table.get("u1") == {"n": 1} and again.persisted(2) == 7
    finally:
        again.close()


def test_an_acknowledgement_does_not_hide_a_newer_state_or_undo_a_recovery(
        worker: Worker) -> None:
    worker.store._db_for_partition(1)
    worker.table.data["u"] = {"n": 1}
    worker.table.data["u"] = {"n": 2}  # set again before the first record is acknowledged
    worker.ack(1, 3, "u", {"n": 1})
    assert worker.table.get("u") == {"n": 2} and worker.on_disk(1, "u") == {"n": 1}
    worker.ack(1, 4, "u", {"n": 2})
    assert worker.on_disk(1, "u") == {"n": 2} and worker.store._unacked == {}
    kb = worker.store._encode_key("u")
    worker.store.apply_changelog_batch([changelog_record(1, 9, kb, b'{"n": 5}')], None, None)
    worker.ack(1, 6, "u", {"n": 3})  # older than what the recovery applied: ignored
    assert worker.on_disk(1, "u") == {"n": 5} and worker.persisted(1) == 9


def test_a_state_is_read_from_its_own_partition_whatever_the_current_event(
        worker: Worker) -> None:
    """A micro-batch spans partitions: a read must not depend on faust's current event."""
    for p in range(4):
        worker.store._db_for_partition(p)
    worker.ack(3, 0, "u3", {"p": 3})
    worker.ack(0, 0, "u0", {"p": 0})
    assert worker.table.get("u3") == {"p": 3} and worker.table.get("u0") == {"p": 0}
    assert "u3" in worker.table.data and "nobody" not in worker.table.data


def test_users_are_counted_from_writes_and_recovery_not_by_scanning(
        worker: Worker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    actives = {TP(worker.topic, p) for p in range(4)}
    monkeypatch.setattr(worker.app.assignor, "assigned_actives", lambda: actives)
    for p in range(4):
        worker.store._db_for_partition(p)
    worker.ack(0, 0, "a", 1)
    worker.ack(0, 1, "a", 2)  # the same user again
    worker.ack(1, 0, "b", 1)
    records = [changelog_record(2, o, f'"{k}"'.encode(), b"1") for o, k in enumerate("cdc")]
    worker.store.apply_changelog_batch(records, None, None)
    worker.table.data["e"] = 1  # set, not acknowledged yet
    worker.store.sent(worker.store._encode_key("e"), 3)
    assert len(worker.table.data) == 5
    worker.close()
    again = Worker(tmp_path)
    monkeypatch.setattr(again.app.assignor, "assigned_actives", lambda: actives)
    try:
        for p in range(4):
            again.store._db_for_partition(p)
        assert len(again.table.data) == 4  # counted once, when opened
    finally:
        again.close()


def corrupt_middle(path: Path) -> None:
    """64 zero bytes in the middle of the one table file under ``path``: a data block, the
    manifest and the file's size intact."""
    (sst,) = path.glob("*.sst")
    with sst.open("r+b") as fh:
        fh.seek(sst.stat().st_size // 2)
        fh.write(b"\0" * 64)


def test_a_database_without_a_key_count_is_read_whole_and_a_corrupt_block_rebuilds_it(
        tmp_path: Path) -> None:
    """A database written before the key count was kept is counted by reading it whole; there
    rocksdict's ``keys()`` stops at a corrupt block without an error: a store that trusted
    it would count and serve the states before the block and lose the rest."""
    worker = Worker(tmp_path)
    db = worker.store._db_for_partition(0)
    for i in range(30_000):
        db.put(f'"u{i:06d}"'.encode(), os.urandom(120))
    db.put(worker.store.offset_key, b"29999")
    db.delete(disk_store.COUNT_KEY)  # as before the count was kept
    worker.close()  # flushed to one table file of ~4 MB
    corrupt_middle(worker.store.partition_path(0))
    again = Worker(tmp_path)
    try:
        again.store._db_for_partition(0)
        assert again.discarded("unreadable") == 1
        assert again.persisted(0) is None and again.store._counts[0] == 0
        assert again.table.get("u000001") is None
    finally:
        again.close()


def write_states(worker: Worker, partition: int, n: int) -> dict[str, str]:
    """``n`` acknowledged states of ~250 bytes in ``partition``, flushed to a table file."""
    states = {f"u{i:06d}": os.urandom(120).hex() for i in range(n)}
    for offset, (key, value) in enumerate(states.items()):
        worker.ack(partition, offset, key, value)
    worker.store._dbs[partition].flush()
    return states


def test_a_reopened_partition_reads_its_key_count_not_its_whole_database(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Opening read every block of the database: the intact restart grew with the users
    (0.7 s per million)."""
    worker = Worker(tmp_path)
    worker.store._db_for_partition(2)
    write_states(worker, 2, 3000)
    worker.ack(2, 3000, "u000007", "again")  # a user seen again is not counted twice
    worker.close()
    again = Worker(tmp_path)

    def whole(db: Any) -> int:
        raise AssertionError("read whole on open")

    monkeypatch.setattr(again.store, "_read_whole", whole)
    try:
        again.store._db_for_partition(2)
        assert again.store._counts[2] == 3000 and again.persisted(2) == 3000
        assert again.table.get("u000007") == "again"
        items = dict(again.store._visible_items(again.store._dbs[2]))
        assert len(items) == 3000 and b'"u002999"' in items  # the count is not an item
    finally:
        again.close()


def test_a_read_that_meets_a_corrupt_block_deletes_the_partition_and_stops_the_worker(
        tmp_path: Path) -> None:
    """Without the whole read on open, a corrupt data block is met by a read: it must not be
    taken for a missing user (served as a new one), nor the worker go on without the
    partition; the partition is deleted and the worker stopped, its restart rebuilds it."""
    worker = Worker(tmp_path)
    worker.store._db_for_partition(0)
    states = write_states(worker, 0, 30_000)
    worker.close()
    corrupt_middle(worker.store.partition_path(0))
    again = Worker(tmp_path)
    stops: list[str] = []
    again.store.on_corrupt = stops.append
    try:
        again.store._db_for_partition(0)
        assert again.discarded("unreadable") == 0  # the open does not read the blocks
        served = 0
        with pytest.raises(disk_store.CorruptStateError):
            for key, value in states.items():
                assert again.table.get(key) == value  # never a wrong or missing state
                served += 1
        assert 0 < served < len(states) and len(stops) == 1 and "partition 0" in stops[0]
        assert again.discarded("unreadable") == 1 and 0 not in again.store._dbs
        assert not again.store.partition_path(0).exists()  # the restart rebuilds it
    finally:
        again.close()


READ_ALL = """
import sys
from pathlib import Path
from tests.streams.runtime.test_disk_store import Worker
worker = Worker(Path(sys.argv[1]))
worker.store._db_for_partition(0)
for i in range(30_000):
    worker.table.get(f"u{i:06d}")
print("read all")
"""


def test_a_worker_that_meets_a_corrupt_block_exits_for_a_restart(tmp_path: Path) -> None:
    """The worker's default on a corrupt block: exit at once with EXIT_CORRUPT_STATE (its
    supervisor restarts it), not raise into faust, which would log the agent's crash and go
    on consuming without the partition."""
    worker = Worker(tmp_path)
    worker.store._db_for_partition(0)
    write_states(worker, 0, 30_000)
    worker.close()
    corrupt_middle(worker.store.partition_path(0))
    done = subprocess.run([sys.executable, "-c", READ_ALL, str(tmp_path)], capture_output=True,
                          timeout=60, check=False, cwd=Path(__file__).parents[3])
    assert done.returncode == disk_store.EXIT_CORRUPT_STATE, done.stderr.decode()[-2000:]
    assert b"read all" not in done.stdout
    assert not worker.store.partition_path(0).exists()


def test_a_database_that_does_not_open_is_rebuilt(tmp_path: Path) -> None:
    worker = Worker(tmp_path)
    worker.store._db_for_partition(1)
    worker.ack(1, 0, "u", 1)
    worker.close()
    (worker.store.partition_path(1) / "CURRENT").write_bytes(b"garbage")
    again = Worker(tmp_path)
    try:
        again.store._db_for_partition(1)
        assert again.discarded("unreadable") == 1 and again.persisted(1) is None
        assert again.discarded("ahead_of_changelog") == 0
    finally:
        again.close()


def test_a_lock_held_elsewhere_is_retried_and_a_block_error_is_not(worker: Worker) -> None:
    """faust retries on ``"lock" in repr(exc)``, which ``block checksum mismatch`` matches."""
    worker.store._db_for_partition(0)
    with pytest.raises(Exception) as held:
        worker.store.rocksdb_options.open(worker.store.partition_path(0))
    assert is_lock_error(held.value)
    corrupt = Exception("Corruption: block checksum mismatch: stored = 1 in /x/000009.sst")
    assert "lock" in repr(corrupt) and not is_lock_error(corrupt)


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


def test_all_partitions_share_one_cache_that_the_memory_budget_bounds(tmp_path: Path) -> None:
    """faust gives each partition's database a block cache of its own (and keeps index and
    filter blocks outside it): RocksDB's memory then grows with partitions and data."""
    w = Worker(tmp_path, memory_mb=4)
    try:
        options = w.store.rocksdb_options
        assert options.memory_bytes == 4 << 20
        for p in range(4):
            w.store._db_for_partition(p)  # open (assigned), as faust does before writes
        rng = random.Random(0)
        keys = [(p, f"u{p}-{i}") for p in range(4) for i in range(2500)]  # ~12 MB of states
        for offset, (p, key) in enumerate(keys):
            w.ack(p, offset, key, {"seq": rng.randbytes(600).hex()})
        assert options.usage() > 0  # the memtables are charged to the shared cache
        for p, key in keys:
            assert w.on_disk(p, key) is not None
        used = options.usage()
        assert 1 << 20 < used <= 1.1 * (4 << 20), used  # blocks read back fill it, to its bound
    finally:
        w.close()


def test_a_reopened_partition_is_read_whole_outside_the_budgeted_cache(tmp_path: Path) -> None:
    """Two bugs of a restart: rocksdict reopened a database with RocksDB's own 8 MiB cache
    (the column family options of its OPTIONS file, not the budget), and the open's whole read
    (now only of a database without a key count) went through the cache, evicting what reads
    need for blocks nobody asked for."""
    w = Worker(tmp_path, memory_mb=64)
    try:
        for p in range(4):
            w.store._db_for_partition(p)
        rng = random.Random(1)
        for offset in range(8000):  # ~10 MB of states
            w.ack(offset % 4, offset, f"u{offset}", {"seq": rng.randbytes(600).hex()})
    finally:
        for db in w.store._dbs.values():
            db.delete(disk_store.COUNT_KEY)  # as written before the count was kept
            db.flush()
        w.close()
    again = Worker(tmp_path, memory_mb=64)
    try:
        for p in range(4):
            again.store._db_for_partition(p)
        assert sum(again.store._counts.values()) == 8000  # every key read back whole
        assert again.store.rocksdb_options.usage() < 2 << 20  # index and filters, not data
        for db in again.store._dbs.values():  # a reopened database is on the budget too
            assert db.property_int_value("rocksdb.block-cache-capacity") == 64 << 20
    finally:
        again.close()
