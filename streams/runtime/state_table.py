"""The user-state table: faust's ``Table`` on the store ``SIDSTREAM_STORE`` names.

``memory``: faust's in-memory store, rebuilt from the changelog on every start. ``rocksdb``:
:class:`streams.runtime.disk_store.DiskStore` under ``SIDSTREAM_DATA_DIR``, written when the
broker acknowledges each changelog record (so a restart reads only the changelog tail). Both
count the changelog records they apply (``sidstream_state_restored_records_total``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import faust
from faust.types import EventT
from faust.types.tuples import FutureMessage

from streams.metrics import Metrics
from streams.runtime.disk_options import ROCKSDB_OPTIONS
from streams.runtime.disk_store import DiskStore
from streams.settings import Settings

log = logging.getLogger(__name__)

TABLE_NAME = "user-state"


def store_url(settings: Settings) -> str:
    """faust's store URL for ``SIDSTREAM_STORE`` (the rocksdict driver serves ``rocksdb://``)."""
    return "rocksdb://" if settings.worker.store == "rocksdb" else "memory://"


class UserTable(faust.Table):
    """A table whose disk store is written from acknowledged changelog records."""

    def __init__(self, *args: Any, metrics: Metrics | None = None,
                 memory_bytes: int = 256 << 20, **kwargs: Any) -> None:
        self.metrics = metrics
        self.memory_bytes = memory_bytes  # the disk store's budget (SIDSTREAM_STATE_MEMORY_MB)
        super().__init__(*args, **kwargs)

    def _new_store_by_url(self, url: Any) -> Any:
        if str(url).startswith("rocksdb:"):
            return DiskStore(url, self.app, self, metrics=self.metrics,
                             memory_bytes=self.memory_bytes, table_name=self.name,
                             key_type=self.key_type, key_serializer=self.key_serializer,
                             value_type=self.value_type, value_serializer=self.value_serializer,
                             options=dict(ROCKSDB_OPTIONS, **(self.options or {})))
        return super()._new_store_by_url(url)

    def send_changelog(self, partition: int | None, key: Any, value: Any,
                       key_serializer: Any = None, value_serializer: Any = None
                       ) -> FutureMessage:
        store = self.data
        if not isinstance(store, DiskStore) or partition is None:
            return super().send_changelog(partition, key, value, key_serializer,
                                          value_serializer)
        key_bytes, value_bytes = store._encode_key(key), store._encode_value(value)
        if value_bytes is None:  # a deletion: not something the worker does
            raise TypeError(f"user state {key!r} without a value")
        store.sent(key_bytes, partition)

        def on_sent(fut: FutureMessage) -> None:
            try:
                meta = fut.result()
            except Exception as exc:  # the producer fails the worker; nothing reaches disk
                log.warning("changelog send of a user state failed: %r", exc)
                return
            store.acked(meta.topic_partition.partition, meta.offset, key_bytes, value_bytes)

        return self.changelog_topic.send_soon(
            key=key, value=value, partition=partition,
            key_serializer=key_serializer or self.key_serializer,
            value_serializer=value_serializer or self.value_serializer,
            callback=on_sent, eager_partitioning=True)

    def apply_changelog_batch(self, batch: Iterable[EventT]) -> None:
        records = list(batch)
        super().apply_changelog_batch(records)
        if self.metrics is not None and records:
            self.metrics.state_restored.inc(len(records))


def make_table(app: faust.App, settings: Settings, metrics: Metrics) -> UserTable:
    """The user-state table, registered with ``app`` (keys and values JSON on the changelog)."""
    table = UserTable(app, name=TABLE_NAME, default=None, beacon=app.tables.beacon,
                      partitions=settings.kafka.topic_partitions, metrics=metrics,
                      memory_bytes=settings.worker.state_memory_mb << 20)
    app.tables.add(table)
    return table
