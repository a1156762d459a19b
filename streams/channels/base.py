"""Recall channels and their merge into one ranked list.

A channel maps candidate items to scores. :func:`merge_channels` normalises each channel to a
maximum of 1, blends them with per-channel weights, drops excluded items, and ranks by the blended
score; each item's ``source`` names the channel that contributed most to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from operator import itemgetter

from streams.channels.covisit import TYPE_WEIGHTS, CoVisitation
from streams.channels.popularity import DecayedPopularity
from streams.contracts.events import Id
from streams.contracts.output import Candidate
from streams.pipeline.state import UserState

COVISIT = "covisit"
POPULAR = "popular"

Channel = dict[Id, float]


@dataclass(frozen=True, slots=True)
class RecallConfig:
    history_items: int = 10  # most recent items the co-visitation channel starts from
    recency_decay: float = 0.8  # weight of the k-th most recent item: decay ** k
    per_item_neighbors: int = 50
    popular_k: int = 200


def covisit_channel(state: UserState, covis: CoVisitation, cfg: RecallConfig) -> Channel:
    """Neighbours of the user's recent items, weighted by recency and event type."""
    type_of: dict[Id, str] = {}
    for e in state.seq:  # later events win: the strongest recent action on the item
        if TYPE_WEIGHTS[e.type] >= TYPE_WEIGHTS[type_of.get(e.item_id, "view")]:
            type_of[e.item_id] = e.type
    out: Channel = {}
    for rank, item in enumerate(state.recent_items(cfg.history_items)):
        w = cfg.recency_decay ** rank * TYPE_WEIGHTS[type_of.get(item, "click")]
        covis.accumulate(item, cfg.per_item_neighbors, w, out)
    return out


def popular_channel(popularity: DecayedPopularity, cfg: RecallConfig) -> Channel:
    return dict(popularity.top(cfg.popular_k))


@dataclass(frozen=True, slots=True)
class SharedChannel:
    """A channel that is the same for every user of a batch (popularity), weighted, normalised
    and ranked once: :func:`merge_channels` then only looks up the items of each user's own
    channels in it instead of blending all of it again for every user."""

    name: str
    parts: dict[Id, float]  # item -> weight * score / top score
    ranked: list[tuple[Id, float]]  # ``parts`` best first (ties keep insertion order)


def _scale(name: str, channel: Channel, weights: Mapping[str, float]) -> float:
    """The factor that turns ``channel``'s scores into its parts of the blend: weight / top
    score; 0 when the channel has nothing to give (no positive score, or weight 0)."""
    w = weights.get(name, 1.0)
    top = max(channel.values(), default=0.0)
    return w / top if top > 0 and w > 0 else 0.0


def share(name: str, channel: Channel, weights: Mapping[str, float]) -> SharedChannel:
    f = _scale(name, channel, weights)
    if f == 0.0:
        return SharedChannel(name, {}, [])
    parts = {item: score * f for item, score in channel.items()}
    return SharedChannel(name, parts, sorted(parts.items(), key=itemgetter(1), reverse=True))


def merge_channels(channels: Mapping[str, Channel], weights: Mapping[str, float],
                   exclude: set[Id], n: int, shared: SharedChannel | None = None
                   ) -> list[Candidate]:
    """Blend normalised channel scores, drop ``exclude``, return the top ``n`` best first.

    ``shared`` (a channel the same for all users, see :class:`SharedChannel`) counts as the last
    channel. Ties keep the channels' insertion order, so lists are deterministic; an item's
    ``source`` is the channel of its largest part (the first of equal ones).
    """
    scaled: list[tuple[str, Channel, float]] = []
    for name, channel in channels.items():
        if shared is not None and name == shared.name:
            continue  # already weighted and scaled, once for the whole batch
        f = _scale(name, channel, weights)
        if f > 0:
            scaled.append((name, channel, f))
    one = scaled[0][0] if len(scaled) == 1 else ""  # the common case: one own channel
    if one:
        _, channel, f = scaled[0]
        blended = {item: score * f for item, score in channel.items()}
    else:
        blended = {}
        for _, channel, f in scaled:
            get = blended.get
            for item, score in channel.items():
                blended[item] = get(item, 0.0) + score * f
    parts = shared.parts if shared is not None else {}
    shared_wins: set[Id] = set()  # with one own channel: items whose larger part is shared
    for item in blended.keys() & parts.keys():  # updating values keeps the insertion order
        if one and parts[item] > blended[item]:
            shared_wins.add(item)
        blended[item] += parts[item]
    own = sorted(blended.items(), key=itemgetter(1), reverse=True)
    rest, rest_name = ([], "") if shared is None else (shared.ranked, shared.name)
    out: list[Candidate] = []
    i = j = 0
    while len(out) < n and (i < len(own) or j < len(rest)):
        if j >= len(rest) or (i < len(own) and own[i][1] >= rest[j][1]):
            item, total = own[i]
            i += 1
            if item not in exclude:
                source = (rest_name if item in shared_wins else one) if one \
                    else _source(item, scaled, shared)
                out.append(Candidate(item, round(total, 6), source))
            continue
        item, total = rest[j]
        j += 1
        # an item of the user's own channels is ranked with them; any other is the shared one's
        if item not in blended and item not in exclude:
            out.append(Candidate(item, round(total, 6), rest_name))
    return out


def _source(item: Id, scaled: list[tuple[str, Channel, float]],
            shared: SharedChannel | None) -> str:
    """The channel whose normalised, weighted score of ``item`` is the largest (first wins)."""
    best, best_part = "", -1.0
    for name, channel, f in scaled:
        score = channel.get(item)
        if score is not None and (part := score * f) > best_part:
            best, best_part = name, part
    if shared is not None and shared.parts.get(item, -1.0) > best_part:
        best = shared.name
    return best

