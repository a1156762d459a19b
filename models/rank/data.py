"""Ranker training data: leave-one-out examples, labels, recall-channel hard negatives, batches.

Split (the recall split): for a user with sequence s, the last item is the test target, the
second-to-last the validation target, and every earlier position t (t = 0 included, with an
empty history) a training target with history s[:t] (the ``max_hist`` most recent items).

Labels. Every candidate list holds the target (click = 1) and negatives (click = 0, order = 0).
Whether the target is also an order (order = 1) follows a :class:`LabelRule`:

- ``rating`` (data sets with ratings, e.g. MovieLens): order iff rating >= 4; the same mapping
  the stream replay uses for event types (rating >= 4 -> "order", else "click").
- ``brand-repeat`` (data sets without event types, e.g. Amazon Beauty, whose interactions are all
  reviews): order iff the target's brand (known, not "Unknown") already occurs in the user's
  history. A deterministic *proxy* for a conversion -- a repeat-brand purchase -- chosen so that
  the CVR head has something real to learn; it is not an observed order signal.
- ``all``: every target is an order (pCVR degenerates to 1).

History event types follow the same data: "order"/"click" from ratings, "click" otherwise.

Negatives: ``n_hard`` from the recall channels -- the co-visitation neighbours of the last
history item (:class:`CoVisit`, built from training positions only) and, for empty histories,
the most popular items -- and ``n_random`` uniformly from the catalogue.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

import numpy as np

from models.data.dataset import SeqDataset
from models.rank.features import EVENT_IDS, ItemFeatures, brand_key, context_features

log = logging.getLogger(__name__)

CLICK, ORDER = EVENT_IDS["click"], EVENT_IDS["order"]


class LabelRule(StrEnum):
    RATING = "rating"
    BRAND_REPEAT = "brand-repeat"
    ALL = "all"

    @classmethod
    def auto(cls, ds: SeqDataset) -> LabelRule:
        return cls.RATING if ds.ratings else cls.BRAND_REPEAT


@dataclass
class DataConfig:
    max_hist: int = 20
    n_hard: int = 4  # hard negatives per training example
    n_random: int = 4  # random negatives per training example
    covisit_window: int = 3  # co-visitation pairs up to this distance
    covisit_k: int = 50  # neighbours kept per item
    n_popular: int = 200  # popularity channel size
    eval_hard: int = 20  # hard negatives per evaluation user
    eval_random: int = 80  # random negatives per evaluation user


class Corpus(NamedTuple):
    """All sequences flattened: items / events / order labels / timestamps aligned."""

    items: np.ndarray  # int64 [T]
    events: np.ndarray  # int64 [T]: EVENT_IDS
    order: np.ndarray  # float32 [T]: order label of each position as a target
    ts: np.ndarray | None  # float64 [T] seconds, or None
    start: np.ndarray  # int64 [n_users]: offset of each user's sequence
    length: np.ndarray  # int64 [n_users]


class Examples(NamedTuple):
    """Targets as positions into the corpus: example i predicts corpus.items[pos[i]]."""

    user: np.ndarray  # int64 [E]: row into corpus.start
    pos: np.ndarray  # int64 [E]: absolute position of the target


class RankerBatch(NamedTuple):
    """Numpy batch: model inputs plus labels, U examples x C candidates."""

    hist_feats: np.ndarray
    hist_events: np.ndarray
    context: np.ndarray
    cand_feats: np.ndarray
    click: np.ndarray  # float32 [U, C]
    order: np.ndarray  # float32 [U, C]
    cand_items: np.ndarray  # int64 [U, C]


def build_corpus(ds: SeqDataset, rule: LabelRule) -> Corpus:
    users = sorted(ds.sequences)
    seqs = [ds.sequences[u] for u in users]
    length = np.array([len(s) for s in seqs], np.int64)
    start = np.concatenate([[0], np.cumsum(length)[:-1]]).astype(np.int64)
    items = np.array([i for s in seqs for i in s], np.int64)
    events = np.full(len(items), CLICK, np.int64)
    order = np.ones(len(items), np.float32)
    if rule is LabelRule.RATING:
        if not ds.ratings:
            raise ValueError(f"label rule 'rating' needs ratings; {ds.name} has none")
        rating = np.array([r for u in users for r in ds.ratings[u]], np.float64)
        order = (rating >= 4).astype(np.float32)
        events = np.where(rating >= 4, ORDER, CLICK).astype(np.int64)
    elif rule is LabelRule.BRAND_REPEAT:
        order = np.array([x for s in seqs for x in _brand_repeat(ds, s)], np.float32)
    ts = None
    if ds.timestamps:
        ts = np.array([t for u in users for t in ds.timestamps[u]], np.float64)
    return Corpus(items, events, order, ts, start, length)


def _brand_repeat(ds: SeqDataset, seq: list[int]) -> list[float]:
    seen: set[str] = set()
    out = []
    for item in seq:
        brand = brand_key(ds.items[item]) if item in ds.items else None
        out.append(float(brand is not None and brand in seen))
        if brand is not None:
            seen.add(brand)
    return out


def split(corpus: Corpus) -> tuple[Examples, Examples, Examples]:
    """Leave-one-out: (train, valid, test) examples."""
    users = np.arange(len(corpus.start))
    n = corpus.length
    test_u = users[n >= 2]
    valid_u = users[n >= 3]
    n_train = np.where(n >= 3, n - 2, np.where(n == 2, 1, 0))
    train_u = np.repeat(users, n_train)
    offsets = np.arange(len(train_u)) - np.repeat(np.cumsum(n_train) - n_train, n_train)
    train = Examples(train_u, corpus.start[train_u] + offsets)
    valid = Examples(valid_u, corpus.start[valid_u] + n[valid_u] - 2)
    test = Examples(test_u, corpus.start[test_u] + n[test_u] - 1)
    return train, valid, test


def histories(corpus: Corpus, ex: Examples, max_hist: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-aligned history items and events [E, max_hist] of each example (0 padded)."""
    idx = ex.pos[:, None] - max_hist + np.arange(max_hist)[None, :]
    ok = idx >= corpus.start[ex.user][:, None]
    idx = np.where(ok, idx, 0)
    return np.where(ok, corpus.items[idx], 0), np.where(ok, corpus.events[idx], 0)


def last_age(corpus: Corpus, ex: Examples) -> np.ndarray | None:
    """Seconds between the last history event and the target (NaN: no history)."""
    if corpus.ts is None:
        return None
    has = ex.pos > corpus.start[ex.user]
    prev = corpus.ts[np.maximum(ex.pos - 1, 0)]
    return np.where(has, corpus.ts[ex.pos] - prev, np.nan)


class CoVisit:
    """Item-to-item co-visitation (symmetric, weight 1/distance) plus popularity, in numpy."""

    def __init__(self, corpus: Corpus, train: Examples, n_items: int, cfg: DataConfig) -> None:
        items, users = corpus.items[train.pos], train.user  # training positions, in order
        keys, weights = [], []
        for w in range(1, cfg.covisit_window + 1):
            same = (users[:-w] == users[w:]) & (items[:-w] != items[w:])
            a, b = items[:-w][same], items[w:][same]
            keys += [a * (n_items + 1) + b, b * (n_items + 1) + a]
            weights += [np.full(2 * len(a), 1.0 / w)]
        key = np.concatenate(keys) if keys else np.zeros(0, np.int64)
        uniq, inv = np.unique(key, return_inverse=True)
        wsum = np.bincount(inv, weights=np.concatenate(weights)) if len(key) else np.zeros(0)
        src, dst = uniq // (n_items + 1), uniq % (n_items + 1)
        order = np.lexsort((-wsum, src))
        src, dst = src[order], dst[order]
        first = np.searchsorted(src, src)
        rank = np.arange(len(src)) - first
        keep = rank < cfg.covisit_k
        self.neighbours = np.zeros((n_items + 1, cfg.covisit_k), np.int64)
        self.neighbours[src[keep], rank[keep]] = dst[keep]
        self.count = (self.neighbours > 0).sum(1)
        pop = np.bincount(items, minlength=n_items + 1)
        pop[0] = 0
        self.popular = np.argsort(-pop, kind="stable")[: cfg.n_popular]
        self.n_items = n_items

    def hard(self, last: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
        """``k`` sampled recall candidates [E, k] for last history items ``last`` [E] (0: none)."""
        cnt = self.count[last]
        col = (rng.random((len(last), k)) * np.maximum(cnt, 1)[:, None]).astype(np.int64)
        cand = self.neighbours[last[:, None], col]
        pop = self.popular[rng.integers(0, len(self.popular), (len(last), k))]
        return np.where(cnt[:, None] > 0, cand, pop)

    def top(self, last: np.ndarray, k: int) -> np.ndarray:
        """The ``k`` best recall candidates [E, k] (co-visitation first, then popularity)."""
        pop = self.popular[:k]
        both = np.concatenate([self.neighbours[last], np.broadcast_to(pop, (len(last), len(pop)))],
                              axis=1)
        out = np.zeros((len(last), k), np.int64)
        for r, row in enumerate(both):  # unique, order kept; small k, eval only
            vals = row[row > 0]
            _, first = np.unique(vals, return_index=True)
            vals = vals[np.sort(first)][:k]
            out[r, : len(vals)] = vals
        return out


def _fix_collisions(cand: np.ndarray, pos: np.ndarray, n_items: int,
                    rng: np.random.Generator) -> np.ndarray:
    """Replace negatives equal to the positive (or 0) by random items that are not."""
    bad = (cand == pos[:, None]) | (cand == 0)
    while bad.any():
        cand[bad] = rng.integers(1, n_items + 1, bad.sum())
        bad = (cand == pos[:, None]) | (cand == 0)
    return cand


def make_batch(corpus: Corpus, ex: Examples, negatives: np.ndarray, features: ItemFeatures,
               max_hist: int) -> RankerBatch:
    """Batch for examples ``ex`` with candidates [positive, *negatives[E, k]]."""
    hist, events = histories(corpus, ex, max_hist)
    pos = corpus.items[ex.pos]
    cands = np.concatenate([pos[:, None], negatives], axis=1)
    click = np.zeros(cands.shape, np.float32)
    click[:, 0] = 1.0
    order = np.zeros(cands.shape, np.float32)
    order[:, 0] = corpus.order[ex.pos]
    context = context_features(events, last_age(corpus, ex))
    return RankerBatch(features.gather(hist), events, context, features.gather(cands), click,
                       order, cands)


def train_negatives(corpus: Corpus, ex: Examples, covisit: CoVisit, cfg: DataConfig,
                    rng: np.random.Generator) -> np.ndarray:
    """Fresh hard + random negatives [E, n_hard + n_random] for training examples."""
    has = ex.pos > corpus.start[ex.user]
    last = np.where(has, corpus.items[np.maximum(ex.pos - 1, 0)], 0)
    hard = covisit.hard(last, cfg.n_hard, rng)
    rand = rng.integers(1, covisit.n_items + 1, (len(ex.pos), cfg.n_random))
    return _fix_collisions(np.concatenate([hard, rand], axis=1), corpus.items[ex.pos],
                           covisit.n_items, rng)


def eval_negatives(corpus: Corpus, ex: Examples, covisit: CoVisit, cfg: DataConfig,
                   seed: int) -> np.ndarray:
    """Fixed evaluation negatives: top recall candidates (minus the target) + random items."""
    rng = np.random.default_rng(seed)
    has = ex.pos > corpus.start[ex.user]
    last = np.where(has, corpus.items[np.maximum(ex.pos - 1, 0)], 0)
    pos = corpus.items[ex.pos]
    top = covisit.top(last, cfg.eval_hard + 1)
    hard = np.where(top == pos[:, None], 0, top)
    hard = np.sort(hard, axis=1)[:, ::-1][:, : cfg.eval_hard]  # drop the target (now a 0)
    rand = rng.integers(1, covisit.n_items + 1, (len(ex.pos), cfg.eval_random))
    return _fix_collisions(np.concatenate([hard, rand], axis=1), pos, covisit.n_items, rng)
