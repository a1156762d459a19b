"""The faust patches: faust's own commit arithmetic, the seek on assignment, the buffer flush."""


from __future__ import annotations

import asyncio
from collections import defaultdict
from types import SimpleNamespace
from typing import Any

from faust.transport import consumer as consumer_mod
from faust.transport import producer as producer_mod
from intervaltree import IntervalTree

from streams.runtime import faust_patches
from streams.runtime.offsets import ProcessedOffsets
from tests.fixtures.offsets import TP0, T, admitted, ev, fetch


class SlowChannel:
    def __init__(self) -> None:
        self.sent = 0

    async def publish_message(self, fut: Any, wait: bool = False) -> None:
        await asyncio.sleep(0.15)  # a busy loop or a slow broker
        self.sent += 1


def _buffer_with(n: int, channel: SlowChannel) -> Any:
    buf: Any = producer_mod.ProducerBuffer()
    buf.app = SimpleNamespace(conf=SimpleNamespace(producer_threaded=False))
    buf._started.set()  # "running", without faust's own sender task
    for _ in range(n):
        buf.put(SimpleNamespace(message=SimpleNamespace(channel=channel)))
    return buf


async def _sender(buf: Any) -> None:
    while True:
        msg = await buf.pending.get()
        await buf._send_pending(msg)
        buf.message_sent.set()


def test_fausts_own_arithmetic_commits_past_a_message_it_dropped() -> None:
    """Why the guard exists: with offset 10 the next to read and 10 itself never acked (dropped
    between fetch and stream), faust commits 13."""
    cls = consumer_mod.Consumer
    new_offset: Any = getattr(cls, "_sidstream_original_new_offset", cls._new_offset)
    fake = SimpleNamespace(_acked={TP0: [11, 12]}, _gap=defaultdict(IntervalTree),
                           _committed_offset={TP0: 10}, _acked_index=defaultdict(set))
    assert new_offset(fake, TP0) == 13
    fake = SimpleNamespace(_acked={TP0: [1, 2]}, _gap=defaultdict(IntervalTree),
                           _committed_offset={TP0: None}, _acked_index=defaultdict(set))
    assert new_offset(fake, TP0) == 3  # no commit yet: offset 0 is not checked at all


def test_what_was_fetched_since_the_assignment_survives_the_seek() -> None:
    """A fresh worker's flow is never stopped: it fetches 3-5 before faust's seek to the commit
    (3); those copies are applied, not skipped (and read again)."""
    p = ProcessedOffsets([T])
    p.reset()
    fetch(p, TP0, 3, 4, 5)
    p.reset({TP0: 3})
    assert admitted(p, ev(TP0, 3), ev(TP0, 4), ev(TP0, 5)) == [3, 4, 5]
    for o in (3, 4, 5):
        p.mark(TP0, o)
    assert p.committable(TP0) == 6


def test_fausts_buffer_flush_returns_with_changelog_records_still_queued() -> None:
    """Why ``drain_producer_buffer`` exists: faust's flush gives up after 0.1 s without a send."""
    cls = producer_mod.ProducerBuffer
    flush: Any = getattr(cls, "_sidstream_original_flush", cls.flush)

    async def main() -> int:
        channel = SlowChannel()
        buf = _buffer_with(3, channel)
        sender = asyncio.ensure_future(_sender(buf))
        await flush(buf)
        sender.cancel()
        return channel.sent

    assert asyncio.run(main()) < 3


def test_patched_flush_waits_until_every_record_is_handed_over() -> None:
    faust_patches.drain_producer_buffer()

    async def main() -> int:
        channel = SlowChannel()
        buf = _buffer_with(3, channel)
        sender = asyncio.ensure_future(_sender(buf))
        await asyncio.wait_for(buf.flush(), timeout=10)
        sender.cancel()
        return channel.sent

    assert asyncio.run(main()) == 3


def test_a_partition_without_a_commit_starts_at_what_was_fetched_since_the_assignment() -> None:
    """faust does not seek a partition without a commit: records fetched (and skipped) while
    settling stay pending, so nothing after them is applied or committed before them."""
    p = ProcessedOffsets([T])
    p.reset()
    p.settling = True
    fetch(p, TP0, 0, 1)
    assert admitted(p, ev(TP0, 0), ev(TP0, 1)) == []
    p.reset({TP0: None})
    p.settling = False
    fetch(p, TP0, 2)
    assert admitted(p, ev(TP0, 2)) == [] and p.committable(TP0) == 0
    assert p.dropped(TP0, 0.0) == 0


def test_the_worker_app_starts_its_tables_without_an_idle_second() -> None:
    """faust's table manager sleeps a second at start before it subscribes: every worker start
    and restart waited for it."""
    from streams.runtime.app import make_faust_app
    from streams.settings import Settings

    tables = make_faust_app(Settings.from_env({})).tables
    assert isinstance(tables, faust_patches.EagerTableManager)
    done: list[str] = []

    async def update_channels() -> None:
        done.append("channels")

    async def start() -> None:
        done.append("recovery")

    tables._update_channels = update_channels  # type: ignore[method-assign]
    tables._recovery = SimpleNamespace(start=start)  # type: ignore[assignment]

    async def timed() -> float:
        t0 = asyncio.get_running_loop().time()
        await tables.on_start()
        return asyncio.get_running_loop().time() - t0

    assert asyncio.run(timed()) < 0.5 and done == ["channels", "recovery"]
