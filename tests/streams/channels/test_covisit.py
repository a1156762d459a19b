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
