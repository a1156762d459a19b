"""Leave-one-out evaluation: Recall@k and NDCG@k over all users and the full catalogue.

With a single held-out target per user, Recall@k is the hit rate and NDCG@k is
``1 / log2(rank + 2)`` for a hit at 0-based ``rank < k`` (ideal DCG is 1). Two protocol variants:
the user's earlier items excluded from the ranking, or not. A popularity ranking (item counts
over the interactions before the split's targets) runs in the same harness as a floor.

Popularity bias, so that gains are not bought by pushing popular items only (``bias_metrics``):
catalogue coverage@10 (distinct items over all top-10 lists / catalogue size), the share of
recommended slots taken by long-tail items (the 80 % least interacted-with items; the head is the
top 20 % by interactions before the split's targets) and the mean interaction count of the
recommended items; the same two figures for the true targets are the reference.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
from tqdm import tqdm

from models.data.dataset import SeqDataset
from models.recall.beam import SEARCH_CHUNK, RecallResult
from models.recall.data import Split

log = logging.getLogger(__name__)

KS = (5, 10)


class Recaller(Protocol):
    def recall(self, histories: list[list[int]], k: int = 10, beam: int = 20,
               exclude: list[set[int]] | None = None, batch_size: int = SEARCH_CHUNK
               ) -> RecallResult: ...


def rank_metrics(ranked: np.ndarray, targets: np.ndarray, ks: Sequence[int] = KS
                 ) -> dict[str, float]:
    """ranked [U, K] item ids (best first), targets [U] -> {recall@k, ndcg@k}."""
    hit = ranked == targets[:, None]
    rank = np.where(hit.any(1), hit.argmax(1), ranked.shape[1])  # K where missed
    out = {}
    for k in ks:
        inside = rank < k
        out[f"recall@{k}"] = float(inside.mean()) if len(rank) else 0.0
        gain = np.where(inside, 1.0 / np.log2(rank + 2.0), 0.0)
        out[f"ndcg@{k}"] = float(gain.mean()) if len(rank) else 0.0
    return out


def popularity_counts(ds: SeqDataset, split: str) -> Counter[int]:
    """Item counts over each user's interactions before the split's target."""
    cut = 2 if split == "valid" else 1
    counts: Counter[int] = Counter()
    for seq in ds.sequences.values():
        counts.update(seq[: max(len(seq) - cut, 0)])
    return counts


HEAD_FRACTION = 0.2  # the most popular 20 % of the catalogue is the head, the rest the tail


def tail_items(counts: Counter[int], n_items: int) -> set[int]:
    """Catalogue items (1..n_items) outside the popularity head."""
    ranked = sorted(range(1, n_items + 1), key=lambda i: (-counts.get(i, 0), i))
    return set(ranked[round(HEAD_FRACTION * n_items):])


def bias_metrics(ranked: np.ndarray, counts: Counter[int], tail: set[int], n_items: int,
                 k: int = 10) -> dict[str, float]:
    """coverage@k, long-tail share of slots and mean popularity of recommended items."""
    items = ranked[:, :k]
    items = items[items > 0]
    if len(items) == 0:
        return {f"coverage@{k}": 0.0, f"tail_share@{k}": 0.0, f"mean_pop@{k}": 0.0}
    pop = np.array([counts.get(int(i), 0) for i in items], np.float64)
    return {f"coverage@{k}": len(np.unique(items)) / n_items,
            f"tail_share@{k}": float(np.mean([int(i) in tail for i in items])),
            f"mean_pop@{k}": float(pop.mean())}


def popularity_ranking(counts: Counter[int], data: Split, k: int, exclude_seen: bool
                       ) -> np.ndarray:
    """Most popular items per user, [U, k] (-1 padded)."""
    top = [i for i, _ in counts.most_common(k + (max(map(len, data.seen), default=0)
                                                 if exclude_seen else 0))]
    out = np.full((len(data.targets), k), -1, np.int64)
    for u, seen in enumerate(data.seen):
        row = [i for i in top if i not in seen][:k] if exclude_seen else top[:k]
        out[u, : len(row)] = row
    return out


def recaller_ranking(rec: Recaller, data: Split, k: int, beam: int, exclude_seen: bool,
                     batch_size: int = SEARCH_CHUNK, progress: bool = True) -> np.ndarray:
    """Top-``k`` of a recaller for every user of ``data``, batched with a progress bar."""
    out, block = [], 16 * batch_size  # recall() sorts each block by history length
    for s in tqdm(range(0, len(data.targets), block), desc="recall", disable=not progress,
                  mininterval=2.0):
        hist = data.histories[s: s + block]
        ex = data.seen[s: s + block] if exclude_seen else None
        out.append(rec.recall(hist, k=k, beam=beam, exclude=ex, batch_size=batch_size).items)
    return np.concatenate(out) if out else np.zeros((0, k), np.int64)


def evaluate(rec: Recaller | None, ds: SeqDataset, data: Split, split: str, beam: int = 20,
             ks: Sequence[int] = KS, progress: bool = True) -> dict[str, Any]:
    """Both protocol variants for the recaller (if given) and the popularity baseline."""
    k = max(ks)
    counts = popularity_counts(ds, split)
    n_items = max(ds.items, default=0)
    tail = tail_items(counts, n_items)
    out: dict[str, Any] = {"split": split, "users": len(data.targets), "beam": beam}
    for variant, excl in (("all", False), ("exclude_history", True)):
        ranked = popularity_ranking(counts, data, k, excl)
        out[f"popularity/{variant}"] = {**rank_metrics(ranked, data.targets, ks),
                                        **bias_metrics(ranked, counts, tail, n_items, k)}
        if rec is not None:
            ranked = recaller_ranking(rec, data, k, beam, excl, progress=progress)
            out[f"sidstream/{variant}"] = {**rank_metrics(ranked, data.targets, ks),
                                           **bias_metrics(ranked, counts, tail, n_items, k)}
    targets = data.targets[:, None]
    ref = bias_metrics(targets, counts, tail, n_items, 1)
    out["targets"] = {"tail_share": ref["tail_share@1"], "mean_pop": ref["mean_pop@1"]}
    return out


def format_metrics(res: dict[str, Any]) -> str:
    """One line per model/variant: R@5 N@5 R@10 N@10."""
    lines = [f"{res['split']} split, {res['users']} users, beam {res['beam']}"]
    for name, m in res.items():
        if isinstance(m, dict):
            vals = "  ".join(f"{key}={val:.4f}" for key, val in m.items())
            lines.append(f"  {name:32s} {vals}")
    return "\n".join(lines)
