"""Which fetched offsets of the guarded topics were processed: what may be committed, what a handler
may apply next, and which message faust dropped on its way (see ``streams.runtime.faust_patches``
item 1 for why faust's own ack arithmetic is not used).

Every record the broker returns is *pending* until a handler admits it (``admit``: in partition
order, none after a missing one) and then *in flight* until its list is written (``mark``). A
partition is committable up to its first offset that is pending, in flight, or never fetched since
the last seek to the committed offset.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from faust.types import TP, EventT

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

    def summary(self) -> str:
        """This bookkeeping in a few words (for the log line of a re-read)."""
        return (f"fetched up to {self.high}, all fetched below {self.contiguous}, "
                f"{len(self.pending)} pending from {min(self.pending, default=None)}, "
                f"{len(self.inflight)} in flight")

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
        self.done_at: dict[str, float] = {}  # topic -> when a message was last admitted/processed
        # handlers waiting for the model stage (backpressure): the stream idles, drops nothing
        self.stalled = 0
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
        now = time.monotonic()
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
            self.done_at[tp.topic] = now
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
        if self.stalled or now - fetch.at < RESEEK_AFTER_S:  # may still be on its way, unless
            return None  # the stream idles (and not because it waits for the model stage)
        return offset if now - self.done_at.get(tp.topic, 0.0) >= IDLE_S else None

    def resume(self) -> None:
        """A handler stopped waiting for the model stage: the stream counts as busy now."""
        now = time.monotonic()
        self.stalled = max(0, self.stalled - 1)
        self.done_at = dict.fromkeys(self.topics, now)

    def rearm(self, tp: TP, now: float) -> None:
        """After a seek: give the re-read messages time to arrive before seeking again."""
        part = self.parts.get(tp)
        if part is not None:
            part.hole, part.awaiting = None, Fetch(self.seq, now)
            part.pending = {o: Fetch(f.seq, now) for o, f in part.pending.items()}
            part.since = Fetch(part.since.seq, now)
            part.reseeked = part.contiguous is not None and part.high >= part.contiguous
