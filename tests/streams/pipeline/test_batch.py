

from typing import Any

from streams.pipeline.batch import Record
from tests.fixtures.pipelines import make_pipeline, rec


def test_batch_coalesces_users_and_ranks_covisited_items() -> None:
    pipe, metrics = make_pipeline()
    table: dict[str, Any] = {}
    first = pipe.process([rec("u1", 1), rec("u1", 2), rec("u1", 3), rec(9, 1)], table.get)
    table.update({k: v for k, (_, v) in first.states.items()})
    assert {r.user_id for r in first.lists} == {"u1", 9}  # one list per user, not per event
    assert first.states["u1"][0] == 3  # partition of the source events
    out = pipe.process([rec(9, 2, "order")], table.get)
    items = [c.item_id for c in out.lists[0].items]
    assert items[0] == 3 and 2 not in items and 1 not in items  # seen/ordered excluded
    assert out.lists[0].items[0].source == "covisit"
    assert metrics.events.labels("click")._value.get() == 4


def test_duplicates_and_rejects_are_counted_not_applied() -> None:
    pipe, metrics = make_pipeline()
    table: dict[str, Any] = {}
    out = pipe.process([rec(1, 5, eid="x"), rec(1, 5, eid="x"), Record(b"1", b"{", "t", 0, 7)],
                       table.get)
    assert out.applied == 1 and out.duplicates == 1
    assert [r.reason for r in out.rejects] == ["bad_json"]
    assert out.rejects[0].record.offset == 7
    table.update({k: v for k, (_, v) in out.states.items()})
    again = pipe.process([rec(1, 5, eid="x")], table.get)
    assert again.applied == 0 and not again.states  # nothing new to changelog ...
    assert [r.user_id for r in again.lists] == [1]  # ... but the list is rewritten
    assert metrics.duplicates._value.get() == 2


def test_ordered_items_are_never_recommended_even_when_seen_allowed() -> None:
    pipe, _ = make_pipeline(exclude_seen=False)
    table: dict[str, Any] = {}
    for user in range(5):  # everybody buys 1 then 2: 2 is the top neighbour of 1
        out = pipe.process([rec(user, 1, "order"), rec(user, 2, "order")], table.get)
        table.update({k: v for k, (_, v) in out.states.items()})
    out = pipe.process([rec("new", 1, "click")], table.get)
    assert out.lists[0].items[0].item_id == 2
    assert 1 in [c.item_id for c in out.lists[0].items]  # clicked, not ordered: allowed here
    out = pipe.process([rec("new", 2, "order")], table.get)
    assert 2 not in [c.item_id for c in out.lists[0].items]


def test_redelivery_from_far_back_is_not_applied_twice() -> None:
    """A consumer that restarts far behind its last commit (beyond the event-id window)."""
    pipe, _ = make_pipeline(dedup_window=2)
    table: dict[str, Any] = {}
    batch = [rec("far", item, eid=f"far-{item}") for item in range(1, 7)]
    for r in batch:
        out = pipe.process([r], table.get)
        table.update({k: v for k, (_, v) in out.states.items()})
    applied = table["far"]
    assert applied["n"] == 6 and len(applied["ids"]) == 2  # the id window forgot 4 of them
    again = pipe.process(batch, table.get)  # the same records, the same offsets
    assert again.duplicates == 6 and again.applied == 0 and not again.states
    assert {r.user_id for r in again.lists} == {"far"}  # its list is still rewritten
    resent = pipe.process([rec("far", 6, eid="far-6")], table.get)  # a producer re-send
    assert resent.duplicates == 1 and resent.applied == 0
    fresh = pipe.process([rec("far", 9)], table.get)
    assert fresh.applied == 1 and fresh.states["far"][1]["n"] == 7


def _accounted(metrics: Any, outcome: str) -> float:
    return metrics.registry.get_sample_value("sidstream_events_accounted_total",
                                             {"outcome": outcome}) or 0.0


def test_each_list_carries_the_events_it_answers() -> None:
    pipe, metrics = make_pipeline(trigger_types="click,order")
    out = pipe.process([rec("acc1", 1), rec("acc1", 2), rec("acc1", 3, "view"), rec("acc2", 1),
                        rec("acc3", 4, "view")], {}.get)
    assert {r.user_id: r.events for r in out.lists} == {"acc1": 3, "acc2": 1}
    assert _accounted(metrics, "no_recompute") == 1  # acc3's view recomputes nothing


def test_deferred_events_are_answered_by_the_later_recompute_or_counted_dropped() -> None:
    now = [1_795_000_000.0]
    pipe, metrics = make_pipeline(debounce_ms=1000)
    pipe.clock = lambda: now[0]
    table: dict[str, Any] = {}

    def run(records: list[Record]) -> list[Any]:
        out = pipe.process(records, table.get)
        table.update({k: v for k, (_, v) in out.states.items()})
        return out.lists

    assert [r.events for r in run([rec("deb1", 1)])] == [1]
    assert run([rec("deb1", 2)]) == [] and run([rec("deb1", 3)]) == []  # deferred
    now[0] += 1.5
    assert [(r.user_id, r.events) for r in run([])] == [("deb1", 2)]
    assert run([rec("deb1", 4)]) == []
    pipe.forget_deferred()  # a rebalance
    assert _accounted(metrics, "dropped_deferred") == 1 and not pipe.unanswered


def test_a_job_that_absorbs_a_later_batch_answers_both_batches_events() -> None:
    pipe, _ = make_pipeline()
    _, first = pipe.prepare([rec("abs1", 1), rec("abs2", 1)], {}.get)
    _, later = pipe.prepare([rec("abs1", 2), rec("abs1", 3)], {}.get)
    assert first.absorb(later)
    assert {r.user_id: r.events for r in pipe.finish(first)} == {"abs1": 3, "abs2": 1}
