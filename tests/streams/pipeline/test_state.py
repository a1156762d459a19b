from __future__ import annotations

import json

from models.data.profile import Profile
from streams.contracts.events import Event
from streams.pipeline.state import StateLimits, UserState, apply_events


def event(i: int, item: object = None, etype: str = "click", eid: str | None = None) -> Event:
    return Event(eid or f"e{i}", 1, item if item is not None else i, etype, 1_000 + i)


def test_sequence_is_appended_and_trimmed() -> None:
    state = UserState(1)
    apply_events(state, [event(i) for i in range(8)], StateLimits(seq_len=5))
    assert [e.item_id for e in state.seq] == [3, 4, 5, 6, 7]
    assert state.n_events == 8 and state.last_ts == 1_007


def test_duplicates_are_not_applied_twice() -> None:
    state = UserState(1)
    limits = StateLimits()
    first = apply_events(state, [event(1), event(2)], limits)
    again = apply_events(state, [event(2), event(3), event(3)], limits)
    assert len(first.applied) == 2
    assert [e.event_id for e in again.applied] == ["e3"]
    assert [e.event_id for e in again.duplicates] == ["e2", "e3"]
    assert [e.item_id for e in state.seq] == [1, 2, 3]


def test_dedup_window_is_bounded() -> None:
    state = UserState(1)
    limits = StateLimits(dedup_window=3)
    apply_events(state, [event(i) for i in range(5)], limits)
    assert state.recent_ids == ["e2", "e3", "e4"]
    # an id older than the window is (by design) applied again
    assert len(apply_events(state, [event(0)], limits).applied) == 1


def test_orders_are_remembered_once_and_json_round_trips() -> None:
    state = UserState("u")
    apply_events(state, [event(1, "a", "order"), event(2, "a", "order"), event(3, "b")],
                 StateLimits())
    assert state.ordered == ["a"]
    assert UserState.from_json(state.to_json()) == state
    assert state.recent_items(5) == ["b", "a"]


def test_state_round_trips_the_profile_and_old_states_still_load() -> None:
    st = UserState("u1", profile=Profile(age=30, gender="M"))
    raw = st.to_json()
    assert raw["profile"] == {"age": 30, "gender": "M"}
    assert UserState.from_json(json.loads(json.dumps(raw))) == st
    old = {"user_id": 5, "seq": [[1, "click", 10]], "ids": ["e"], "ordered": [], "n": 1,
           "last_ts": 10}
    loaded = UserState.from_json(old)
    assert loaded.profile is None and loaded.to_json() == old
