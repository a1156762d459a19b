"""The memory budget of the disk store's RocksDB databases (``streams.runtime.disk_options``),
on real files."""

from __future__ import annotations

import random
from pathlib import Path

from streams.runtime import disk_store
from tests.fixtures.disk_worker import Worker


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
