"""Three corrections to faust-streaming 0.15, applied when a worker builds its app.

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
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from faust.transport import consumer as consumer_mod
from faust.transport import producer as producer_mod
from faust.transport.drivers import aiokafka as driver
from faust.types import TP, EventT
from faust.types.tuples import ack_lock
from mode.utils.futures import notify

log = logging.getLogger(__name__)

RESEEK_AFTER_S = 3.0  # a pending message this old, with its stream idle for IDLE_S, was dropped
IDLE_S = 2.0


@dataclass
class Fetch:
    seq: int  # which fetch returned it: streams see one fetch's records before the next's
    at: float  # when (monotonic)


@dataclass
class Partition:
    """What was fetched from one partition since its last seek to the committed offset."""

    pending: dict[int, Fetch] = field(default_factory=dict)  # fetched, not admitted
    inflight: set[int] = field(default_factory=set)  # admitted, not processed (lists pending)
    contiguous: int | None = None  # every offset from the commit up to here was fetched
    since: Fetch = field(default_factory=lambda: Fetch(0, time.monotonic()))  # of contiguous
    high: int = -1  # highest offset fetched
    reseeked: bool = False  # seeked back to ``contiguous``, next fetch not seen yet
    hole: int | None = None  # a message here was dropped: read again from it
    awaiting: Fetch | None = None  # seeked back at this time, the re-read not fetched yet

    def next_pending(self, offset: int) -> int | None:
        """The pending offset after ``offset`` that must be applied next (None: none, or one
        beyond offsets never fetched, which sets ``hole``)."""
        nxt = offset + 1
        if nxt not in self.pending:
            later = [o for o in self.pending if o > offset]
            if not later:
                return None
            nxt = min(later)
        if self.contiguous is not None and nxt >= self.contiguous:
            self.hole = self.contiguous
            return None
        return nxt

    def blocker(self) -> tuple[int, Fetch] | None:
        """The first offset holding the commit back: pending, or never fetched."""
        first = min(self.pending) if self.pending else None
        hole = self.contiguous if self.contiguous is not None and self.high >= self.contiguous \
            else None
        if hole is not None and (first is None or hole < first):
            return hole, self.since
        return None if first is None else (first, self.pending[first])


class ProcessedOffsets:
    """Per partition of the guarded topics: offsets fetched and not yet processed."""

    def __init__(self, topics: Iterable[str]) -> None:
        self.topics = frozenset(topics)
        self.parts: dict[TP, Partition] = {}
        self.settling = False  # assigned, not yet seeked to the committed offsets: no commits
        self.seq = 0
        self.done_at: dict[str, float] = {}  # topic -> when a message was last processed
        self.refused = 0  # messages found dropped by faust and read again

    def fetched(self, records: Mapping[Any, Sequence[Any]]) -> None:
        """Record what the broker returned (``records``: partition -> records with ``offset``)."""
        self.seq += 1
        fetch = Fetch(self.seq, time.monotonic())
        for key, recs in records.items():
            if key.topic not in self.topics or not recs:
                continue
            part = self.parts.setdefault(TP(key.topic, key.partition), Partition())
            for rec in recs:
                part.pending[rec.offset] = fetch
            first, last = recs[0].offset, recs[-1].offset
            part.awaiting = None
            # after a seek back to the hole, a fetch starting further on means the log has
            # nothing in between (retention removed it)
            if part.contiguous is None or first <= part.contiguous < last + 1 or (
                    part.reseeked and first > part.contiguous):
                part.contiguous, part.since = last + 1, fetch
            part.reseeked = False
            part.high = max(part.high, last)

    def admit(self, events: Sequence[EventT]) -> list[EventT]:
        """The events a handler may apply, in order: each the first unprocessed offset of its
        partition. One behind a dropped message waits (and its partition is read again from
        the dropped one), so users see their events in order; one fetched before the last seek
        to the committed offset is skipped (it is read again), and so is a second copy."""
        if self.settling:
            return [ev for ev in events if ev.message.topic not in self.topics]
        cursor: dict[TP, int | None] = {}
        out = []
        for ev in events:
            tp, offset = ev.message.tp, ev.message.offset
            part = self.parts.get(tp)
            if tp.topic not in self.topics:
                out.append(ev)
                continue
            if part is None or offset not in part.pending:
                continue
            if tp not in cursor:
                blocker = part.blocker()
                cursor[tp] = blocker[0] if blocker and blocker[0] in part.pending else None
                if blocker and cursor[tp] is None:  # offsets never fetched come first
                    part.hole = blocker[0]
            at = cursor[tp]
            if at is None or offset < at:
                continue
            if offset > at:  # ``at`` was dropped on its way here (or a seek back to it is on)
                part.hole = at if part.awaiting is None else None
                cursor[tp] = None
                continue
            out.append(ev)
            part.inflight.add(offset)  # admitted: the next one may follow before it is done
            del part.pending[offset]
            cursor[tp] = part.next_pending(at)
        return out

    def mark(self, tp: TP, offset: int) -> None:
        self.done_at[tp.topic] = time.monotonic()
        part = self.parts.get(tp)
        if part is not None:
            part.pending.pop(offset, None)
            part.inflight.discard(offset)

    def committable(self, tp: TP, committed: int | None = None) -> int | None:
        """The offset to commit: every offset below it was fetched and processed."""
        part = self.parts.get(tp)
        if self.settling or part is None:
            return None
        if committed is not None:  # someone processed and committed those
            for offset in [o for o in part.pending if o < committed]:
                del part.pending[offset]
        blocker = part.blocker()
        at = part.contiguous if blocker is None else blocker[0]
        if part.inflight:  # admitted, their lists not written yet
            first = min(part.inflight)
            at = first if at is None else min(at, first)
        return at

    def partitions(self) -> set[TP]:
        return set(self.parts)

    def reset(self, base: Mapping[TP, int | None] | None = None) -> None:
        """After a new assignment (``base`` None): forget everything fetched. After faust's
        seek to the committed offsets ``base``: keep only what was fetched since the
        assignment from there on (it is in a queue already, or read again). A partition without
        a commit is not seeked: what was fetched since the assignment is where it starts."""
        old, self.parts = self.parts, {}
        for tp, offset in (base or {}).items():
            if tp.topic not in self.topics:
                continue
            kept = old[tp].pending if tp in old else {}
            start = offset if offset is not None else min(kept, default=None)
            part = self.parts[tp] = Partition(contiguous=start)
            for o in sorted(o for o in kept if start is None or o >= start):
                part.pending[o] = kept[o]
                part.high = o
                if o == part.contiguous:
                    part.contiguous = o + 1

    def forget(self, tp: TP) -> None:
        self.parts.pop(tp, None)

    def dropped(self, tp: TP, now: float) -> int | None:
        """The offset holding ``tp``'s commit back if faust dropped that message, else None."""
        part = self.parts.get(tp)
        blocker = part.blocker() if part else None
        if blocker is None:
            return None
        offset, fetch = blocker
        assert part is not None
        if part.awaiting is not None:  # seeked back: wait for the re-read
            return offset if now - part.awaiting.at >= RESEEK_AFTER_S else None
        if part.hole is not None:
            return part.hole
        if now - fetch.at < RESEEK_AFTER_S:  # may still be on its way, unless the stream idles
            return None
        return offset if now - self.done_at.get(tp.topic, 0.0) >= IDLE_S else None

    def rearm(self, tp: TP, now: float) -> None:
        """After a seek: give the re-read messages time to arrive before seeking again."""
        part = self.parts.get(tp)
        if part is not None:
            part.hole, part.awaiting = None, Fetch(self.seq, now)
            part.pending = {o: Fetch(f.seq, now) for o, f in part.pending.items()}
            part.since = Fetch(part.since.seq, now)
            part.reseeked = part.contiguous is not None and part.high >= part.contiguous


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
        log.warning("re-reading %s from offset %d: not processed %.1f s after its fetch (%s)",
                    tp, offset, RESEEK_AFTER_S, stage)
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
