"""The commit guard's arithmetic: only processed prefixes of what was fetched are committable."""


from __future__ import annotations

import pytest
from faust.types import TP

from streams.runtime import offsets
from streams.runtime.offsets import ProcessedOffsets
from tests.fixtures.offsets import TP0, T, admitted, ev, fetch


def test_nothing_fetched_nothing_to_commit() -> None:
    assert ProcessedOffsets([T]).committable(TP0) is None


def test_commit_stops_at_the_first_unprocessed_offset() -> None:
    p = ProcessedOffsets([T])
    fetch(p, TP0, 0, 1, 2, 3)
    for o in (1, 2, 3):  # 0 was dropped by faust: not committable, nor anything after it
        p.mark(TP0, o)
    assert p.committable(TP0) == 0
    p.mark(TP0, 0)
    assert p.committable(TP0) == 4


def test_a_dropped_message_at_the_committed_offset_holds_the_commit() -> None:
    """faust's own check lets exactly this hole through (min(acked) - committed == 1)."""
    p = ProcessedOffsets([T])
    fetch(p, TP0, 10, 11, 12)
    p.mark(TP0, 11)
    p.mark(TP0, 12)
    assert p.committable(TP0, committed=10) == 10


def test_offsets_below_the_group_commit_are_forgotten() -> None:
    p = ProcessedOffsets([T])
    fetch(p, TP0, 5, 6, 7)
    assert p.committable(TP0, committed=7) == 7  # 5 and 6 were committed by another worker
    p.mark(TP0, 7)
    assert p.committable(TP0, committed=7) == 8


def test_other_topics_are_not_tracked() -> None:
    p = ProcessedOffsets([T])
    fetch(p, TP("other", 0), 0, 1)
    assert p.partitions() == set()


def test_reset_forgets_everything_on_a_new_assignment() -> None:
    p = ProcessedOffsets([T])
    fetch(p, TP0, 0, 1)
    p.reset()
    assert p.committable(TP0) is None and not p.partitions()


def test_offsets_never_fetched_since_the_seek_hold_the_commit() -> None:
    """A fetch from before the seek to the commit (10) returns 15-17 first: 10-14 must still be
    read and processed before anything past 10 is committed."""
    p = ProcessedOffsets([T])
    p.reset({TP0: 10})
    fetch(p, TP0, 15, 16, 17)
    for o in (15, 16, 17):
        p.mark(TP0, o)
    assert p.committable(TP0, committed=10) == 10
    fetch(p, TP0, *range(10, 18))
    for o in range(10, 18):
        p.mark(TP0, o)
    assert p.committable(TP0, committed=10) == 18


def test_no_commit_between_assignment_and_the_seek_to_the_commit() -> None:
    p = ProcessedOffsets([T])
    p.reset({TP0: 0})
    p.settling = True
    fetch(p, TP0, 0, 1)
    p.mark(TP0, 0)
    p.mark(TP0, 1)
    assert p.committable(TP0) is None
    p.settling = False
    assert p.committable(TP0) == 2


def test_events_behind_a_dropped_message_wait_and_it_is_read_again() -> None:
    p = ProcessedOffsets([T])
    p.reset({TP0: 0})
    fetch(p, TP0, 0, 1, 2, 3)
    assert admitted(p, ev(TP0, 0), ev(TP0, 2), ev(TP0, 3)) == [0]  # 1 was dropped
    p.mark(TP0, 0)
    assert p.dropped(TP0, 0.0) == 1  # at once: read again from 1
    p.rearm(TP0, 0.0)
    fetch(p, TP0, 1, 2, 3)
    assert admitted(p, ev(TP0, 1), ev(TP0, 2), ev(TP0, 2), ev(TP0, 3)) == [1, 2, 3]


def test_the_next_batch_is_admitted_while_the_last_is_in_the_model_stage() -> None:
    p = ProcessedOffsets([T])
    p.reset({TP0: 0})
    fetch(p, TP0, 0, 1, 2, 3)
    assert admitted(p, ev(TP0, 0), ev(TP0, 1)) == [0, 1]  # batch N: state applied
    assert admitted(p, ev(TP0, 2), ev(TP0, 3)) == [2, 3]  # batch N+1, N's lists not written
    assert admitted(p, ev(TP0, 1)) == []  # a second copy of an admitted one is not
    assert p.dropped(TP0, 1e9) is None  # admitted is not dropped, however long it takes
    assert p.committable(TP0) == 0  # nothing committed before its list is written
    p.mark(TP0, 2)
    p.mark(TP0, 3)  # N+1 finished first (it cannot, but commits must not depend on it)
    assert p.committable(TP0) == 0
    p.mark(TP0, 0)
    p.mark(TP0, 1)
    assert p.committable(TP0) == 4


def test_events_fetched_before_the_assignment_or_applied_while_settling_are_not() -> None:
    p = ProcessedOffsets([T])
    fetch(p, TP0, 5, 6)  # previous generation
    p.reset()
    p.settling = True
    assert admitted(p, ev(TP0, 5), ev(TP0, 6)) == []
    p.reset({TP0: 5})
    p.settling = False
    assert admitted(p, ev(TP0, 5)) == []  # this copy came before the assignment: read again
    fetch(p, TP0, 7, 8)  # a stale fetch: 5 and 6 were not read since the seek
    assert admitted(p, ev(TP0, 7)) == [] and p.dropped(TP0, 0.0) == 5


def test_dropped_when_the_stream_is_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(offsets.time, "monotonic", lambda: now[0])
    p = ProcessedOffsets([T])
    fetch(p, TP0, 0, 1)
    p.mark(TP0, 0)  # the stream is busy with this fetch: 1 may still be on its way
    assert p.dropped(TP0, now[0] + 1.0) is None
    assert p.dropped(TP0, now[0] + offsets.RESEEK_AFTER_S - 0.5) is None
    assert p.dropped(TP0, now[0] + offsets.RESEEK_AFTER_S) == 1  # idle since


def test_not_dropped_while_the_handler_waits_for_the_model_stage(
        monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(offsets.time, "monotonic", lambda: now[0])
    p = ProcessedOffsets([T])
    fetch(p, TP0, 0, 1)
    p.mark(TP0, 0)
    p.stalled = 1  # backpressure: the stream idles because the handler waits
    now[0] += 10 * offsets.RESEEK_AFTER_S
    assert p.dropped(TP0, now[0]) is None
    p.resume()  # the wait is over: the stream gets the usual time to deliver 1
    assert p.dropped(TP0, now[0] + offsets.IDLE_S - 0.5) is None
    assert p.dropped(TP0, now[0] + offsets.IDLE_S) == 1
