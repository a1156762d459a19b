"""The disk store on real RocksDB files (no broker: acknowledgements and changelog records are
handed to it as faust would)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from faust.types import TP

from streams.runtime import disk_store
from streams.runtime.disk_store import is_lock_error
from tests.fixtures.disk_worker import (
    Worker,
    changelog_record,
    corrupt_middle,
    corrupt_partition,
    reopened,
    write_states,
)


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
    states = corrupt_partition(tmp_path)
    again, stops = reopened(tmp_path)
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


def test_iterating_a_partition_with_a_corrupt_block_stops_the_worker_not_ends_early(
        tmp_path: Path) -> None:
    """Iterating a partition (faust's ``items()``, e.g. a table scan) that meets a corrupt block
    must stop the worker as a read does: rocksdict's own iteration ends there silently, as if
    the partition had no more users."""
    corrupt_partition(tmp_path)
    again, stops = reopened(tmp_path)
    try:
        db = again.store._db_for_partition(0)
        seen = 0
        with pytest.raises(disk_store.CorruptStateError):
            for _ in again.store._visible_items(db):
                seen += 1
        assert 0 < seen < 30_000 and len(stops) == 1 and "partition 0" in stops[0]
        assert again.discarded("unreadable") == 1 and 0 not in again.store._dbs
    finally:
        again.close()


READ_ALL = """
import sys
from pathlib import Path
from tests.fixtures.disk_worker import Worker
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
    corrupt_partition(tmp_path)
    done = subprocess.run([sys.executable, "-c", READ_ALL, str(tmp_path)], capture_output=True,
                          timeout=60, check=False, cwd=Path(__file__).parents[3])
    assert done.returncode == disk_store.EXIT_CORRUPT_STATE, done.stderr.decode()[-2000:]
    assert b"read all" not in done.stdout
    assert not Worker(tmp_path).store.partition_path(0).exists()


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
