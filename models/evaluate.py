"""Leave-one-out evaluation: Recall@k and NDCG@k over all users and the full catalogue.

With a single held-out target per user, Recall@k is the hit rate and NDCG@k is
``1 / log2(rank + 2)`` for a hit at 0-based ``rank < k`` (ideal DCG is 1). Two protocol variants:
the user's earlier items excluded from the ranking, or not. A popularity ranking (item counts
over the interactions before the split's targets) runs in the same harness as a floor.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
from tqdm import tqdm

from models.beam import RecallResult
from models.dataset import SeqDataset
from models.recall_data import Split

log = logging.getLogger(__name__)

KS = (5, 10)


class Recaller(Protocol):
    def recall(self, histories: list[list[int]], k: int = 10, beam: int = 20,
               exclude: list[set[int]] | None = None, batch_size: int = 256) -> RecallResult: ...


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
                     batch_size: int = 256, progress: bool = True) -> np.ndarray:
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
    out: dict[str, Any] = {"split": split, "users": len(data.targets), "beam": beam}
    for variant, excl in (("all", False), ("exclude_history", True)):
        out[f"popularity/{variant}"] = rank_metrics(
            popularity_ranking(counts, data, k, excl), data.targets, ks)
        if rec is not None:
            ranked = recaller_ranking(rec, data, k, beam, excl, progress=progress)
            out[f"sidstream/{variant}"] = rank_metrics(ranked, data.targets, ks)
    return out


def format_metrics(res: dict[str, Any]) -> str:
    """One line per model/variant: R@5 N@5 R@10 N@10."""
    lines = [f"{res['split']} split, {res['users']} users, beam {res['beam']}"]
    for name, m in res.items():
        if isinstance(m, dict):
            vals = "  ".join(f"{key}={val:.4f}" for key, val in m.items())
            lines.append(f"  {name:32s} {vals}")
    return "\n".join(lines)
