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
        for other, score in covis.neighbors(item, cfg.per_item_neighbors):
            out[other] = out.get(other, 0.0) + w * score
    return out


def popular_channel(popularity: DecayedPopularity, cfg: RecallConfig) -> Channel:
    return dict(popularity.top(cfg.popular_k))


def merge_channels(channels: Mapping[str, Channel], weights: Mapping[str, float],
                   exclude: set[Id], n: int) -> list[Candidate]:
    """Blend normalised channel scores, drop ``exclude``, return the top ``n`` best first.

    Ties keep the channels' insertion order, so lists are deterministic.
    """
    blended: dict[Id, float] = {}
    best: dict[Id, tuple[float, str]] = {}
    for name, channel in channels.items():
        if not channel:
            continue
        w = weights.get(name, 1.0)
        top = max(channel.values())
        if top <= 0 or w <= 0:
            continue
        for item, score in channel.items():
            if item in exclude:
                continue
            part = w * score / top
            blended[item] = blended.get(item, 0.0) + part
            if part > best.get(item, (-1.0, ""))[0]:
                best[item] = (part, name)
    ranked = sorted(blended.items(), key=itemgetter(1), reverse=True)[:n]
    return [Candidate(item, round(score, 6), best[item][1]) for item, score in ranked]
