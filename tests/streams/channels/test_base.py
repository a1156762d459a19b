from streams.channels.base import RecallConfig, covisit_channel, merge_channels
from streams.channels.covisit import CoVisitation, CoVisitConfig
from streams.contracts.output import Candidate
from streams.pipeline.state import SeqEvent, UserState


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
