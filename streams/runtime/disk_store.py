"""The user-state table on local disk (``SIDSTREAM_STORE=rocksdb``).

faust's RocksDB store with the ``rocksdict`` driver: one database per table partition under
``SIDSTREAM_DATA_DIR`` (``<data_dir>/v1/tables/user-state-<partition>.db``), each holding the
offset of the last changelog record it contains, so that faust's recovery reads only the
changelog after it. Three differences keep it exact:

1. **A partition's database never holds more than its changelog.** faust writes a value to
   RocksDB when the table is set and the offset when the broker acknowledges the changelog
   record: a worker killed in between restarts with a state the changelog lacks (its event,
   redelivered, is then skipped as a duplicate and never reaches the changelog). Here a state
   the worker sets is held in memory until its changelog record is acknowledged
   (:meth:`DiskStore.acked`); then the value and the record's offset go to the database in one
   atomic write batch. The persisted offset says exactly which prefix of the changelog the
   database holds.
2. **Keys are found in whichever partition holds them.** faust writes to the database of the
   partition of the "current event" (and asserts there is one) and reads from it when there
   is one; the worker's micro-batches span partitions and its writes name their changelog
   partition (``streams.runtime.stages.put_state``), so reads here look the key up in every
   open partition (bloom filters first, as faust does without a current event).
3. **A database that does not read back whole is rebuilt.** Opening a partition reads every
   block once (checksums): one that fails to open or to read is deleted, counted in
   ``sidstream_state_discarded_total{reason="unreadable"}`` and rebuilt from the changelog.
   A database left with a write-ahead log to replay (a crash) is first opened in a child
   process with a time limit: this RocksDB spins forever replaying some corrupt logs
   (``log::Reader::ReadRecord``), whatever the recovery mode. ``streams.runtime.recovery_check``
   discards one ahead of its changelog.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import rocksdict
from faust.stores import rocksdb as faust_rocksdb
from faust.types import EventT

from streams.metrics import Metrics

log = logging.getLogger(__name__)

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


PROBE_TIMEOUT_S = 30.0  # opening a database in a child process (its log replayed) may take
PROBE = ("import sys, rocksdict; "
         "rocksdict.Rdict(sys.argv[1], options=rocksdict.Options(raw_mode=True)).close()")


def is_lock_error(exc: BaseException | str) -> bool:
    """Another process (or a not yet collected handle) holds the database: faust retries.
    faust's own test, ``"lock" in repr(exc)``, also matches ``block checksum mismatch``."""
    return "/LOCK:" in str(exc)


def log_to_replay(path: Path) -> bool:
    """Whether the database at ``path`` has a write-ahead log with records (after a crash;
    a clean stop flushes them into tables)."""
    return any(f.stat().st_size > 0 for f in path.glob("*.log"))


def probe_open(path: Path) -> str | None:
    """Open (and close) the database at ``path`` in a child process, within
    ``PROBE_TIMEOUT_S``: None if it opened, else what went wrong."""
    try:
        done = subprocess.run([sys.executable, "-c", PROBE, str(path)], capture_output=True,
                              timeout=PROBE_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return f"hangs replaying its write-ahead log (over {PROBE_TIMEOUT_S:.0f} s)"
    if done.returncode == 0:
        return None
    lines = done.stderr.decode(errors="replace").strip().splitlines()
    return f"cannot be opened: {lines[-1] if lines else done.returncode}"


class DiskStore(faust_rocksdb.Store):
    """faust's RocksDB store, changed as the module says."""

    def __init__(self, url: Any, app: Any, table: Any, *, metrics: Metrics | None = None,
                 memory_bytes: int, **kwargs: Any) -> None:
        super().__init__(url, app, table, driver="rocksdict", **kwargs)
        self.rocksdb_options = BoundedOptions(memory_bytes, **(self.options or {}),
                                              use_rocksdict=True)
        self.metrics = metrics
        self._unacked: dict[bytes, bytes] = {}  # set by the worker, changelog not acked yet
        self._unacked_at: dict[bytes, int] = {}  # their changelog partition, once sent
        self._offsets: dict[int, int | None] = {}  # persisted offset of each open partition
        self._counts: dict[int, int] = {}  # keys of each open partition (the users gauge)

    @property
    def unacked(self) -> Mapping[bytes, bytes]:
        """The states held in memory until the changelog acknowledges them (read-only view)."""
        return MappingProxyType(self._unacked)

    # -- the worker's reads and writes ---------------------------------------------------------

    def _set(self, key: bytes, value: bytes | None) -> None:
        if value is None:
            self._del(key)
        else:
            self._unacked[key] = value

    def sent(self, key: bytes, partition: int) -> None:
        """The changelog record of ``key``'s latest value went to ``partition``."""
        self._unacked_at[key] = partition

    def acked(self, partition: int, offset: int, key: bytes, value: bytes) -> None:
        """The broker holds ``value`` at ``offset`` of the changelog: now it may be on disk."""
        if self._unacked.get(key) == value:  # no newer value was set meanwhile
            del self._unacked[key]
            self._unacked_at.pop(key, None)
        db = self._dbs.get(partition)
        if db is None:  # revoked meanwhile: its next owner reads the record from the changelog
            return
        last = self._offsets.get(partition)
        if last is not None and offset <= last:  # a recovery applied it (and later ones)
            return
        new = self._absent(db, key)
        batch = rocksdict.WriteBatch(raw_mode=True)
        batch.put(key, value)
        batch.put(self.offset_key, str(offset).encode())
        db.write(batch)
        self._offsets[partition] = offset
        self._counts[partition] = self._counts.get(partition, 0) + new
        self._key_index[key] = partition  # the next read goes straight to this partition

    def _get(self, key: bytes) -> bytes | None:
        value = self._unacked.get(key)
        if value is not None:
            return value
        found = self._get_bucket_for_key(key)
        return None if found is None else found.value

    def _contains(self, key: bytes) -> bool:
        return key in self._unacked or self._get_bucket_for_key(key) is not None

    def _del(self, key: bytes) -> None:
        self._unacked.pop(key, None)
        self._unacked_at.pop(key, None)
        for partition, db in list(self._dbs.items()):
            if not self._absent(db, key):
                db.delete(key)
                self._counts[partition] = self._counts.get(partition, 0) - 1

    def _iteritems(self) -> Iterator[tuple[bytes, bytes]]:
        pending = dict(self._unacked)
        for key, value in super()._iteritems():
            yield key, pending.pop(key, value)
        yield from pending.items()

    def _iterkeys(self) -> Iterator[bytes]:
        for key, _ in self._iteritems():
            yield key

    def _itervalues(self) -> Iterator[bytes]:
        for _, value in self._iteritems():
            yield value

    def _size(self) -> int:
        """Keys of the active partitions, from counts kept on every write (no scan)."""
        topics = self.table.changelog_topic.topics
        actives = {tp.partition for tp in self.app.assignor.assigned_actives()
                   if tp.topic in topics}
        n = sum(self._counts.get(p, 0) for p in actives if p in self._dbs)
        for key, partition in self._unacked_at.items():
            db = self._dbs.get(partition)
            n += partition in actives and db is not None and self._absent(db, key)
        return n

    # -- the changelog: recovery and standby replicas --------------------------------------------

    def apply_changelog_batch(self, batch: Iterable[EventT], to_key: Any, to_value: Any
                              ) -> None:
        """Changelog records into their partitions' databases, each partition's records and its
        new offset in one atomic write batch."""
        batches: dict[int, Any] = {}
        offsets: dict[int, int] = {}
        present: dict[tuple[int, bytes], bool] = {}  # whether a key exists once batched
        for event in batch:
            msg = event.message
            if msg.key is None:
                raise TypeError(f"changelog record without a key: {msg}")
            partition, where = msg.partition, (msg.partition, msg.key)
            db = self._db_for_partition(partition)
            wb = batches.setdefault(partition, rocksdict.WriteBatch(raw_mode=True))
            offsets[partition] = max(msg.offset, offsets.get(partition, -1))
            existed = present[where] if where in present else not self._absent(db, msg.key)
            present[where] = msg.value is not None
            self._counts[partition] = self._counts.get(partition, 0) + (
                present[where] - existed)
            if msg.value is None:
                wb.delete(msg.key)
            else:
                wb.put(msg.key, msg.value)
        for partition, wb in batches.items():
            offset = offsets[partition]
            wb.put(self.offset_key, str(offset).encode())
            self._dbs[partition].write(wb)
            self._offsets[partition] = offset

    def set_persisted_offset(self, tp: Any, offset: int) -> None:
        super().set_persisted_offset(tp, offset)
        self._offsets[tp.partition] = offset

    # -- opening, checking, discarding -----------------------------------------------------------

    def _open_for_partition(self, partition: int) -> Any:
        path = self.partition_path(partition)
        if log_to_replay(path):
            problem = probe_open(path)
            if problem is not None and is_lock_error(problem):
                raise OSError(problem)  # faust retries while the lock is held
            if problem is not None:
                return self._rebuild(partition, "unreadable", problem)
        try:
            db = super()._open_for_partition(partition)
        except Exception as exc:
            if is_lock_error(exc):
                raise
            return self._rebuild(partition, "unreadable", f"cannot be opened: {exc}")
        try:
            count, offset = self._read_whole(db)
        except Exception as exc:
            db.close()
            return self._rebuild(partition, "unreadable", f"does not read back: {exc}")
        self._counts[partition], self._offsets[partition] = count, offset
        return db

    def _read_whole(self, db: Any) -> tuple[int, int | None]:
        """(keys, persisted offset) of ``db``, reading every block once: rocksdict's
        ``keys()`` stops silently at a corrupt block, its raw iterator's ``status`` raises."""
        scan = rocksdict.ReadOptions()
        scan.fill_cache(False)  # type: ignore[call-arg]  # the stub lacks its argument
        # (a one-off pass: the cache keeps what reads need, index blocks first)
        scan.set_readahead_size(2 << 20)
        it = db.iter(scan)
        try:
            it.seek_to_first()
            n = 0
            while it.valid():
                n += 1
                it.next()
            it.status()
        finally:
            del it  # an iterator left alive (by the traceback) keeps the database locked
        raw = db.get(self.offset_key)
        return n - (raw is not None), None if raw is None else int(raw)

    def _rebuild(self, partition: int, reason: str, detail: str) -> Any:
        """Delete ``partition``'s database and open an empty one: recovery fills it."""
        self._delete_files(partition, reason, detail)
        db = super()._open_for_partition(partition)
        self._counts[partition], self._offsets[partition] = 0, None
        return db

    def discard(self, partition: int, reason: str, detail: str) -> None:
        """Throw away ``partition``'s local state (open or not) before recovery reads from it."""
        db = self._dbs.pop(partition, None)
        if db is not None:
            db.close()
        self._dbs[partition] = self._rebuild(partition, reason, detail)

    def _delete_files(self, partition: int, reason: str, detail: str) -> None:
        path = self.partition_path(partition)
        log.warning("local state of %s partition %d %s: deleting %s, rebuilding it from the "
                    "changelog", self.table_name, partition, detail[:300], path)
        shutil.rmtree(path, ignore_errors=True)
        self._key_index.clear()
        self._forget_unacked({partition})
        if self.metrics is not None:
            self.metrics.state_discarded.labels(reason).inc()

    async def stop(self) -> None:
        """Flush each database's memtable first: the next start has no log to replay."""
        for partition, db in self._dbs.items():
            try:
                db.flush()
            except Exception as exc:  # the log still holds it: replayed at the next start
                log.warning("flushing %s partition %d: %r", self.table_name, partition, exc)
        await super().stop()

    def revoke_partitions(self, table: Any, tps: Any) -> None:
        super().revoke_partitions(table, tps)
        gone = {tp.partition for tp in tps if tp.topic in table.changelog_topic.topics}
        self._forget_unacked(gone)
        for partition in gone:
            self._counts.pop(partition, None)
            self._offsets.pop(partition, None)

    def _forget_unacked(self, partitions: set[int]) -> None:
        """Drop the not yet acknowledged states sent to ``partitions`` (discarded or revoked:
        their changelog records reach whoever recovers those partitions)."""
        for key in [k for k, p in self._unacked_at.items() if p in partitions]:
            self._unacked.pop(key, None)
            del self._unacked_at[key]

    @staticmethod
    def _absent(db: Any, key: bytes) -> bool:
        return not db.key_may_exist(key) or db.get(key) is None
