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
3. **A database that does not read back is rebuilt, and opening one costs the same at any
   size.** The database keeps its key count beside its offset (in the same write batches), so
   opening a partition reads two keys, not the whole database; RocksDB's open checks its
   manifest and every table file's size. Data blocks are checked (checksums) when a read
   reaches them: a read that meets a corrupt block deletes that partition's database, counts
   it in ``sidstream_state_discarded_total{reason="unreadable"}`` and stops the worker
   (exit status ``EXIT_CORRUPT_STATE``) before anything else is served or committed; its
   restart rebuilds the partition from the changelog, and the events of the lost batch come
   again (nothing was committed past them). A database that does not open is rebuilt at once.
   A database without a key count (written before it was kept) is read whole once, every
   block (rocksdict's ``keys()`` stops silently at a corrupt block, its raw iterator's
   ``status`` raises). A database left with a write-ahead log to replay (a crash) is first
   opened in a child process with a time limit (``streams.runtime.disk_probe``).
   ``streams.runtime.recovery_check`` discards one ahead of its changelog.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, NoReturn

import rocksdict
from faust.stores import rocksdb as faust_rocksdb
from faust.types import EventT

from streams.metrics import Metrics
from streams.runtime.disk_options import BoundedOptions
from streams.runtime.disk_probe import Probes, log_to_replay

log = logging.getLogger(__name__)

COUNT_KEY = b"__sidstream\x00keys__"  # the partition's key count, beside faust's offset key
EXIT_CORRUPT_STATE = 75  # the worker's exit status after a read met a corrupt block (EX_TEMPFAIL)


class CorruptStateError(RuntimeError):
    """A read met a corrupt block of a partition's database (after the database was deleted)."""


def exit_for_rebuild(detail: str) -> NoReturn:
    """Stop the worker at once, as a crash would: nothing more is served or committed, and its
    restart rebuilds the deleted partition from the changelog."""
    log.critical("stopping the worker (exit %d) to rebuild its state: %s", EXIT_CORRUPT_STATE,
                 detail)
    logging.shutdown()
    os._exit(EXIT_CORRUPT_STATE)


def is_corruption(exc: BaseException) -> bool:
    """RocksDB's status for a block whose checksum or format is wrong."""
    return "Corruption" in str(exc)


def is_lock_error(exc: BaseException | str) -> bool:
    """Another process (or a not yet collected handle) holds the database: faust retries.
    faust's own test, ``"lock" in repr(exc)``, also matches ``block checksum mismatch``."""
    return "/LOCK:" in str(exc)


def entries(db: Any, options: Any = None, values: bool = True
            ) -> Iterator[tuple[bytes, bytes]]:
    """Every (key, value) of ``db`` in key order (values ``b""`` unless ``values``); raises at
    a corrupt block (rocksdict's ``keys()`` and ``items()`` stop there silently, the raw
    iterator's ``status`` raises). The raw iterator never leaves: one left alive (by a
    traceback) keeps the database locked."""
    it = db.iter() if options is None else db.iter(options)
    try:
        it.seek_to_first()
        while it.valid():
            yield it.key(), it.value() if values else b""
            it.next()
        it.status()
    finally:
        del it


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
        # what a read that met a corrupt block does once the database is deleted (tests
        # replace it; the worker exits)
        self.on_corrupt: Callable[[str], object] = exit_for_rebuild
        self.probes = Probes()  # crashed databases opened in child processes first

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
        if partition not in self._dbs:  # revoked meanwhile: its next owner reads the record
            return  # from the changelog
        last = self._offsets.get(partition)
        if last is not None and offset <= last:  # a recovery applied it (and later ones)
            return
        count = self._counts.get(partition, 0) + self._absent(partition, key)
        batch = rocksdict.WriteBatch(raw_mode=True)
        batch.put(key, value)
        self._write(partition, batch, count, offset)
        self._key_index[key] = partition  # the next read goes straight to this partition

    def _get(self, key: bytes) -> bytes | None:
        value = self._unacked.get(key)
        if value is not None:
            return value
        found = self._get_bucket_for_key(key)
        return None if found is None else found.value

    def _get_bucket_for_key(self, key: bytes) -> Any:
        """faust's lookup (the partition last seen holding ``key``, else every open one, bloom
        filters first), each read guarded against corrupt blocks."""
        known = self._key_index.get(key)
        for partition in [known] if known is not None and known in self._dbs else list(self._dbs):
            value = self._read(partition, key)
            if value is not None:
                self._key_index[key] = partition
                return faust_rocksdb._DBValueTuple(self._dbs[partition], value)
        return None

    def _contains(self, key: bytes) -> bool:
        return key in self._unacked or self._get_bucket_for_key(key) is not None

    def _del(self, key: bytes) -> None:
        self._unacked.pop(key, None)
        self._unacked_at.pop(key, None)
        for partition in list(self._dbs):
            if not self._absent(partition, key):
                batch = rocksdict.WriteBatch(raw_mode=True)
                batch.delete(key)
                self._write(partition, batch, self._counts.get(partition, 0) - 1)

    def _write(self, partition: int, batch: Any, count: int, offset: int | None = None
               ) -> None:
        """``batch`` into ``partition``'s database with its new key count (and changelog
        offset) in the same atomic write: what a database holds, counts and has applied never
        disagree on disk; the in-memory figures follow."""
        if offset is not None:
            batch.put(self.offset_key, str(offset).encode())
        batch.put(COUNT_KEY, str(count).encode())
        self._dbs[partition].write(batch)
        self._counts[partition] = count
        if offset is not None:
            self._offsets[partition] = offset

    def _iteritems(self) -> Iterator[tuple[bytes, bytes]]:
        pending = dict(self._unacked)
        for key, value in super()._iteritems():
            yield key, pending.pop(key, value)
        yield from pending.items()

    def _visible_items(self, db: Any) -> Iterator[tuple[bytes, bytes]]:
        """faust's, without the key count, and stopping the worker at a corrupt block
        (rocksdict's ``items()`` stops there silently)."""
        partition = next(p for p, open_db in self._dbs.items() if open_db is db)
        try:
            for key, value in entries(db):
                if key != self.offset_key and key != COUNT_KEY:
                    yield key, value
        except Exception as exc:
            self._read_failed(partition, exc)

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
            n += partition in actives and db is not None and self._absent(partition, key)
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
            self._db_for_partition(partition)  # opened if it is not yet
            wb = batches.setdefault(partition, rocksdict.WriteBatch(raw_mode=True))
            offsets[partition] = max(msg.offset, offsets.get(partition, -1))
            existed = present[where] if where in present else not self._absent(partition,
                                                                               msg.key)
            present[where] = msg.value is not None
            self._counts[partition] = self._counts.get(partition, 0) + (
                present[where] - existed)
            if msg.value is None:
                wb.delete(msg.key)
            else:
                wb.put(msg.key, msg.value)
        for partition, wb in batches.items():
            self._write(partition, wb, self._counts[partition], offsets[partition])

    def set_persisted_offset(self, tp: Any, offset: int) -> None:
        super().set_persisted_offset(tp, offset)
        self._offsets[tp.partition] = offset

    # -- opening, checking, discarding -----------------------------------------------------------

    def _open_for_partition(self, partition: int) -> Any:
        path = self.partition_path(partition)
        if log_to_replay(path):  # after a crash: every partition's probe starts now, at once
            n = self.table.changelog_topic.partitions or self.app.conf.topic_partitions
            self.probes.start(self.partition_path(p) for p in range(n) if p not in self._dbs)
            problem = self.probes.result(path)
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
            count, offset = self._read_counts(db)
        except Exception as exc:
            db.close()
            return self._rebuild(partition, "unreadable", f"does not read back: {exc}")
        self._counts[partition], self._offsets[partition] = count, offset
        return db

    def _read_counts(self, db: Any) -> tuple[int, int | None]:
        """(keys, persisted offset) of ``db``: two reads, or the whole database once where it
        has no key count (written before one was kept), which is then written."""
        raw_offset, raw_count = db.get(self.offset_key), db.get(COUNT_KEY)
        offset = None if raw_offset is None else int(raw_offset)
        if raw_count is not None:
            return int(raw_count), offset
        count = self._read_whole(db) - (raw_offset is not None)
        db.put(COUNT_KEY, str(count).encode())
        return count, offset

    def _read_whole(self, db: Any) -> int:
        """Keys in ``db``, reading every block once (raises at a corrupt block)."""
        scan = rocksdict.ReadOptions()
        scan.fill_cache(False)  # type: ignore[call-arg]  # the stub lacks its argument
        # (a one-off pass: the cache keeps what reads need, index blocks first)
        scan.set_readahead_size(2 << 20)
        return sum(1 for _ in entries(db, scan, values=False))

    def _rebuild(self, partition: int, reason: str, detail: str) -> Any:
        """Delete ``partition``'s database and open an empty one: recovery fills it."""
        self._delete_files(partition, reason, detail)
        db = super()._open_for_partition(partition)
        self._counts[partition], self._offsets[partition] = 0, None
        return db

    def _read_failed(self, partition: int, exc: Exception) -> NoReturn:
        """A read of ``partition``'s database raised ``exc``: a corrupt block met stops the
        worker (:meth:`_corrupt`); anything else is raised as it is."""
        if not is_corruption(exc):
            raise exc
        self._corrupt(partition, f"does not read back: {exc}")

    def _corrupt(self, partition: int, detail: str) -> NoReturn:
        """Delete ``partition``'s database, then stop the worker (:attr:`on_corrupt`): serving
        on without the partition would serve empty states for its users."""
        self._close(partition)
        self._delete_files(partition, "unreadable", detail)
        self._counts.pop(partition, None)
        self._offsets.pop(partition, None)
        self.on_corrupt(f"{self.table_name} partition {partition} {detail[:300]}")
        raise CorruptStateError(detail)

    def discard(self, partition: int, reason: str, detail: str) -> None:
        """Throw away ``partition``'s local state (open or not) before recovery reads from it."""
        self._close(partition)
        self._dbs[partition] = self._rebuild(partition, reason, detail)

    def _close(self, partition: int) -> None:
        db = self._dbs.pop(partition, None)
        if db is not None:
            db.close()

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
        self.probes.stop()
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

    def _read(self, partition: int, key: bytes) -> bytes | None:
        """``key``'s value in ``partition``'s database (bloom filter first), or None."""
        db = self._dbs[partition]
        try:
            value: bytes | None = db.get(key) if db.key_may_exist(key) else None
        except Exception as exc:
            self._read_failed(partition, exc)
        return value

    def _absent(self, partition: int, key: bytes) -> bool:
        return self._read(partition, key) is None
