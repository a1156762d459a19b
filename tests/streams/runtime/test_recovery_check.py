"""Local state ahead of its changelog is discarded before faust's recovery reads from it (the
worker-level case, a broker that lost its log, is in ``test_worker_disk_store.py``)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest
from faust.types import TP

from streams.runtime.recovery_check import ahead_of_changelog, check_local_state
from tests.fixtures.disk_worker import Worker


@pytest.mark.parametrize(("persisted", "end", "ahead"), [
    (None, 0, False),  # nothing on disk
    (4, 5, False),  # holds every record: nothing to read
    (2, 5, False),  # holds a prefix: reads the tail
    (4, 4, True),  # holds a record the changelog never had
    (7, 0, True),  # the changelog is new (a broker that lost its log)
    (3, None, False),  # end unknown: faust's own check decides
])
def test_only_an_offset_past_the_changelog_end_counts_as_ahead(
        persisted: int | None, end: int | None, ahead: bool) -> None:
    assert ahead_of_changelog(persisted, end) is ahead


class Ends:
    """The one consumer call the check makes: end offsets, as faust's consumer returns them."""

    def __init__(self, ends: dict[TP, int]) -> None:
        self.ends = ends

    async def highwaters(self, *tps: TP) -> dict[TP, int]:
        return {tp: self.ends[tp] for tp in tps}


def test_a_partition_ahead_is_discarded_and_read_from_the_start(tmp_path: Path) -> None:
    worker = Worker(tmp_path)
    try:
        tps = [TP(worker.topic, p) for p in range(3)]
        for p, offset in enumerate((4, 9, 0)):
            worker.store._db_for_partition(p)
            worker.ack(p, offset, f"u{p}", p)
        recovery = SimpleNamespace(tp_to_table=dict.fromkeys(tps, worker.table))
        offsets: dict[TP, int | None] = {tp: worker.persisted(tp.partition) for tp in tps}
        ends = Ends({tps[0]: 5, tps[1]: 3, tps[2]: 1})
        gone = asyncio.run(check_local_state(recovery, ends, set(tps), offsets))
        assert gone == [tps[1]]
        assert offsets == {tps[0]: 4, tps[1]: None, tps[2]: 0}
        assert worker.table.get("u1") is None and worker.persisted(1) is None
        assert worker.table.get("u0") == 0 and worker.table.get("u2") == 2
        assert worker.discarded("ahead_of_changelog") == 1
    finally:
        worker.close()
