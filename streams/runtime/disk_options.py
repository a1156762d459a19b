"""RocksDB options for the user-state table: one memory budget for every partition a worker
opens (``SIDSTREAM_STATE_MEMORY_MB``), reopened databases included."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import rocksdict
from faust.stores import rocksdb as faust_rocksdb

# faust's defaults give each partition's database a 2 GiB block cache and 64 MiB memtables;
# here every partition's memtables are at most 16 MiB, and all of them share one bounded cache
# (:class:`BoundedOptions`)
ROCKSDB_OPTIONS: dict[str, Any] = {"write_buffer_size": 16 << 20}
MEMTABLE_SHARE = 4  # memtables may take up to 1/MEMTABLE_SHARE of the memory budget


class BoundedOptions(faust_rocksdb.RocksDBOptions):
    """faust's RocksDB options with one memory budget for all of a worker's partitions
    (``SIDSTREAM_STATE_MEMORY_MB``): faust gives each database a block cache of its own, and
    index and filter blocks live outside it, so RocksDB's memory grows with partitions and
    data. Here every database shares one LRU cache of ``memory_bytes`` that holds data, index
    and filter blocks (level 0's pinned), and its memtables are charged to the same cache by
    a write buffer manager, which flushes them once they pass ``memory_bytes /
    MEMTABLE_SHARE`` together."""

    def __init__(self, memory_bytes: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # a memtable reserves its arena in blocks of an eighth of its size: with one active
        # memtable per partition, a small budget needs small memtables to stay one
        self.write_buffer_size = min(self.write_buffer_size, memory_bytes // 16)
        self.memory_bytes = memory_bytes
        self.cache = rocksdict.Cache(memory_bytes)
        self.write_buffers = rocksdict.WriteBufferManager.new_write_buffer_manager_with_cache(
            memory_bytes // MEMTABLE_SHARE, False, self.cache)

    def as_options(self) -> Any:
        opts = super().as_options()
        table = rocksdict.BlockBasedOptions()
        table.set_bloom_filter(self.bloom_filter_size, True)
        table.set_block_cache(self.cache)
        table.set_cache_index_and_filter_blocks(True)
        table.set_pin_l0_filter_and_index_blocks_in_cache(True)
        table.set_index_type(rocksdict.BlockBasedIndexType.binary_search())
        opts.set_block_based_table_factory(table)
        opts.set_write_buffer_manager(self.write_buffers)
        return opts

    def open(self, path: Path, *, read_only: bool = False) -> Any:
        """faust's open, with these options given to the default column family as well:
        rocksdict reopens an existing database with the column family options of its OPTIONS
        file otherwise (RocksDB's own 8 MiB cache per database: every restart left the budget)."""
        opts = self.as_options()
        access = rocksdict.AccessType.read_write() if self.ttl is None \
            else rocksdict.AccessType.with_ttl(self.ttl)
        db = rocksdict.Rdict(str(path), options=opts, column_families={"default": opts},
                             access_type=access)
        db.set_read_options(rocksdict.ReadOptions())
        return db

    def usage(self) -> int:
        """Bytes the shared cache holds now, the memtables charged to it included."""
        return int(self.cache.get_usage())
