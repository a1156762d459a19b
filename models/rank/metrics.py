"""AUC and GAUC (per-user AUC averaged over users), tie-aware, in numpy."""

from __future__ import annotations

import numpy as np


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC of binary ``labels`` by ``scores`` (ties count 1/2); NaN if one class is absent."""
    y = np.asarray(labels, np.float64).ravel() > 0.5
    s = np.asarray(scores, np.float64).ravel()
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    _, inv, counts = np.unique(sorted_s, return_inverse=True, return_counts=True)
    first = np.cumsum(counts) - counts  # 0-based rank of each tie group's first member
    avg_rank = first + (counts + 1) / 2.0  # 1-based average rank of the tie group
    ranks = np.empty_like(s)
    ranks[order] = avg_rank[inv]
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def gauc(labels: np.ndarray, scores: np.ndarray, mask: np.ndarray | None = None
         ) -> tuple[float, int]:
    """Mean per-row AUC over rows (users) holding both classes; also the number of such rows.

    ``labels``/``scores`` are [U, C]; ``mask`` [U, C] marks real candidates (default: all).
    """
    labels, scores = np.asarray(labels), np.asarray(scores)
    mask = np.ones(labels.shape, bool) if mask is None else np.asarray(mask, bool)
    y = (labels > 0.5) & mask
    n_pos, n_neg = y.sum(1), (~y & mask).sum(1)
    rows = np.flatnonzero((n_pos > 0) & (n_neg > 0))
    if len(rows) == 0:
        return float("nan"), 0
    # pairwise (positive, negative) comparisons per row, in chunks to bound memory
    total = np.zeros(len(rows))
    for lo in range(0, len(rows), 256):
        r = rows[lo: lo + 256]
        s, yp, yn = scores[r], y[r], ~y[r] & mask[r]
        diff = s[:, :, None] - s[:, None, :]  # [R, C, C]: pos i vs neg j
        win = (diff > 0) + 0.5 * (diff == 0)
        total[lo: lo + len(r)] = (win * yp[:, :, None] * yn[:, None, :]).sum((1, 2))
    per_row = total / (n_pos[rows] * n_neg[rows])
    return float(per_row.mean()), len(rows)
