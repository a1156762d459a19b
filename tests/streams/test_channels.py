from streams.channels.base import RecallConfig, covisit_channel, merge_channels
from streams.channels.covisit import CoVisitation, CoVisitConfig
from streams.channels.popularity import DecayedPopularity
from streams.contracts.output import Candidate
from streams.pipeline.state import SeqEvent, UserState

DAY_MS = 86_400_000


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


def test_popularity_decays_with_event_time() -> None:
    pop = DecayedPopularity(half_life_s=86_400, refresh_s=0)
    pop.add("old", 4.0, 0)
    pop.add("new", 1.5, 2 * DAY_MS)
    assert abs(pop.score("old") - 1.0) < 1e-9  # two half-lives
    assert [i for i, _ in pop.top(2)] == ["new", "old"]
    assert pop.top(1)[0][1] == 1.0


def test_covisit_channel_prefers_recent_items() -> None:
    cv = CoVisitation(CoVisitConfig(window=1))
    cv.add_sequence(["a", "x"])
    cv.add_sequence(["b", "y"])
    state = UserState(1, seq=[SeqEvent("a", "click", 1), SeqEvent("b", "click", 2)])
    channel = covisit_channel(state, cv, RecallConfig())
    assert channel["y"] > channel["x"] > 0


def test_merge_blends_dedups_excludes_and_names_sources() -> None:
    channels = {"covisit": {"a": 2.0, "b": 1.0, "z": 2.0}, "popular": {"b": 1.0, "c": 0.5}}
    out = merge_channels(channels, {"covisit": 1.0, "popular": 0.5}, exclude={"z"}, n=10)
    # b: 0.5 (covisit) + 0.5 (popular) ties a: 1.0; ties go by id
    assert out == [Candidate("a", 1.0, "covisit"), Candidate("b", 1.0, "covisit"),
                   Candidate("c", 0.25, "popular")]
    assert merge_channels(channels, {}, exclude=set(), n=1)[0].item_id in {"a", "z", "b"}
    assert merge_channels({"covisit": {}}, {}, exclude=set(), n=5) == []
