import random

from streams.channels.base import RecallConfig, covisit_channel, merge_channels, share
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


def _merge_reference(channels: dict[str, dict[str, float]], weights: dict[str, float],
                     exclude: set[str], n: int) -> list[Candidate]:
    """The merge as first written: every channel blended item by item for every user."""
    blended: dict[str, float] = {}
    best: dict[str, tuple[float, str]] = {}
    for name, channel in channels.items():
        w, top = weights.get(name, 1.0), max(channel.values(), default=0.0)
        if top <= 0 or w <= 0:
            continue
        for item, score in channel.items():
            if item in exclude:
                continue
            part = w * score / top
            blended[item] = blended.get(item, 0.0) + part
            if part > best.get(item, (-1.0, ""))[0]:
                best[item] = (part, name)
    ranked = sorted(blended.items(), key=lambda kv: kv[1], reverse=True)[:n]
    return [Candidate(item, round(score, 6), best[item][1]) for item, score in ranked]


def test_shared_popular_channel_merges_like_blending_it_per_user() -> None:
    """Popularity is weighted and ranked once per batch (``share``) and merged into each user's
    list: the lists, their tie order and sources must be those of blending it per user."""
    rng = random.Random(7)
    weights = {"generative": 1.0, "covisit": 1.0, "popular": 0.3}
    for _ in range(300):
        items = [f"i{j}" for j in range(40)]
        # integer scores make ties common, across channels too
        popular = {it: float(rng.randint(1, 5)) for it in rng.sample(items, 25)}
        channels = {"generative": {it: float(rng.randint(0, 3)) for it in rng.sample(items, 8)},
                    "covisit": {it: float(rng.randint(1, 4)) for it in rng.sample(items, 12)},
                    "popular": popular}
        exclude = set(rng.sample(items, 5))
        n = rng.choice([1, 5, 20, 60])
        want = _merge_reference(channels, weights, exclude, n)
        shared = share("popular", popular, weights)
        assert merge_channels(channels, weights, exclude, n, shared) == want
        assert merge_channels(channels, weights, exclude, n) == want
        alone = {**channels, "generative": {}}  # one own channel: the merge's fast path
        want = _merge_reference(alone, weights, exclude, n)
        assert merge_channels(alone, weights, exclude, n, shared) == want
