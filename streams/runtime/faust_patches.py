"""Four corrections to faust-streaming 0.15, applied when a worker builds its app.

1. **Commit only what was processed.** faust computes the offset to commit from the messages
   streams *acked*, and drops messages between the fetch and the stream without acking them in
   several places during a rebalance or a shutdown: ``Consumer.getmany`` stops iterating a fetched
   batch when flow control stops or the generation changes (the consumer's position is already
   past the rest), the drain loop cancels the delivery of the message it is handing over when
   flow stops, channel queues are cleared on revoke, and streams skip (and ack) messages of an
   older generation. Its commit arithmetic then walks past such a hole: ``_new_offset`` checks
   the head of the acked run with ``min(acked) - committed > 1`` although ``committed`` is the
   next offset to read (so a single missing message at the head passes), does not check at all
   while a partition has no commit yet, and fills every jump in read offsets as if acked
   (``_add_gap``): the message is committed without ever being processed.

   :func:`guard_acks` replaces that arithmetic for the guarded topics with
   :class:`ProcessedOffsets`: every record the broker returns is *pending* until a handler
   marks it processed, and a partition is committed only up to its first offset that is pending
   or was never fetched since faust's last seek to the committed offset, wherever faust dropped
   it. Nothing is committed, or applied, between a new assignment and that seek (a message
   applied then may be overwritten by the table's recovery; it is read again after the seek).
   Handlers apply a message only when every message fetched before it in its partition was
   applied (:meth:`ProcessedOffsets.admit`): a message behind a dropped one waits, and the
   worker's timer seeks the partition back to the dropped one (:func:`reseek_skipped`) at
   once, or after a few seconds if it was the last one and its stream is idle. Users see their
   events in order, and the dedup window absorbs what is read twice.
2. **Flush means flushed.** The consumer flushes the producer before it commits, but faust's
   ``ProducerBuffer.flush`` gives up after 0.1 s without a send, with changelog records still
   queued: :func:`drain_producer_buffer` makes it wait for them, so committed offsets never
   run ahead of the state they produced.
3. **Fetch wait.** faust hard-codes ``fetch_max_wait_ms=1500``. Kafka answers a fetch as soon as
   data arrives, but Tansu holds it for the full wait (~0.4 s added median latency);
   :func:`set_fetch_max_wait` makes it configurable.
4. **No idle second at start.** faust's table manager sleeps one second before it registers
   the tables' changelogs, in case more tables are added late; the worker adds its one table
   when it builds the app, so :class:`EagerTableManager` goes on at once (every start and
   restart is a second shorter; a table added later fails with faust's own error).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from typing import Any

from faust.tables import TableManager
from faust.transport import consumer as consumer_mod
from faust.transport import producer as producer_mod
from faust.transport.drivers import aiokafka as driver
from faust.types import TP
from faust.types.tuples import ack_lock
from mode.utils.futures import notify

from streams.runtime.offsets import RESEEK_AFTER_S, ProcessedOffsets

log = logging.getLogger(__name__)

async def reseek_skipped(app: Any, processed: ProcessedOffsets) -> int:
    """Seek partitions back to messages faust dropped and has not delivered again since."""
    if app.rebalancing or not app.flow_control.is_active() or app.consumer is None:
        return 0
    consumer = app.consumer
    assigned = consumer.assignment()
    now, seeks = time.monotonic(), 0
    for tp in list(processed.partitions()):
        if tp not in assigned:  # the partition moved: its new owner starts at the commit
            processed.forget(tp)
            continue
        offset = processed.dropped(tp, now)
        if offset is None:
            continue
        stage = where_dropped(consumer, tp, offset)
        part = processed.parts[tp]
        log.warning("re-reading %s from offset %d: not processed %.1f s after its fetch (%s; %s; "
                    "last commit %s)", tp, offset, RESEEK_AFTER_S, stage, part.summary(),
                    consumer._committed_offset.get(tp))
        await consumer.seek(tp, offset)
        processed.refused += 1
        processed.rearm(tp, now)
        seeks += 1
    return seeks


def where_dropped(consumer: Any, tp: TP, offset: int) -> str:
    """Which of faust's stages lost the message (for the log line)."""
    for message in list(getattr(consumer, "_unacked_messages", ())):
        if message.tp == tp and message.offset == offset:
            return "still unacked in a stream"
    read = getattr(consumer, "_read_offset", {}).get(tp)
    if read is not None and read >= offset:
        return f"handed to faust's conductor (read offset {read}), never processed"
    return f"never handed to a stream (read offset {read})"


def guard_acks(processed: ProcessedOffsets) -> None:
    """Commit guarded topics from :class:`ProcessedOffsets` instead of faust's acks."""
    cls = consumer_mod.Consumer
    originals = {name: getattr(cls, f"_sidstream_original{name}", getattr(cls, name))
                 for name in ("ack", "_new_offset", "_filter_tps_with_pending_acks",
                              "on_partitions_assigned", "perform_seek")}
    original_ack, original_new_offset = originals["ack"], originals["_new_offset"]
    original_filter = originals["_filter_tps_with_pending_acks"]
    original_assigned = originals["on_partitions_assigned"]
    original_seek = originals["perform_seek"]

    def ack(self: Any, message: Any) -> bool:
        if message.topic not in processed.topics:
            return bool(original_ack(self, message))
        with ack_lock:  # the stream is done with it; whether it counts is ProcessedOffsets'
            if message.acked:
                return False
            message.acked = True
            self._unacked_messages.discard(message)
            notify(self._waiting_for_ack)
            return True

    def new_offset(self: Any, tp: TP) -> int | None:
        if tp.topic not in processed.topics:
            result: int | None = original_new_offset(self, tp)
            return result
        self._gap.pop(tp, None)  # faust's gap filling would count unprocessed offsets
        return processed.committable(tp, self._committed_offset.get(tp))

    def pending_tps(self: Any, topics: Any = None) -> Iterator[TP]:
        tps = set(original_filter(self, topics))
        tps.update(tp for tp in processed.partitions()
                   if topics is None or tp in topics or tp.topic in topics)
        return iter(tps)

    async def on_partitions_assigned(self: Any, assigned: set[TP], generation_id: int = 0
                                     ) -> None:
        # messages processed before the seek below may be overwritten by the table's recovery
        processed.reset()
        processed.settling = True
        await original_assigned(self, assigned, generation_id)

    async def perform_seek(self: Any) -> None:
        """faust seeks to the committed offsets after a rebalance: everything from there on
        is read again, and must be processed again before it may be committed."""
        await original_seek(self)
        processed.reset(committed_offsets(self, processed.topics))
        processed.settling = False

    patched = {"ack": ack, "_new_offset": new_offset,
               "_filter_tps_with_pending_acks": pending_tps,
               "on_partitions_assigned": on_partitions_assigned, "perform_seek": perform_seek}
    for name, original in originals.items():
        setattr(cls, f"_sidstream_original{name}", original)
        setattr(cls, name, patched[name])
    record_fetches(processed)
    drain_producer_buffer()


def committed_offsets(consumer: Any, topics: frozenset[str]) -> dict[TP, int | None]:
    """Where faust's seek left each assigned partition of ``topics`` (None: no commit yet)."""
    return {tp: consumer._committed_offset.get(tp) for tp in consumer.assignment()
            if tp.topic in topics}


def record_fetches(processed: ProcessedOffsets) -> None:
    """Every record the broker returns to faust is pending until a handler processed it."""
    cls = consumer_mod.ThreadDelegateConsumer
    original = getattr(cls, "_sidstream_original_getmany", cls._getmany)

    async def getmany(self: Any, active_partitions: set[TP] | None, timeout: float) -> Any:
        records = await original(self, active_partitions, timeout)
        if records:
            processed.fetched(records)
        return records

    cls._sidstream_original_getmany = original  # type: ignore[attr-defined]
    cls._getmany = getmany  # type: ignore[method-assign]


def drain_producer_buffer() -> None:
    """Make ``ProducerBuffer.flush`` wait until the records buffered before it are handed to
    the client (faust's gives up after 0.1 s without a send, records still queued: the consumer
    flushed before a commit, so the commit could run ahead of the changelog)."""
    cls = producer_mod.ProducerBuffer
    originals = {name: getattr(cls, f"_sidstream_original_{name}", getattr(cls, name))
                 for name in ("put", "_send_pending", "flush")}

    def put(self: Any, fut: Any) -> None:
        self._sidstream_put = getattr(self, "_sidstream_put", 0) + 1
        originals["put"](self, fut)

    async def send_pending(self: Any, fut: Any) -> None:
        try:
            await originals["_send_pending"](self, fut)
        finally:  # the queue is FIFO: everything put before it has been handed over too
            self._sidstream_sent = getattr(self, "_sidstream_sent", 0) + 1

    async def flush(self: Any) -> None:
        target = getattr(self, "_sidstream_put", 0)  # later records are a later commit's
        while getattr(self, "_sidstream_sent", 0) < target:
            if self.should_stop or self.app is None or self.app.conf.producer_threaded:
                await originals["flush"](self)  # no sender task left (or not ours to count)
                return
            await asyncio.sleep(0.002)

    for name, patched in (("put", put), ("_send_pending", send_pending), ("flush", flush)):
        setattr(cls, f"_sidstream_original_{name}", originals[name])
        setattr(cls, name, patched)


def set_fetch_max_wait(ms: int) -> None:
    cls = driver.AIOKafkaConsumerThread
    original = getattr(cls, "_sidstream_original_create", cls._create_worker_consumer)

    def create(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        consumer._fetch_max_wait_ms = ms  # read by AIOKafkaConsumer.start()
        return consumer

    cls._sidstream_original_create = original  # type: ignore[attr-defined]
    cls._create_worker_consumer = create  # type: ignore[method-assign]


class EagerTableManager(TableManager):
    """faust's table manager without the second it sleeps at start (faust's ``on_start``
    less its ``await self.sleep(1.0)``)."""

    async def on_start(self) -> None:
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()
