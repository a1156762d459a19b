"""Candidates from the channels (per-channel quotas) and their ranking, for a whole batch.

:func:`select_candidates` takes each channel's best items up to its quota, in channel priority
order (generative, co-visitation, popularity), skipping excluded items and items an earlier
channel already brought; popularity then tops the pool up to the list size for users with few
candidates (cold users). :func:`rank_batch` scores every candidate of every user of the batch in
one ranker call (onnxruntime), blends click / order / value (:func:`blend`) and keeps the top
``n`` per user; each item keeps the channel that brought it as its ``source``.

The multi-objective blend that orders the ranked list:

    score = w_click * pCTR + w_order * pCTCVR + w_value * pCTCVR * price

pCTCVR = pCTR * pCVR is the probability that a shown item is clicked *and* ordered, so the
order term is an expected-order count and the value term an expected revenue. The value term
only counts where the price is known (unknown price: the term is 0 for that item).

Defaults (``SIDSTREAM_W_CLICK=1``, ``SIDSTREAM_W_ORDER=2``, ``SIDSTREAM_W_VALUE=0``): an order
is worth twice a click -- pCTCVR is at most pCTR, so with w_order = 2 an item the user is likely
to buy beats one they would only click, while pCTR still separates the long tail of items
with low conversion estimates; the value term is off because neither bundled data set has
prices (turn it on with a weight on the scale of 1 / typical price, e.g. 0.02 for prices ~50).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING

import numpy as np

from export.serving import RankBatch, pad_candidates
from models.rank.features import EVENT_IDS
from streams.channels.base import POPULAR, Channel
from streams.contracts.events import Id
from streams.contracts.ids import model_item_id
from streams.contracts.output import Candidate
from streams.pipeline.state import UserState
from streams.settings import BlendSettings

if TYPE_CHECKING:
    from export.serving import RankerSession


def ranked(channel: Channel | Sequence[tuple[Id, float]]) -> Sequence[tuple[Id, float]]:
    """A channel's (item, score) pairs best first (ties keep insertion order)."""
    if isinstance(channel, dict):
        return sorted(channel.items(), key=itemgetter(1), reverse=True)
    return channel


def select_candidates(channels: Mapping[str, Channel | Sequence[tuple[Id, float]]],
                      quotas: Mapping[str, int], exclude: set[Id], fill_to: int
                      ) -> list[Candidate]:
    """Up to ``quotas[name]`` best items per channel (dict order = priority), then popular
    items beyond their quota until there are ``fill_to`` candidates (unless the popular quota
    is 0, which switches the channel off). A channel is a dict or already ranked pairs (the
    popular channel, the same for every user, is ranked once per batch)."""
    out: list[Candidate] = []
    taken: set[Id] = set()
    leftovers: Sequence[tuple[Id, float]] = []
    for name, channel in channels.items():
        quota = quotas.get(name, 0)
        if quota <= 0:
            continue
        pairs = ranked(channel)
        n = 0
        for pos, (item, score) in enumerate(pairs):
            if n >= quota:
                if name == POPULAR:
                    leftovers = pairs[pos:]
                break
            if item in exclude or item in taken:
                continue
            out.append(Candidate(item, score, name))
            taken.add(item)
            n += 1
    for item, score in leftovers:
        if len(out) >= fill_to:
            break
        if item not in exclude and item not in taken:
            out.append(Candidate(item, score, POPULAR))
            taken.add(item)
    return out


def history_arrays(states: Sequence[UserState], n_hist: int, sentinel: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Right-aligned [U, n_hist] model item ids and event-type ids of the users' sequences."""

    items = np.zeros((len(states), n_hist), np.int64)
    events = np.zeros((len(states), n_hist), np.int64)
    for u, st in enumerate(states):
        tail = st.seq[-n_hist:]
        for j, ev in enumerate(tail, start=n_hist - len(tail)):
            mid = model_item_id(ev.item_id)
            items[u, j] = sentinel if mid is None else mid
            events[u, j] = EVENT_IDS[ev.type]
    return items, events


def rank_batch(ranker: RankerSession, weights: BlendSettings, states: Sequence[UserState],
               candidates: Sequence[Sequence[Candidate]], now_ms: int, n: int
               ) -> list[list[Candidate]]:
    """Score all users' candidates in one call; top ``n`` per user by the blended score."""
    feats = ranker.features
    sentinel = len(feats.table) - 1  # ids the ranker does not know: the unknown-item row
    flat_items, flat_users = [], []
    for u, cands in enumerate(candidates):
        for c in cands:
            mid = model_item_id(c.item_id)
            flat_items.append(sentinel if mid is None or mid >= sentinel else mid)
            flat_users.append(u)
    out: list[list[Candidate]] = [[] for _ in candidates]
    if not flat_items:
        return out

    cand, rows, cols = pad_candidates(np.array(flat_items), np.array(flat_users), len(states))
    hist_items, hist_events = history_arrays(states, ranker.max_hist, sentinel)
    age = np.array([(now_ms - st.last_ts) / 1000.0 if st.last_ts else np.nan for st in states],
                   np.float32)
    scores = ranker.score(RankBatch(hist_items, hist_events, np.maximum(age, 0), cand))
    final = blend(scores.pctr, scores.pctcvr, feats.prices(cand), weights)
    return top_per_user(final, rows, cols, candidates, n)


def top_per_user(final: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                 candidates: Sequence[Sequence[Candidate]], n: int) -> list[list[Candidate]]:
    """Each user's ``n`` best candidates by ``final`` [U, C] (user u's candidate j at
    ``final[u, j]``; ``rows``/``cols`` the cells that hold one), ties in candidate order.

    One sort for the batch: padding is NaN, which a stable sort puts after every user's own
    candidates (their NaNs included, in column order), so row u's first ``len(candidates[u])``
    sorted columns are its candidates best first."""
    padded = np.full(final.shape, np.nan, np.float32)
    padded[rows, cols] = final[rows, cols]
    order = np.argsort(-padded, axis=1, kind="stable")[:, :n]
    top = np.take_along_axis(padded, order, axis=1).round(6)
    out: list[list[Candidate]] = []
    for u, cands in enumerate(candidates):
        k = min(n, len(cands))
        out.append([Candidate(cands[i].item_id, score, cands[i].source)
                    for i, score in zip(order[u, :k].tolist(), top[u, :k].tolist(), strict=True)])
    return out


def blend(pctr: np.ndarray, pctcvr: np.ndarray, price: np.ndarray | None = None,
          weights: BlendSettings | None = None) -> np.ndarray:
    """Final ranking score, same shape as ``pctr``; ``price`` NaN (or None) where unknown."""
    w = weights or BlendSettings()
    score = w.w_click * np.asarray(pctr, np.float32) + w.w_order * np.asarray(pctcvr, np.float32)
    if price is not None and w.w_value:
        value = np.nan_to_num(np.asarray(price, np.float32), nan=0.0) * pctcvr
        score = score + w.w_value * value
    return score.astype(np.float32)
