"""Two corrections to faust-streaming 0.15, applied when a worker builds its app.

1. **Skipped messages must not be committed.** During a rebalance or a shutdown faust skips
   messages that reach a stream while flow control is suspended (or that were fetched in an older
   consumer generation), and *acks* them "so that the lag does not grow". An acked offset becomes
   committable, so a skipped message could be committed without ever being processed: it is
   lost if its partition then moves to another worker, or the worker stops. Seen here as one lost
   event in some scale-out and SIGTERM runs. :func:`guard_acks` makes the consumer record an
   ack on a guarded topic only for messages the handlers marked as processed; a skipped message
   stays uncommitted, and so does everything after it in its partition until it has been
   processed (faust would otherwise commit past it when the partition has no commit yet, e.g.
   a skipped offset 0). faust does not always fetch such a message again within the same
   assignment, so the worker's timer seeks the partition back to it (:func:`reseek_skipped`);
   the dedup window absorbs what is fetched twice.
2. **Fetch wait.** faust hard-codes ``fetch_max_wait_ms=1500``. Kafka answers a fetch as soon as
   data arrives, but Tansu holds it for the full wait (~0.4 s added median latency);
   :func:`set_fetch_max_wait` makes it configurable.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from faust.transport import consumer as consumer_mod
from faust.transport.drivers import aiokafka as driver
from faust.types import TP

log = logging.getLogger(__name__)

RESEEK_AFTER_S = 3.0


class ProcessedOffsets:
    """(partition, offset) pairs of guarded topics that a handler finished with."""

    def __init__(self, topics: Iterable[str]) -> None:
        self.topics = frozenset(topics)
        self.done: set[tuple[TP, int]] = set()
        self.skipped: dict[TP, dict[int, float]] = {}  # offset -> when its ack was refused
        self.refused = 0  # acks refused: messages faust skipped without processing

    def mark(self, tp: TP, offset: int) -> None:
        self.done.add((tp, offset))
        pending = self.skipped.get(tp)
        if pending is not None:
            pending.pop(offset, None)
            if not pending:
                del self.skipped[tp]

    def refuse(self, tp: TP, offset: int) -> None:
        self.refused += 1
        self.skipped.setdefault(tp, {}).setdefault(offset, time.monotonic())


async def reseek_skipped(app: Any, processed: ProcessedOffsets) -> int:
    """Seek partitions back to messages faust skipped and has not delivered again since."""
    if app.rebalancing or not app.flow_control.is_active() or app.consumer is None:
        return 0
    assigned = app.consumer.assignment()
    now, seeks = time.monotonic(), 0
    for tp, pending in list(processed.skipped.items()):
        if tp not in assigned:  # the partition moved: its new owner starts at the commit
            del processed.skipped[tp]
            continue
        if now - min(pending.values()) < RESEEK_AFTER_S:
            continue
        offset = min(pending)
        log.warning("re-reading %s from offset %d: faust skipped %d message(s) there",
                    tp, offset, len(pending))
        await app.consumer.seek(tp, offset)
        processed.skipped[tp] = dict.fromkeys(pending, now)
        seeks += 1
    return seeks


def guard_acks(processed: ProcessedOffsets) -> None:
    cls = consumer_mod.Consumer
    original = getattr(cls, "_sidstream_original_ack", cls.ack)

    def ack(self: Any, message: Any) -> bool:
        if message.topic in processed.topics:
            key = (message.tp, message.offset)
            if key not in processed.done:
                # faust skipped it: let faust forget the message (so shutdown does not wait
                # for it) without recording its offset as committable
                processed.refuse(message.tp, message.offset)
                message.acked = True
                self._unacked_messages.discard(message)
                return False
            processed.done.discard(key)
        return bool(original(self, message))

    original_new_offset = getattr(cls, "_sidstream_original_new_offset", cls._new_offset)

    def new_offset(self: Any, tp: TP) -> int | None:
        # faust commits the first run of consecutive acked offsets, and before a partition's
        # first commit it does not check that the run starts at the skipped message: hold the
        # partition's commits until its skipped messages are processed.
        if processed.skipped.get(tp):
            return None
        result: int | None = original_new_offset(self, tp)
        return result

    cls._sidstream_original_ack = original  # type: ignore[attr-defined]
    cls.ack = ack  # type: ignore[method-assign]
    cls._sidstream_original_new_offset = original_new_offset  # type: ignore[attr-defined]
    cls._new_offset = new_offset  # type: ignore[method-assign]


def set_fetch_max_wait(ms: int) -> None:
    cls = driver.AIOKafkaConsumerThread
    original = getattr(cls, "_sidstream_original_create", cls._create_worker_consumer)

    def create(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        consumer._fetch_max_wait_ms = ms  # read by AIOKafkaConsumer.start()
        return consumer

    cls._sidstream_original_create = original  # type: ignore[attr-defined]
    cls._create_worker_consumer = create  # type: ignore[method-assign]
