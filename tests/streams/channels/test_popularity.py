

from streams.channels.popularity import DecayedPopularity

DAY_MS = 86_400_000


def test_popularity_decays_with_event_time() -> None:
    pop = DecayedPopularity(half_life_s=86_400, refresh_s=0)
    pop.add("old", 4.0, 0)
    pop.add("new", 1.5, 2 * DAY_MS)
    assert abs(pop.score("old") - 1.0) < 1e-9  # two half-lives
    assert [i for i, _ in pop.top(2)] == ["new", "old"]
    assert pop.top(1)[0][1] == 1.0
