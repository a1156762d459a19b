"""Local table state that is ahead of its changelog is discarded before faust recovers from it.

A partition's database records the offset of the last changelog record it holds. If the
changelog now ends before that offset, the database is not a prefix of this changelog: the
broker lost its log (the embedded Tansu keeps it in memory), or the topic was recreated. faust
would raise ``ConsistencyError`` (its ``recovery_consistency_check``) and stop, or, with the
check off, serve the old states and skip the new records up to the old offset. Here such a
database is deleted, counted in ``sidstream_state_discarded_total{reason="ahead_of_changelog"}``
and rebuilt from the changelog like a wiped disk.

:func:`check_local_state` runs inside faust's recovery task, just before it turns the persisted
offsets into the offsets it reads from (``Recovery._build_offsets``, active partitions and
standby replicas alike); the end offsets come from the same consumer the recovery then asks.
"""

from __future__ import annotations

import logging
from typing import Any

from faust.tables import recovery as recovery_mod
from faust.types import TP

from streams.runtime.disk_store import DiskStore

log = logging.getLogger(__name__)


def ahead_of_changelog(persisted: int | None, end: int | None) -> bool:
    """``persisted``: offset of the last record applied; ``end``: the next offset the
    changelog will write (Kafka's end offset; exact on Tansu with single-record batches)."""
    return persisted is not None and persisted >= 0 and end is not None and persisted >= end


async def check_local_state(recovery: Any, consumer: Any, tps: set[TP],
                            offsets: dict[TP, int | None]) -> list[TP]:
    """Discard the disk state of each partition of ``tps`` whose persisted offset (in
    ``offsets``, set from the store by faust) is past its changelog's end; returns them."""
    mine = {tp for tp in tps if isinstance(getattr(recovery.tp_to_table.get(tp), "data", None),
                                           DiskStore)}
    if not mine:
        return []
    ends = await consumer.highwaters(*mine)
    discarded = []
    for tp in sorted(mine):
        persisted, end = offsets.get(tp), ends.get(tp)
        if ahead_of_changelog(persisted, end):
            store: DiskStore = recovery.tp_to_table[tp].data
            store.discard(tp.partition, "ahead_of_changelog",
                          f"holds changelog offset {persisted} but {tp.topic} ends at {end}")
            offsets[tp] = None
            discarded.append(tp)
    return discarded


def guard_recovery() -> None:
    """Run :func:`check_local_state` at the start of faust's ``Recovery._build_offsets``."""
    cls = recovery_mod.Recovery
    original = getattr(cls, "_sidstream_original_build_offsets", cls._build_offsets)

    async def build_offsets(self: Any, consumer: Any, tps: set[TP], destination: Any,
                            title: str) -> None:
        await check_local_state(self, consumer, tps, destination)
        await original(self, consumer, tps, destination, title)

    cls._sidstream_original_build_offsets = original  # type: ignore[attr-defined]
    cls._build_offsets = build_offsets  # type: ignore[method-assign]
