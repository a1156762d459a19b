import random

import pytest

from streams.channels.covisit import CoVisitation, CoVisitConfig


def test_covisitation_counts_both_directions_with_distance_weight() -> None:
    cv = CoVisitation(CoVisitConfig(window=2))
    cv.add_sequence([1, 2, 3])
    # pairs: (2,1) w1, (3,2) w1, (3,1) w1/2
    assert dict(cv.neighbors(3, 5)) == {2: 1 / 1.5, 1: 0.5 / 1.5}
    assert cv.neighbors(2, 5)[0][1] == 0.5 and len(cv.neighbors(2, 5)) == 2
    assert cv.neighbors(99, 5) == []


def test_covisitation_rows_are_bounded_and_serialisable() -> None:
    cv = CoVisitation(CoVisitConfig(window=1, max_neighbors=3))
    for other in range(10):
        cv.update([other], 100, weight=float(other + 1))
    assert len(cv.rows[100]) <= 6
    assert [j for j, _ in cv.neighbors(100, 3)] == [9, 8, 7]
    again = CoVisitation.from_rows(cv.to_rows(), cv.config)
    assert again.neighbors(100, 3) == cv.neighbors(100, 3)


def test_neighbours_read_after_an_update_are_not_the_stale_ones_read_before() -> None:
    cv = CoVisitation(CoVisitConfig(window=1))
    cv.add_sequence([1, 2])
    assert cv.neighbors(1, 5) == [(2, 1.0)]  # read (and kept) before the update
    cv.update([1], 3, weight=3.0)  # 1 -> 3 now outweighs 1 -> 2
    assert cv.neighbors(1, 5) == [(3, 0.75), (2, 0.25)]
    assert cv.neighbors(1, 1) == [(3, 0.75)]  # another k is not the kept list


def _fresh_top(cv: CoVisitation, item: int, k: int) -> list[tuple[int, float]]:
    row, total = cv.rows[item], cv.totals[item]
    return [(j, c / total) for j, c in sorted(row.items(), key=lambda kv: -kv[1])[:k]]


@pytest.mark.parametrize("k", [5, 12])  # 12: more than a pruned row keeps (8)
def test_kept_top_neighbours_follow_every_update_as_a_fresh_sort_would(k: int) -> None:
    """The top-k kept between recalls is updated in place by each co-count (``_Top.bump``):
    it must stay what sorting the row again gives, through rises, entries and prunes."""
    rng = random.Random(0)
    cv = CoVisitation(CoVisitConfig(window=3, max_neighbors=8))
    for _ in range(20):  # every row is read (so kept) early, then keeps changing
        cv.update([rng.randrange(30) for _ in range(3)], rng.randrange(30), rng.random() + 0.1)
    for item in list(cv.rows):
        cv.neighbors(item, k)
    for step in range(3000):
        cv.update([rng.randrange(30) for _ in range(3)], rng.randrange(30), rng.random() + 0.1)
        if step % 50 == 0:
            for item in cv.rows:
                assert [j for j, _ in cv.neighbors(item, k)] == \
                    [j for j, _ in _fresh_top(cv, item, k)]
                assert [c for _, c in cv.neighbors(item, k)] == \
                    pytest.approx([c for _, c in _fresh_top(cv, item, k)])


def test_accumulated_channel_scores_are_weight_times_conditional_score() -> None:
    cv = CoVisitation(CoVisitConfig(window=2))
    cv.add_sequence([1, 2, 3])
    out = {2: 1.0}
    cv.accumulate(3, 5, 2.0, out)
    assert out == pytest.approx({2: 1.0 + 2.0 / 1.5, 1: 1.0 / 1.5})
    cv.accumulate(99, 5, 2.0, out)  # an unknown item adds nothing
    assert len(out) == 2


def test_covisit_index_stays_under_max_items() -> None:
    """A stream of ever new items (catalogue churn) must not grow the index past its bound;
    the rows of the items in use now survive, the least recently updated go."""
    cv = CoVisitation(CoVisitConfig(window=2, max_items=100))
    for item in range(1, 2000):
        cv.update([item - 1], item)
        assert len(cv.rows) <= 100
    assert len(cv.totals) == len(cv._stamp) == len(cv.rows)
    assert {1998, 1999} <= set(cv.rows) and 1 not in cv.rows
    assert cv.neighbors(1999, 5) == [(1998, 1.0)]


def test_covisit_eviction_keeps_a_row_updated_recently_over_newer_idle_ones() -> None:
    cv = CoVisitation(CoVisitConfig(window=1, max_items=20))
    cv.update([1], 2)  # rows 1 and 2, the oldest ...
    for item in range(10, 28):
        cv.update([item], item + 100)
        cv.update([1], 2)  # ... but kept busy
    assert {1, 2} <= set(cv.rows) and len(cv.rows) <= 20


def test_a_seed_larger_than_max_items_keeps_its_strongest_rows() -> None:
    big = CoVisitation(CoVisitConfig(window=1))
    for item in range(1, 51):
        big.update([item], item + 1000, weight=float(item))
    cv = CoVisitation.from_rows(big.to_rows(), CoVisitConfig(window=1, max_items=10))
    assert len(cv.rows) == 10 and set(cv.rows) == set(sorted(big.totals,
                                                              key=big.totals.__getitem__)[-10:])
