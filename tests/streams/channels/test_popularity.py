

from streams.channels.popularity import DecayedPopularity

DAY_MS = 86_400_000


def test_popularity_decays_with_event_time() -> None:
    pop = DecayedPopularity(half_life_s=86_400, refresh_s=0)
    pop.add("old", 4.0, 0)
    pop.add("new", 1.5, 2 * DAY_MS)
    assert abs(pop.score("old") - 1.0) < 1e-9  # two half-lives
    assert [i for i, _ in pop.top(2)] == ["new", "old"]
    assert pop.top(1)[0][1] == 1.0


def test_popularity_stays_under_max_items_keeping_the_most_popular() -> None:
    pop = DecayedPopularity(half_life_s=86_400, refresh_s=0, max_items=50)
    for i in range(30):  # popular items, seen early
        pop.add(f"hot{i}", 100.0, 0)
    for i in range(1000):  # a long tail of one-off items
        pop.add(f"tail{i}", 1.0, i)
        assert len(pop) <= 50
    assert {f"hot{i}" for i in range(30)} <= set(pop.items)
    assert [i for i, _ in pop.top(30)] == [f"hot{i}" for i in range(30)]
